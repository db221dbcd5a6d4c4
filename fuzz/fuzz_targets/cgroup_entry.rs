//! `psi_core::discover::cgroup_entry` on any bytes: it never panics; its
//! answer is a slice of the input that starts with `/`, holds no newline and
//! is exactly what follows `0::` on a line; and it agrees with a slow
//! reference: the first line that starts with `0::`, if what follows starts
//! with `/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psi_core::discover::cgroup_entry;

fn reference(text: &[u8]) -> Option<&[u8]> {
    let line = text
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"0::"))?;
    let path = &line[3..];
    (path.first() == Some(&b'/')).then_some(path)
}

fuzz_target!(|data: &[u8]| {
    let got = cgroup_entry(data);
    assert_eq!(got, reference(data), "cgroup_entry against the reference");
    let Some(path) = got else { return };
    // Where the answer lies in the input: it must be borrowed from it.
    let start = (path.as_ptr() as usize)
        .checked_sub(data.as_ptr() as usize)
        .filter(|s| s + path.len() <= data.len())
        .expect("the answer is a slice of the input");
    assert!(path.starts_with(b"/"), "{path:?} does not start with /");
    assert!(!path.contains(&b'\n'), "{path:?} spans lines");
    // `0::` at the start of a line, the path to the end of that line.
    assert!(
        start >= 3 && &data[start - 3..start] == b"0::",
        "not after 0::"
    );
    assert!(
        start == 3 || data[start - 4] == b'\n',
        "0:: not at a line start"
    );
    let end = start + path.len();
    assert!(
        end == data.len() || data[end] == b'\n',
        "cut before the line ends"
    );
});
