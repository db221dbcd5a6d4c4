//! From the command line's TARGET, --pid, --pid-flag and --system to the
//! directories whose pressure files are read, with errors that say what to do.

use std::cell::OnceCell;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use psi_core::discover::{self, DiscoverError};

use crate::cli::Targets;
use crate::kube::Identity;
use crate::sample::Files;

/// Where the system's files are: `--proc-root` and `--cgroup-root`.
#[derive(Debug)]
pub struct Env {
    /// The proc file system.
    pub proc_root: PathBuf,
    cgroup_root: Option<PathBuf>,
    mount: OnceCell<Result<PathBuf, String>>,
}

impl Env {
    /// The places given on the command line.
    pub fn new(proc_root: PathBuf, cgroup_root: Option<PathBuf>) -> Self {
        Env {
            proc_root,
            cgroup_root,
            mount: OnceCell::new(),
        }
    }

    /// The cgroup v2 mount: `--cgroup-root`, else from `mountinfo`.
    pub fn cgroup_mount(&self) -> anyhow::Result<PathBuf> {
        self.mount
            .get_or_init(|| match &self.cgroup_root {
                Some(root) => Ok(root.clone()),
                None => {
                    let mountinfo = self.proc_root.join("self/mountinfo");
                    discover::cgroup2_mount(&mountinfo).map_err(|e| explain_discover(&e))
                }
            })
            .clone()
            .map_err(anyhow::Error::msg)
    }

    fn discover_config(&self, flag_path: &Path) -> discover::Config {
        discover::Config {
            proc_root: self.proc_root.clone(),
            flag_path: flag_path.to_owned(),
            cgroup_mount: self.cgroup_mount().ok(),
            ..discover::Config::default()
        }
    }
}

/// How a target's files are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/proc/pressure` (or a copy of it): files `cpu`, `memory`, `io`, `irq`.
    System,
    /// A cgroup v2 directory (or a copy of one): `cpu.pressure`, ...
    Cgroup,
}

/// One place to read.
#[derive(Debug, Clone)]
pub struct Target {
    /// How its files are named.
    pub kind: Kind,
    /// The directory holding the pressure files.
    pub path: PathBuf,
    /// The cgroup's path inside the hierarchy (`/system.slice`), when the
    /// directory lies under the cgroup v2 mount.
    pub cgroup: Option<String>,
    /// The processes that led here (--pid, --pid-flag).
    pub pids: Vec<u32>,
    /// Kubernetes identity, when the path carries one.
    pub kube: Option<Identity>,
    /// The system-wide numbers: `/proc/pressure`, or the root cgroup, which
    /// shows the same (and whose cpu `full` line the kernel also fills with
    /// zeros).
    pub whole_system: bool,
}

impl Target {
    /// The system-wide files under `<proc_root>/pressure`.
    pub fn system(env: &Env) -> Self {
        Target {
            kind: Kind::System,
            path: env.proc_root.join("pressure"),
            cgroup: None,
            pids: Vec::new(),
            kube: None,
            whole_system: true,
        }
    }

    /// A cgroup directory already checked to exist.
    pub fn cgroup(env: &Env, path: PathBuf, kind: Kind) -> Self {
        let cgroup = env.cgroup_mount().ok().and_then(|mount| {
            let rel = path.strip_prefix(&mount).ok()?;
            Some(format!("/{}", rel.display()))
        });
        let kube = if kind == Kind::Cgroup {
            Identity::from_path(Path::new(cgroup.as_deref().unwrap_or_default()))
                .or_else(|| Identity::from_path(&path))
        } else {
            None
        };
        let whole_system = kind == Kind::System || psi_core::read::is_root_cgroup(&path);
        Target {
            kind,
            path,
            cgroup,
            pids: Vec::new(),
            kube,
            whole_system,
        }
    }

