//! Directories of files made for a test: saved copies of pressure files, a
//! fake `/proc/pressure`, kernel text such as `mountinfo`.

use std::path::Path;

/// A temporary directory holding `files`, each a path relative to it (its
/// parent directories made as needed) and its contents. Removed on drop.
///
/// ```
/// let dir = psi_testkit::files::dir(&[
///     ("cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"),
///     ("sub/memory.pressure", "full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n"),
/// ]);
/// assert!(dir.path().join("sub/memory.pressure").is_file());
/// ```
///
/// # Panics
///
/// When the directory or a file cannot be made: a test cannot go on.
pub fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    write(dir.path(), files);
    dir
}

/// Writes `files` under `root`, as [`dir`] does.
///
/// # Panics
///
/// When a directory or a file cannot be made.
pub fn write(root: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the file's directory");
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}
