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

/// The shell commands that unmount `points`, the cgroup v2 mounts this
/// process sees (from `psi_core::cgroup::parse_mountinfo`), deepest first,
/// then check that `mountinfo` lists none: for [`private_mounts`].
pub fn without_cgroup2(points: &[PathBuf]) -> Vec<String> {
    let mut points = points.to_vec();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_survive() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
