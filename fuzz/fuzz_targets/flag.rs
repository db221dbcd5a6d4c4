//! `psi_core::discover::flag_text`, which says what a pid_flag file's bytes
//! are as a flag (two flags match when these are equal), on any bytes: it
//! never panics; it is `Ok` exactly when the input is at most `FLAG_LIMIT`
//! bytes of UTF-8 that is not all whitespace, and then it is the input's
//! `str::trim`, a non-empty slice of the input with no whitespace at either
//! end; its errors say which rule failed, in that order; and whitespace
//! around a flag does not change what it matches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psi_core::discover::{FLAG_LIMIT, FlagError, flag_text};

fuzz_target!(|data: &[u8]| {
    let got = flag_text(data);
    let reference = std::str::from_utf8(data).map(str::trim);
    match &got {
        Ok(flag) => {
            assert!(data.len() <= FLAG_LIMIT, "Ok for {} bytes", data.len());
            assert_eq!(reference, Ok(*flag));
            assert!(!flag.is_empty());
            assert_eq!(flag.trim(), *flag, "whitespace left at an end");
            let start = (flag.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
            assert!(start + flag.len() <= data.len(), "not a slice of the input");
        }
        Err(FlagError::TooLarge { limit }) => {
            assert_eq!(*limit, FLAG_LIMIT);
            assert!(data.len() > FLAG_LIMIT, "TooLarge for {} bytes", data.len());
        }
        Err(FlagError::NotUtf8) => {
            assert!(data.len() <= FLAG_LIMIT);
            assert!(reference.is_err(), "NotUtf8 for UTF-8");
        }
        Err(FlagError::Empty) => {
            assert!(data.len() <= FLAG_LIMIT);
            assert_eq!(reference, Ok(""), "Empty for a flag");
        }
        Err(e) => panic!("flag_text gave a file error: {e}"),
    }
    let _ = got.as_ref().map_err(ToString::to_string);

    // The ConfigMap's trailing newline, or spaces a person typed, change
    // nothing while the padded flag stays within the limit.
    let mut padded = b" \t\n".to_vec();
    padded.extend_from_slice(data);
    padded.extend_from_slice(b"\r\n");
    if padded.len() <= FLAG_LIMIT {
        assert_eq!(
            flag_text(&padded).ok(),
            got.as_ref().ok().copied(),
            "padding changed the flag"
        );
    }
});
