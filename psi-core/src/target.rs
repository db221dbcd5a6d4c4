//! What a program reads: a directory of pressure files, what it is, and
//! what is known of it (feature `std`).
//!
//! Both binaries and library users name what they read the same way: a path
//! given by a person (absolute, or relative to the cgroup v2 mount), a pid,
//! a pid_flag, or the system. [`Target`] is the result, whichever way it was
//! found.
//!
//! ```no_run
//! use psi_core::target::Target;
//!
//! let mount = psi_core::cgroup::find_mount("/proc".as_ref())?.point;
//! let target = Target::resolve("system.slice".as_ref(), Some(&mount))?;
//! assert_eq!(target.cgroup.as_deref(), Some("/system.slice"));
//! let reading = target.pressure_set().read_all();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Component, Path, PathBuf};

use crate::cgroup::kube::Identity;
use crate::cgroup::{self, DirError, Kind};
use crate::read::PressureSet;

/// A directory of pressure files, and what is known of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// The directory holding the pressure files.
    pub dir: PathBuf,
    /// What the directory is.
    pub kind: Kind,
    /// Its cgroup, as the kernel writes it in `/proc/<pid>/cgroup` (`/` for
    /// the root), when the directory lies under the cgroup v2 mount.
    pub cgroup: Option<String>,
    /// The processes that led to it (by pid or pid_flag), sorted.
    pub pids: Vec<u32>,
    /// Its Kubernetes identity, when its path carries one.
    pub kube: Option<Identity>,
}

impl Target {
    /// The whole system: `<proc_root>/pressure`.
    pub fn system(proc_root: &Path) -> Target {
        Target {
            dir: proc_root.join("pressure"),
            kind: Kind::System,
            cgroup: None,
            pids: Vec::new(),
            kube: None,
        }
    }

    /// The directory `dir`, looked at now ([`Kind::of`]); its cgroup is
    /// named relative to `mount` (the cgroup v2 mount point) when it lies
    /// under it.
    pub fn at(dir: PathBuf, mount: Option<&Path>) -> Result<Target, DirError> {
        let kind = Kind::of(&dir)?;
        Ok(Self::known(dir, kind, mount))
    }

    /// The directory `dir`, taken to be `kind` without looking.
    pub fn known(dir: PathBuf, kind: Kind, mount: Option<&Path>) -> Target {
        let cgroup = match kind {
            Kind::System => None,
            _ => mount.and_then(|m| cgroup::relative(m, &dir)),
        };
        let kube = match kind {
            Kind::System => None,
            _ => cgroup
                .as_deref()
                .and_then(|c| Identity::from_path(Path::new(c)))
                .or_else(|| Identity::from_path(&dir)),
        };
        Target {
            dir,
            kind,
            cgroup,
            pids: Vec::new(),
            kube,
        }
    }

    /// A directory as a person gives it: absolute; starting with `./` or
    /// `../`, relative to the current directory; otherwise relative to the
    /// cgroup v2 mount, or to the current directory when only there does
    /// it exist (a saved copy in the working directory).
    pub fn resolve(given: &Path, mount: Option<&Path>) -> Result<Target, DirError> {
        Self::at(Self::place(given, mount), mount)
    }

    /// Where [`resolve`](Self::resolve) looks for `given`.
    pub fn place(given: &Path, mount: Option<&Path>) -> PathBuf {
        let explicit_cwd = matches!(
            given.components().next(),
            Some(Component::CurDir | Component::ParentDir)
        );
        if given.is_absolute() || explicit_cwd {
            return given.to_owned();
        }
        match mount {
            Some(mount) => {
                let under = mount.join(given);
                if !under.exists() && given.is_dir() {
                    given.to_owned()
                } else {
                    under
                }
            }
            None => given.to_owned(),
        }
    }

    /// Its pressure files, opened on the first read, read as its kind has
    /// them.
    pub fn pressure_set(&self) -> PressureSet {
        PressureSet::new(&self.dir, self.kind)
    }
}

/// `targets` with each directory once, in their order: two paths to one
/// directory (told apart by device and inode, as two views of one cgroup
/// differ in path) are one target, holding every pid that led to it. A
/// directory that cannot be looked at is kept as it is, for its read to say
/// why.
pub fn dedup(targets: Vec<Target>) -> Vec<Target> {
    use std::os::unix::fs::MetadataExt as _;
    let mut out: Vec<Target> = Vec::with_capacity(targets.len());
    let mut ids: Vec<Option<(u64, u64)>> = Vec::with_capacity(targets.len());
    for t in targets {
        let id = std::fs::metadata(&t.dir).ok().map(|m| (m.dev(), m.ino()));
        let same = id.and_then(|id| ids.iter().position(|&i| i == Some(id)));
        match same.and_then(|i| out.get_mut(i)) {
            Some(known) => {
                known.pids.extend(t.pids);
                known.pids.sort_unstable();
                known.pids.dedup();
            }
            None => {
                ids.push(id);
                out.push(t);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_targets_are_under_the_mount() {
        let mount = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(mount.path().join("app")).expect("mkdir");
        std::fs::write(mount.path().join("app/cpu.pressure"), "").expect("write");
        let t = Target::resolve(Path::new("app"), Some(mount.path())).expect("found");
        assert_eq!(t.dir, mount.path().join("app"));
        assert_eq!(t.cgroup.as_deref(), Some("/app"));
        assert_eq!(t.kind, Kind::Copy);
    }

    #[test]
    fn a_copy_of_proc_pressure_has_the_system_layout() {
        let dir = psi_testkit::files::dir(&[("cpu", "")]);
        let t = Target::resolve(dir.path(), Some(Path::new("/nonexistent"))).expect("found");
        assert_eq!(t.kind, Kind::System);
        assert_eq!(t.cgroup, None);
    }

    #[test]
    fn one_directory_named_twice_is_one_target_with_both_pids() {
        let dir = psi_testkit::files::dir(&[("app/cpu.pressure", "")]);
        let mut a = Target::at(dir.path().join("app"), None).expect("a copy");
        a.pids = vec![7];
        let mut b = Target::at(dir.path().join("./app"), None).expect("a copy");
        b.pids = vec![3, 7];
        let missing = Target::system(Path::new("/nonexistent"));
        let got = dedup(vec![a, missing.clone(), b, missing]);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].pids, [3, 7]);
    }

    #[test]
    fn kubernetes_identity_from_the_cgroup_or_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pod = dir.path().join("kubepods/besteffort/pod1234");
        std::fs::create_dir_all(&pod).expect("mkdir");
        std::fs::write(pod.join("cpu.pressure"), "").expect("write");
        let under = Target::at(pod.clone(), Some(dir.path())).expect("found");
        assert_eq!(
            under.cgroup.as_deref(),
            Some("/kubepods/besteffort/pod1234")
        );
        assert_eq!(under.kube.and_then(|k| k.pod_uid).as_deref(), Some("1234"));
        let elsewhere = Target::at(pod, None).expect("found");
        assert_eq!(elsewhere.cgroup, None);
        assert_eq!(
            elsewhere.kube.and_then(|k| k.pod_uid).as_deref(),
            Some("1234")
        );
    }
}
