//! The cgroup tree, walked.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// A directory found by [`walk`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The directory.
    pub path: PathBuf,
    /// How far below the walk's root it is: 0 for the root itself.
    pub depth: usize,
    /// Its device and inode.
    pub id: (u64, u64),
}

/// Every directory from `root` down to `max_depth` levels below it (0: the
/// root alone), the root first, then in path order (a parent before its
/// children, siblings by name), so that two walks of the same tree list it
/// the same way.
///
/// A directory is listed once even when it is reached twice (a bind mount
/// inside the tree): directories are told apart by device and inode.
/// Cgroups come and go while a walk runs: one that vanishes, or cannot be
/// listed, is left out (with what is below it) rather than failing the
/// walk. Symbolic links are not followed. A `root` that cannot be read
/// gives an empty walk.
///
/// ```no_run
/// for entry in psi_core::cgroup::walk("/sys/fs/cgroup".as_ref(), 2) {
///     println!("{} {}", entry.depth, entry.path.display());
/// }
/// ```
pub fn walk(root: &Path, max_depth: usize) -> Vec<Entry> {
    walk_where(root, max_depth, |_| true)
}

/// [`walk`], going below a directory only when `descend` says so (a node
/// mode with no use for what a container makes inside its cgroup). The
/// directory itself is listed either way.
pub fn walk_where(root: &Path, max_depth: usize, descend: impl Fn(&Path) -> bool) -> Vec<Entry> {
    let mut out = Vec::new();
    let Ok(meta) = std::fs::metadata(root) else {
        return out;
    };
    if !meta.is_dir() {
        return out;
    }
    let root_id = (meta.dev(), meta.ino());
    let mut seen = HashSet::from([root_id]);
    // Depth first, children pushed in reverse so that they pop in name
    // order: entries come out in path order.
    let mut stack = vec![(root.to_owned(), 0, root_id)];
    while let Some((dir, depth, id)) = stack.pop() {
        let below = depth < max_depth && descend(&dir);
        let listing = below.then(|| std::fs::read_dir(&dir));
        out.push(Entry {
            path: dir.clone(),
            depth,
            id,
        });
        let Some(Ok(entries)) = listing else {
            continue;
        };
        let mut children: Vec<(OsString, (u64, u64))> = entries
            .flatten()
            // The entry's type comes with the listing: only directories
            // cost a stat (which does not follow a symlink).
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((e.file_name(), (meta.dev(), meta.ino())))
            })
            .collect();
        children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let fresh: Vec<(PathBuf, (u64, u64))> = children
            .into_iter()
            .filter(|(_, id)| seen.insert(*id))
            .map(|(name, id)| (dir.join(name), id))
            .collect();
        stack.extend(fresh.into_iter().rev().map(|(p, id)| (p, depth + 1, id)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(root: &Path, max_depth: usize) -> Vec<(String, usize)> {
        walk(root, max_depth)
            .into_iter()
            .map(|e| {
                let rel = e.path.strip_prefix(root).unwrap_or(&e.path);
                (rel.display().to_string(), e.depth)
            })
            .collect()
    }

    #[test]
    fn path_order_to_a_depth() {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["b", "a", "a/x", "a/x/y", "a.b"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
        }
        std::fs::write(dir.path().join("a/cpu.pressure"), "").expect("a file");
        let all = names(dir.path(), usize::MAX);
        let want = [
            ("", 0),
            ("a", 1),
            ("a/x", 2),
            ("a/x/y", 3),
            ("a.b", 1),
            ("b", 1),
        ];
        assert_eq!(all, want.map(|(n, d)| (n.to_owned(), d)));
        assert_eq!(names(dir.path(), 1).len(), 4);
        assert_eq!(names(dir.path(), 0), [(String::new(), 0)]);
    }

    #[test]
    fn links_are_not_followed_and_nothing_is_listed_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("a")).expect("mkdir");
        std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("link")).expect("symlink");
        std::os::unix::fs::symlink(dir.path(), dir.path().join("a/loop")).expect("symlink");
        assert_eq!(
            names(dir.path(), usize::MAX),
            [(String::new(), 0), ("a".to_owned(), 1)]
        );
    }

    #[test]
    fn a_missing_root_is_an_empty_walk() {
        assert!(walk(Path::new("/nonexistent/psi"), 3).is_empty());
    }
}
