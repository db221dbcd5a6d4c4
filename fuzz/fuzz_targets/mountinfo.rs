//! `psi_core::cgroup::parse_mountinfo` on any bytes: it never panics; it
//! finds exactly the mounts a slow, obviously correct reading of
//! `proc_pid_mountinfo(5)` finds (so every mount comes from a line whose
//! file system type is `cgroup2`, and there are no more mounts than lines);
//! and the mounts written back as `mountinfo` lines, escaped as the kernel
//! escapes them, parse to the same mounts.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use psi_core::cgroup::{Mount, parse_mountinfo};

/// `\ooo` (three octal digits, at most `\377`) is the byte it names;
/// anything else, a lone or incomplete backslash included, is itself.
fn unescape(field: &[u8]) -> Vec<u8> {
    let is_octal = |b: u8| (b'0'..=b'7').contains(&b);
    let mut out = Vec::new();
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 4 <= field.len() {
            let d = &field[i + 1..i + 4];
            if d.iter().all(|&b| is_octal(b)) {
                let n = d.iter().fold(0u32, |n, &b| n * 8 + u32::from(b - b'0'));
                if n <= 255 {
                    out.push(n as u8);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// The reference: for each line, the fields between single spaces; the
/// first field `-` from the seventh on ends the optional fields; the one
/// after it is the file system type. Yields the line's index with the mount.
fn reference(text: &[u8]) -> Vec<(usize, Mount)> {
    let mut out = Vec::new();
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(dash) = (6..fields.len()).find(|&i| fields[i] == b"-") else {
            continue;
        };
        if fields.get(dash + 1).copied() != Some(b"cgroup2") {
            continue;
        }
        let path = |f: &[u8]| PathBuf::from(OsStr::from_bytes(&unescape(f)));
        out.push((
            index,
            Mount {
                root: path(fields[3]),
                point: path(fields[4]),
            },
        ));
    }
    out
}

/// The kernel's `mangle()` (fs/proc_namespace.c): space, tab, newline and
/// backslash as `\ooo`.
fn escape(path: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in path.as_os_str().as_bytes() {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend(format!("\\{b:03o}").bytes()),
            _ => out.push(b),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mounts = parse_mountinfo(data);
    let want = reference(data);
    let lines = data.split(|&b| b == b'\n').count();
    assert!(
        mounts.len() <= lines,
        "{} mounts from {lines} lines",
        mounts.len()
    );
    assert!(
        want.iter().all(|(i, _)| {
            let line = data.split(|&b| b == b'\n').nth(*i).unwrap_or_default();
            line.windows(11).any(|w| w == b" - cgroup2 ") || line.ends_with(b" - cgroup2")
        }),
        "the reference took a line that is not a cgroup2 mount"
    );
    let want: Vec<Mount> = want.into_iter().map(|(_, m)| m).collect();
    assert_eq!(mounts, want, "parse_mountinfo against the reference");

    // Written back in the kernel's format, the mounts read the same.
    let mut text = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        text.extend(format!("{} 1 0:{i} ", 30 + i).bytes());
        text.extend(escape(&m.root));
        text.push(b' ');
        text.extend(escape(&m.point));
        text.extend(b" rw,relatime shared:1 - cgroup2 cgroup2 rw\n");
    }
    assert_eq!(parse_mountinfo(&text), mounts, "written back as {text:?}");
});
