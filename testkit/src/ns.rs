//! Commands run in a private mount namespace, to show a program a machine
//! it cannot be given otherwise: no cgroup v2 mount, a read-only root, a
//! full `/tmp`. Nothing done there is seen outside (`--propagation private`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `program` run by `unshare -m --propagation private` after the shell
/// commands `setup` (each must succeed: they are joined with `&&`); the
/// caller adds the program's arguments with [`Command::arg`]. `unshare` and
/// `sh` exec into `program`, so the child's pid is the program's. Needs root.
pub fn private_mounts(setup: &[String], program: &Path) -> Command {
    let mut script = setup.join(" && ");
    if !script.is_empty() {
        script.push_str(" && ");
    }
    script.push_str("exec \"$0\" \"$@\"");
    let mut command = Command::new("unshare");
    command
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(program);
    command
}

/// The mount points of every cgroup v2 file system this process sees, from
/// `/proc/self/mountinfo` (the hybrid host's `/sys/fs/cgroup/unified`, a
/// unified host's `/sys/fs/cgroup`, any bind mount of either).
pub fn cgroup2_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            (after.split(' ').next() == Some("cgroup2"))
                .then(|| before.split(' ').nth(4).map(unescape))?
        })
        .collect()
}

/// The shell commands that unmount every cgroup v2 file system (deepest
/// first), then check that `mountinfo` lists none: for [`private_mounts`].
pub fn without_cgroup2() -> Vec<String> {
    let mut points = cgroup2_mounts();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    let mut setup: Vec<String> = points
        .iter()
        .map(|p| format!("umount -l {}", quote(&p.to_string_lossy())))
        .collect();
    setup.push("! grep -q ' - cgroup2 ' /proc/self/mountinfo".to_owned());
    setup
}

/// `s` quoted for `sh`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Undoes mountinfo's `\ooo` escapes (space, tab, newline, backslash).
fn unescape(field: &str) -> PathBuf {
    let mut out = String::new();
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    PathBuf::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_undone_and_quotes_survive() {
        assert_eq!(unescape(r"/a\040b\134c"), PathBuf::from(r"/a b\c"));
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