    /// A word for the kind: `system` or `cgroup`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::System => "system",
            Kind::Cgroup => "cgroup",
        }
    }

    /// The target as people read it: the directory, and where it came from.
    pub fn title(&self) -> String {
        let mut t = self.path.display().to_string();
        if self.kind == Kind::System {
            t = format!("system ({t})");
        }
        if !self.pids.is_empty() {
            let pids: Vec<String> = self.pids.iter().map(u32::to_string).collect();
            t.push_str(&format!("  pid {}", pids.join(",")));
        }
        if let Some(k) = &self.kube {
            t.push_str(&format!("  {}", k.describe()));
        }
        t
    }

    /// Its pressure files, opened on the first read.
    pub fn files(&self) -> Files {
        Files::new(&self.path, self.kind == Kind::System, self.whole_system)
    }
}

/// Every target the arguments name, in order: paths, pids, pid_flags, then
/// the system (given --system, or when nothing else is).
pub fn resolve(args: &Targets, env: &Env) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    for path in &args.paths {
        targets.push(resolve_path(env, path)?);
    }
    for &pid in &args.pid {
        let path = cgroup_of_pid(env, &env.discover_config(&args.pid_flag_path), pid)?;
        let mut t = Target::cgroup(env, path, Kind::Cgroup);
        t.pids = vec![pid];
        targets.push(t);
    }
    for flag in &args.pid_flag {
        targets.extend(resolve_flag(env, &args.pid_flag_path, flag)?);
    }
    if args.system || targets.is_empty() {
        targets.push(Target::system(env));
    }
    Ok(targets)
}

/// A TARGET path: absolute, relative to the cgroup v2 mount, or (starting
/// with `./` or `../`, or found only there) relative to the current directory.
pub fn resolve_path(env: &Env, given: &Path) -> anyhow::Result<Target> {
    let explicit_cwd = matches!(
        given.components().next(),
        Some(Component::CurDir | Component::ParentDir)
    );
    let path = if given.is_absolute() || explicit_cwd {
        given.to_owned()
    } else {
        match env.cgroup_mount() {
            Ok(mount) => {
                let under = mount.join(given);
                if !under.exists() && given.is_dir() {
                    given.to_owned()
                } else {
                    under
                }
            }
            Err(_) if given.is_dir() => given.to_owned(),
            Err(e) => {
                return Err(e.context(format!(
                    "cannot take {} under the cgroup v2 mount: give an absolute path",
                    given.display()
                )));
            }
        }
    };
    let kind = check_dir(env, &path, given)?;
    Ok(Target::cgroup(env, path, kind))
}

/// Checks that `path` is a directory of pressure files, and which layout it has.
fn check_dir(env: &Env, path: &Path, given: &Path) -> anyhow::Result<Kind> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let hint = match env.cgroup_mount() {
                Ok(mount) if !given.is_absolute() => format!(
                    " (a relative TARGET is taken under the cgroup v2 mount {}; `psi top` or \
                     `ls {}` lists the cgroups)",
                    mount.display(),
                    mount.display()
                ),
                Ok(mount) if !path.starts_with(&mount) => format!(
                    " (the cgroup v2 hierarchy is mounted at {} on this host)",
                    mount.display()
                ),
                _ => String::new(),
            };
            bail!("no such cgroup: {} does not exist{hint}", path.display());
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(e)
                .with_context(|| format!("permission denied on {}: run as root", path.display()));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot use {}", path.display())),
    };
    if !meta.is_dir() {
        let parent = path.parent().unwrap_or(Path::new("/"));
        bail!(
            "{} is a file: give the directory that holds the pressure files, such as {}",
            path.display(),
            parent.display()
        );
    }
    if is_cgroup_v1(path) {
        let hint = match env.cgroup_mount() {
            Ok(mount) => format!("; cgroup v2 is mounted at {}", mount.display()),
            Err(_) => String::new(),
        };
        bail!(
            "{} is in a cgroup v1 hierarchy, which has no pressure files: give a cgroup v2 directory{hint}",
            path.display()
        );
    }
    let has = |name: &str| path.join(name).exists();
    if has("cgroup.procs")
        || has("cgroup.pressure")
        || psi_core::Resource::ALL.iter().any(|r| has(r.cgroup_file()))
    {
        return Ok(Kind::Cgroup);
    }
    if ["cpu", "memory", "io"]
        .iter()
        .any(|n| path.join(n).is_file())
    {
        return Ok(Kind::System);
    }
    let hint = match env.cgroup_mount() {
        Ok(mount) if !path.starts_with(&mount) => format!(
            "; the cgroup v2 hierarchy is mounted at {} on this host",
            mount.display()
        ),
        _ => String::new(),
    };
    bail!(
        "{} holds no pressure files: it is not a cgroup v2 directory{hint}",
        path.display()
    )
}

