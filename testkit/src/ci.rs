//! CI policy: what a test does when its machine lacks something it needs.
//!
//! A test that needs root, a cgroup v2 mount or a Debian tool must not pass
//! by doing nothing where it is supposed to run. In CI (`CI=true`) a missing
//! requirement is a failure that says what to install; on a developer's
//! machine the test prints why it skipped and returns.

use std::path::PathBuf;

/// True when running in CI (`CI=true` or `CI=1`), where missing
/// requirements are failures.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports a missing requirement: panics in CI, prints a skip notice elsewhere.
///
/// `what` says what is missing, as a clause: "`tmux` is not installed".
pub fn missing(what: &str) {
    if in_ci() {
        panic!("CI=true and {what}: this test must run in CI");
    }
    eprintln!("skipping: {what} (set CI=true to make this a failure)");
}

/// The path of the external program `name` on `PATH`, or `None` after
/// reporting it [`missing`] with the Debian `package` that provides it.
pub fn tool(name: &str, package: &str) -> Option<PathBuf> {
    // An unset PATH is a missing tool too, reported like any other.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        missing(&format!(
            "`{name}` is not installed (apt-get install {package})"
        ));
    }
    found
}
