//! `psi_core::parse` on any bytes: it never panics; every success writes
//! back through `Display` to text that parses to the same value; every error
//! points inside the input, on the line it names; and the fast road agrees
//! with the general parser on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The fast road for the kernel's exact format gives the general parser's answer.
    assert_eq!(
        psi_core::parse(data),
        psi_core::_benchable::parse_general(data)
    );
    match psi_core::parse(data) {
        Ok(p) => {
            assert!(p.some.is_some() || p.full.is_some(), "Ok without a line");
            let text = p.to_string();
            assert_eq!(
                psi_core::parse(text.as_bytes()),
                Ok(p),
                "written back as {text:?}"
            );
        }
        Err(e) => {
            assert!(
                e.offset() <= data.len(),
                "offset {} past the end ({} bytes): {e}",
                e.offset(),
                data.len()
            );
            assert!(e.line() >= 1, "line 0: {e}");
            let newlines = data[..e.offset()].iter().filter(|&&b| b == b'\n').count();
            assert_eq!(newlines + 1, e.line(), "offset not on the line named: {e}");
            // The message must render without panicking.
            let _ = e.to_string();
        }
    }
});