/// Whether `path` is on a cgroup v1 file system (`CGROUP_SUPER_MAGIC`).
fn is_cgroup_v1(path: &Path) -> bool {
    const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
    // `f_type` is an i64 on x86_64 but narrower on other architectures.
    #[allow(clippy::useless_conversion)]
    rustix::fs::statfs(path).is_ok_and(|st| i64::from(st.f_type) == CGROUP_SUPER_MAGIC)
}

fn cgroup_of_pid(env: &Env, config: &discover::Config, pid: u32) -> anyhow::Result<PathBuf> {
    if !env.proc_root.join(pid.to_string()).exists() {
        bail!(
            "no such process: pid {pid} (not in {})",
            env.proc_root.display()
        );
    }
    discover::cgroup_of(config, pid)
        .map_err(|e| anyhow!(explain_discover(&e)))
        .with_context(|| format!("cannot find the cgroup of pid {pid}"))
}

/// The cgroups of the processes whose pid_flag is `flag`, one target per cgroup.
fn resolve_flag(env: &Env, flag_path: &Path, flag: &str) -> anyhow::Result<Vec<Target>> {
    let config = env.discover_config(flag_path);
    let pids = discover::find_pids(&config, flag).map_err(|e| anyhow!(explain_discover(&e)))?;
    if pids.is_empty() {
        bail!(
            "no process has the pid_flag {flag:?} in {}/<pid>/root{}: check the value and \
             --pid-flag-path; other containers' files need root (or CAP_SYS_PTRACE) and a shared \
             pid namespace",
            env.proc_root.display(),
            flag_path.display()
        );
    }
    let mut targets: Vec<(u64, u64, Target)> = Vec::new();
    for pid in pids {
        let path = match cgroup_of_pid(env, &config, pid) {
            Ok(p) => p,
            // The process exited after the scan.
            Err(_) if !env.proc_root.join(pid.to_string()).exists() => continue,
            Err(e) => return Err(e),
        };
        let meta = std::fs::metadata(&path)
            .with_context(|| format!("cannot open cgroup directory {}", path.display()))?;
        let id = (meta.dev(), meta.ino());
        match targets.iter_mut().find(|(d, i, _)| (*d, *i) == id) {
            Some((_, _, t)) => t.pids.push(pid),
            None => {
                let mut t = Target::cgroup(env, path, Kind::Cgroup);
                t.pids = vec![pid];
                targets.push((id.0, id.1, t));
            }
        }
    }
    if targets.is_empty() {
        bail!("every process with the pid_flag {flag:?} exited before its cgroup was found");
    }
    Ok(targets.into_iter().map(|(_, _, t)| t).collect())
}

