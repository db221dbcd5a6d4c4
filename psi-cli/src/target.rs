//! From the command line's TARGET, --pid, --pid-flag and --system to the
//! targets read, with errors that say what to do. What a target is, and how
//! a path is resolved, is psi_core's; the advice is this command's.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use psi_core::cgroup::{self, DirError, MountError};
use psi_core::discover::{self, DiscoverError};
use psi_core::report::Chain;
use psi_core::target::Target;

use crate::cli::Targets;

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
                None => cgroup::find_mount(&self.proc_root)
                    .map(|m| m.point)
                    .map_err(|e| explain_mount(&e)),
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

    /// A directory known to be a cgroup of the live hierarchy.
    fn cgroup(&self, dir: PathBuf) -> anyhow::Result<Target> {
        let mount = self.cgroup_mount().ok();
        Target::at(dir, mount.as_deref()).map_err(|e| self.explain_dir(&e, None))
    }

    /// A directory error in this command's words.
    fn explain_dir(&self, e: &DirError, given: Option<&Path>) -> anyhow::Error {
        let mount = self.cgroup_mount().ok();
        let path = e.path();
        let elsewhere = |sep: &str| match &mount {
            Some(m) if !path.starts_with(m) => format!(
                "{sep}the cgroup v2 hierarchy is mounted at {} on this host",
                m.display()
            ),
            _ => String::new(),
        };
        match e {
            DirError::Missing { .. } => {
                let hint = match (&mount, given) {
                    (Some(m), Some(g)) if !g.is_absolute() => format!(
                        " (a relative TARGET is taken under the cgroup v2 mount {}; `psi top` or \
                         `ls {}` lists the cgroups)",
                        m.display(),
                        m.display()
                    ),
                    _ => match elsewhere("") {
                        h if h.is_empty() => h,
                        h => format!(" ({h})"),
                    },
                };
                anyhow!("no such cgroup: {} does not exist{hint}", path.display())
            }
            DirError::PermissionDenied { .. } => anyhow!("{}: run as root", Chain(e)),
            DirError::NotADirectory { .. } => anyhow!(
                "{} is a file: give the directory that holds the pressure files, such as {}",
                path.display(),
                path.parent().unwrap_or(Path::new("/")).display()
            ),
            DirError::CgroupV1 { .. } => {
                let hint = match &mount {
                    Some(m) => format!("; cgroup v2 is mounted at {}", m.display()),
                    None => String::new(),
                };
                anyhow!("{e}: give a cgroup v2 directory{hint}")
            }
            DirError::NoPressureFiles { .. } => anyhow!("{e}{}", elsewhere("; ")),
            other => anyhow!(Chain(other).to_string()),
        }
    }
}

/// Every target the arguments name, in order: paths, pids, pid_flags, then
/// the system (given --system, or when nothing else is). A directory named
/// twice (by two paths, a path and a pid, or two pids in one cgroup) is one
/// target, holding every pid that led to it.
pub fn resolve(args: &Targets, env: &Env) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    for path in &args.paths {
        targets.push(resolve_path(env, path)?);
    }
    for &pid in &args.pid {
        let config = env.discover_config(&args.flag_path.pid_flag_path);
        let mut t = env.cgroup(cgroup_of_pid(env, &config, pid)?)?;
        t.pids = vec![pid];
        targets.push(t);
    }
    for flag in &args.pid_flag {
        targets.extend(resolve_flag(env, &args.flag_path.pid_flag_path, flag)?);
    }
    if args.system || targets.is_empty() {
        targets.push(Target::system(&env.proc_root));
    }
    Ok(psi_core::target::dedup(targets))
}

/// A TARGET path, resolved as [`Target::resolve`] does.
pub fn resolve_path(env: &Env, given: &Path) -> anyhow::Result<Target> {
    let mount = match env.cgroup_mount() {
        Ok(m) => Some(m),
        Err(e) if !given.is_absolute() && !given.is_dir() => {
            return Err(e.context(format!(
                "cannot take {} under the cgroup v2 mount: give an absolute path",
                given.display()
            )));
        }
        Err(_) => None,
    };
    Target::resolve(given, mount.as_deref()).map_err(|e| env.explain_dir(&e, Some(given)))
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
    let mut targets = Vec::new();
    for pid in pids {
        let path = match cgroup_of_pid(env, &config, pid) {
            Ok(p) => p,
            // The process exited after the scan.
            Err(_) if !env.proc_root.join(pid.to_string()).exists() => continue,
            Err(e) => return Err(e),
        };
        let mut t = env.cgroup(path)?;
        t.pids = vec![pid];
        targets.push(t);
    }
    if targets.is_empty() {
        bail!("every process with the pid_flag {flag:?} exited before its cgroup was found");
    }
    Ok(psi_core::target::dedup(targets))
}

/// No cgroup v2 mount, in this command's words.
fn explain_mount(e: &MountError) -> String {
    match e {
        MountError::NotMounted { path } => format!(
            "no cgroup v2 mount in {}: per-cgroup pressure needs cgroup v2 (mount it with \
             `mount -t cgroup2 none /sys/fs/cgroup/unified`, or boot with \
             systemd.unified_cgroup_hierarchy=1), or pass --cgroup-root DIR",
            path.display()
        ),
        other => Chain(other).to_string(),
    }
}

/// The discovery error in the words of this command's flags.
fn explain_discover(e: &DiscoverError) -> String {
    match e {
        DiscoverError::Mount(m) => explain_mount(m),
        DiscoverError::Unreachable { pid, cgroup, mount } => format!(
            "cgroup {cgroup} of pid {pid} is outside the cgroup2 mount at {} (another cgroup \
             namespace): run psi in the host's cgroup namespace, or give the cgroup directory as \
             TARGET",
            mount.display()
        ),
        other => Chain(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psi_core::cgroup::Kind;

    fn env_with_mount(mount: &Path) -> Env {
        Env::new(PathBuf::from("/proc"), Some(mount.to_owned()))
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

    #[test]
    fn one_directory_named_twice_is_one_target() {
        let mount = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(mount.path().join("app")).expect("mkdir");
        std::fs::write(mount.path().join("app/cpu.pressure"), "").expect("write");
        let env = env_with_mount(mount.path());
        let args = crate::cli::Targets {
            paths: vec![
                PathBuf::from("app"),
                mount.path().join("app"),
                mount.path().join("./app"),
            ],
            pid: Vec::new(),
            pid_flag: Vec::new(),
            flag_path: crate::cli::FlagPath {
                pid_flag_path: PathBuf::from("/etc/pid_flag"),
            },
            system: false,
        };
        let targets = resolve(&args, &env).expect("resolved");
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].kind, Kind::Copy);
    }
}