/// The discovery error in the words of this command's flags.
fn explain_discover(e: &DiscoverError) -> String {
    match e {
        DiscoverError::NoCgroup2Mount { path } => format!(
            "no cgroup v2 mount in {}: per-cgroup pressure needs cgroup v2 (mount it with \
             `mount -t cgroup2 none /sys/fs/cgroup/unified`, or boot with \
             systemd.unified_cgroup_hierarchy=1), or pass --cgroup-root DIR",
            path.display()
        ),
        DiscoverError::Unreachable { pid, cgroup, mount } => format!(
            "cgroup {cgroup} of pid {pid} is outside the cgroup2 mount at {} (another cgroup \
             namespace): run psi in the host's cgroup namespace, or give the cgroup directory as \
             TARGET",
            mount.display()
        ),
        other => crate::view::chain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with_mount(mount: &Path) -> Env {
        Env::new(PathBuf::from("/proc"), Some(mount.to_owned()))
    }

    #[test]
    fn relative_targets_are_under_the_mount() {
        let mount = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(mount.path().join("app")).expect("mkdir");
        std::fs::write(mount.path().join("app/cpu.pressure"), "").expect("write");
        let env = env_with_mount(mount.path());
        let t = resolve_path(&env, Path::new("app")).expect("found");
        assert_eq!(t.path, mount.path().join("app"));
        assert_eq!(t.cgroup.as_deref(), Some("/app"));
        assert_eq!(t.kind, Kind::Cgroup);
    }

    #[test]
    fn a_copy_of_proc_pressure_has_the_system_layout() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("cpu"), "").expect("write");
        let env = env_with_mount(Path::new("/nonexistent"));
        let t = resolve_path(&env, dir.path()).expect("found");
        assert_eq!(t.kind, Kind::System);
        assert_eq!(t.cgroup, None);
    }

    #[test]
    fn errors_say_what_to_do() {
        let mount = tempfile::tempdir().expect("tempdir");
        let env = env_with_mount(mount.path());
        let e = resolve_path(&env, Path::new("nope"))
            .expect_err("missing")
            .to_string();
        assert!(e.starts_with("no such cgroup: "), "{e}");
        assert!(
            e.contains("relative TARGET is taken under the cgroup v2 mount"),
            "{e}"
        );

        let empty = tempfile::tempdir().expect("tempdir");
        let e = format!(
            "{:#}",
            resolve_path(&env, empty.path()).expect_err("no files")
        );
        assert!(e.contains("holds no pressure files"), "{e}");
        assert!(e.contains("the cgroup v2 hierarchy is mounted at"), "{e}");
        if Path::new("/sys/fs/cgroup/cpu/cgroup.procs").exists() {
            // A hybrid host like this project's: its v1 directories are named as such.
            let e = format!(
                "{:#}",
                resolve_path(&env, Path::new("/sys/fs/cgroup/cpu")).expect_err("v1")
            );
            assert!(e.contains("is in a cgroup v1 hierarchy"), "{e}");
        }

        let file = empty.path().join("cpu.pressure");
        std::fs::write(&file, "").expect("write");
        let e = resolve_path(&env, &file).expect_err("a file").to_string();
        assert!(e.contains("is a file: give the directory"), "{e}");
    }

    #[test]
    fn no_cgroup2_mount_is_explained() {
        let proc = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(proc.path().join("self")).expect("mkdir");
        std::fs::write(
            proc.path().join("self/mountinfo"),
            "22 1 0:21 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
        )
        .expect("write");
        let env = Env::new(proc.path().to_owned(), None);
        let e = format!(
            "{:#}",
            resolve_path(&env, Path::new("app")).expect_err("no mount")
        );
        assert!(e.contains("no cgroup v2 mount"), "{e}");
        assert!(e.contains("--cgroup-root"), "{e}");
    }

    #[test]
    fn a_missing_pid_is_named() {
        let env = Env::new(PathBuf::from("/proc"), None);
        let config = env.discover_config(Path::new("/etc/pid_flag"));
        let e = cgroup_of_pid(&env, &config, u32::MAX)
            .expect_err("no such pid")
            .to_string();
        assert!(e.contains("no such process"), "{e}");
    }
}
