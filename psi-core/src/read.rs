//! Reading pressure files and cgroups (feature `std`).
//!
//! Every function here reads into a stack or caller-owned buffer and parses
//! with [`parse`]: nothing is allocated on success. Failures are
//! a [`ReadError`] that says *why* the pressure could not be read, because
//! "no data" must never look like "no pressure":
//!
//! | case | [`ReadError`] | [`ReadError::reason`] |
//! |------|---------------|--------------------|
//! | the file is absent in a live cgroup (or `/proc/pressure`) whose `cgroup.pressure` is not `0` | `Unsupported` | `unsupported` |
//! | reads fail with `EOPNOTSUPP` (booted with `psi=0`), or the file is hidden because `cgroup.pressure` is `0` | `Disabled` | `disabled` |
//! | the cgroup directory was removed (`ENODEV` on a kept-open file, which is reopened once first) | `Gone` | `gone` |
//! | `EACCES` or `EPERM` | `PermissionDenied` | `permission` |
//! | any other I/O error | `Io` | `io` |
//! | the contents are not a pressure file | `Parse` | `parse` |
//!
//! ```no_run
//! use psi_core::{Resource, read};
//!
//! let cpu = read::system(Resource::Cpu)?;
//! let mut cgroup = read::PressureSet::cgroup("/sys/fs/cgroup/system.slice");
//! for (resource, result) in cgroup.read_all() {
//!     match result {
//!         Ok(p) => println!("{resource}: {p}"),
//!         Err(e) => println!("{resource}: {e} ({})", e.reason()),
//!     }
//! }
//! # Ok::<(), read::ReadError>(())
//! ```

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cpu_stat::CpuStat;
use crate::{ParseError, Pressure, Resource, parse};

/// The size of the buffer a pressure file is read into. Today's files are
/// about 110 bytes; the rest is room for fields a later kernel may add.
pub const BUF_LEN: usize = 512;

/// Why pressure stall information is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisabledBy {
    /// The kernel refuses to report it (`EOPNOTSUPP`): booted with `psi=0`.
    Kernel,
    /// The cgroup's `cgroup.pressure` is `0`, which hides its pressure files.
    CgroupPressure,
}

impl std::fmt::Display for DisabledBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DisabledBy::Kernel => "the kernel was booted with psi=0; boot with psi=1 to enable it",
            DisabledBy::CgroupPressure => {
                "the cgroup's cgroup.pressure is 0; write 1 to it to enable it"
            }
        })
    }
}

/// The error from reading a pressure file: which file, and why.
///
/// The path is named once in the message; the underlying cause, where there
/// is one, is given by [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The kernel does not report this resource here (e.g. `irq` before 6.1,
    /// or a kernel built without `CONFIG_PSI`).
    #[error("{} does not exist: this kernel does not report that pressure", path.display())]
    Unsupported {
        /// The file that does not exist.
        path: PathBuf,
    },
    /// Pressure stall information is turned off.
    #[error("pressure stall information is disabled for {}: {by}", path.display())]
    Disabled {
        /// The file that could not be read.
        path: PathBuf,
        /// What turned it off.
        by: DisabledBy,
    },
    /// The cgroup was removed.
    #[error("the cgroup is gone: {} was removed", path.display())]
    Gone {
        /// The file whose cgroup was removed.
        path: PathBuf,
    },
    /// Not allowed to read the file.
    #[error("permission denied reading {}: run as root or grant read access", path.display())]
    PermissionDenied {
        /// The file that could not be read.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// Any other I/O error.
    #[error("failed to read {}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// The file does not hold what the kernel writes.
    #[error("failed to parse {}", path.display())]
    Parse {
        /// The file that could not be parsed.
        path: PathBuf,
        /// Where and what.
        source: ParseError,
    },
}

impl ReadError {
    /// A short, stable label for metrics: `unsupported`, `disabled`, `gone`,
    /// `permission`, `io` or `parse`.
    pub fn reason(&self) -> &'static str {
        Self::REASONS
            .get(self.reason_index())
            .copied()
            .unwrap_or_default()
    }

    /// Every [`reason`](Self::reason), in the order of
    /// [`reason_index`](Self::reason_index): for counters kept by reason.
    pub const REASONS: [&'static str; 6] = [
        "unsupported",
        "disabled",
        "gone",
        "permission",
        "io",
        "parse",
    ];

    /// The reason's place in [`REASONS`](Self::REASONS).
    pub fn reason_index(&self) -> usize {
        match self {
            ReadError::Unsupported { .. } => 0,
            ReadError::Disabled { .. } => 1,
            ReadError::Gone { .. } => 2,
            ReadError::PermissionDenied { .. } => 3,
            ReadError::Io { .. } => 4,
            ReadError::Parse { .. } => 5,
        }
    }

    /// The file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Unsupported { path }
            | ReadError::Disabled { path, .. }
            | ReadError::Gone { path }
            | ReadError::PermissionDenied { path, .. }
            | ReadError::Io { path, .. }
            | ReadError::Parse { path, .. } => path,
        }
    }
}

/// True when `dir` is the root of a cgroup v2 hierarchy (the only cgroup
/// without `cgroup.type`). Its pressure is the whole system's, and its cpu
/// `full` line, like `/proc/pressure/cpu`'s, is all zeros by the kernel's
/// definition: not a measurement.
pub fn is_root_cgroup(dir: &Path) -> bool {
    dir.join("cgroup.procs").exists() && !dir.join("cgroup.type").exists()
}

/// Reads the system-wide `/proc/pressure/<resource>`.
pub fn system(resource: Resource) -> Result<Pressure, ReadError> {
    system_at(Path::new("/proc"), resource)
}

/// Reads `<proc_root>/pressure/<resource>`, for a procfs mounted elsewhere.
pub fn system_at(proc_root: &Path, resource: Resource) -> Result<Pressure, ReadError> {
    path(&proc_root.join("pressure").join(resource.name()))
}

/// Reads `<dir>/<resource>.pressure` of a cgroup v2 directory.
pub fn cgroup(dir: &Path, resource: Resource) -> Result<Pressure, ReadError> {
    path(&dir.join(resource.cgroup_file()))
}

/// Reads one pressure file: open, one read into a stack buffer, close.
pub fn path(path: &Path) -> Result<Pressure, ReadError> {
    let mut buf = [0u8; BUF_LEN];
    let mut file = open(path)?;
    let n = retry(|| file.read(&mut buf)).map_err(|e| read_error(path, e))?;
    parse_pressure(path, whole_lines(&buf, n))
}

/// Reads the throttling counters of a cgroup's `cpu.stat`.
pub fn cpu_stat(dir: &Path) -> Result<CpuStat, ReadError> {
    let path = dir.join("cpu.stat");
    let mut buf = [0u8; BUF_LEN];
    let mut file = open(&path)?;
    let n = retry(|| file.read(&mut buf)).map_err(|e| read_error(&path, e))?;
    Ok(crate::cpu_stat::parse(whole_lines(&buf, n)))
}

fn parse_pressure(path: &Path, data: &[u8]) -> Result<Pressure, ReadError> {
    parse(data).map_err(|source| ReadError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// The first `n` bytes of `buf`. A read that filled the buffer may have cut a
/// line short; the kernel writes its known lines first, so only whole lines
/// are kept.
fn whole_lines(buf: &[u8], n: usize) -> &[u8] {
    let data = buf.get(..n).unwrap_or(buf);
    match memchr::memrchr(b'\n', data) {
        Some(end) if n == buf.len() => data.get(..=end).unwrap_or(data),
        _ => data,
    }
}

/// Retries a system call interrupted by a signal.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// True for a cgroup file (`cpu.pressure`), false for `/proc/pressure/cpu`.
pub(crate) fn is_cgroup_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "pressure")
}

/// Opens a file to read, without blocking and only if it is a regular file:
/// the path may run through another container's root, where a FIFO or a
/// device in place of a pressure file must not hang or fool the reader.
fn open(path: &Path) -> Result<File, ReadError> {
    let file = open_nonblocking(path).map_err(|e| open_error(path, e))?;
    let meta = file.metadata().map_err(|e| read_error(path, e))?;
    if !meta.is_file() {
        return Err(ReadError::Io {
            path: path.to_owned(),
            source: not_regular(),
        });
    }
    Ok(file)
}

/// Opens `path` to read with `O_NONBLOCK`: a FIFO does not hang the open.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

fn not_regular() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")
}

/// Explains a failed `open`.
fn open_error(path: &Path, e: io::Error) -> ReadError {
    let path = path.to_owned();
    match e.raw_os_error() {
        Some(libc_errno::ENOENT) => missing(path),
        Some(libc_errno::ENODEV) if is_cgroup_file(&path) => ReadError::Gone { path },
        _ => classify(path, e),
    }
}

/// Explains a failed `read`.
fn read_error(path: &Path, e: io::Error) -> ReadError {
    let path = path.to_owned();
    match e.raw_os_error() {
        Some(libc_errno::ENODEV) => ReadError::Gone { path },
        _ => classify(path, e),
    }
}

/// The errors that mean the same on open and read.
fn classify(path: PathBuf, e: io::Error) -> ReadError {
    match e.raw_os_error() {
        Some(libc_errno::EOPNOTSUPP) => ReadError::Disabled {
            path,
            by: DisabledBy::Kernel,
        },
        Some(libc_errno::EACCES | libc_errno::EPERM) => {
            ReadError::PermissionDenied { path, source: e }
        }
        _ => ReadError::Io { path, source: e },
    }
}

/// Explains a pressure file that does not exist: its cgroup was removed, its
/// cgroup hides it (`cgroup.pressure` is `0`), or the kernel lacks it.
fn missing(path: PathBuf) -> ReadError {
    if !is_cgroup_file(&path) {
        return ReadError::Unsupported { path };
    }
    let Some(dir) = path.parent() else {
        return ReadError::Unsupported { path };
    };
    let mut buf = [0u8; 8];
    // Read like the pressure files: what is there may not be a regular file.
    let read = open_nonblocking(&dir.join("cgroup.pressure")).and_then(|mut f| {
        if !f.metadata()?.is_file() {
            return Err(not_regular());
        }
        f.read(&mut buf)
    });
    match read {
        Ok(n) if buf.get(..n).is_some_and(|b| b.trim_ascii() == b"0") => ReadError::Disabled {
            path,
            by: DisabledBy::CgroupPressure,
        },
        Ok(_) => ReadError::Unsupported { path },
        // Kernels before 6.1 have no cgroup.pressure: the directory tells.
        Err(_) if dir.is_dir() => ReadError::Unsupported { path },
        Err(_) => ReadError::Gone { path },
    }
}

/// The errno values this module tells apart (Linux numbering, from rustix).
mod libc_errno {
    use rustix::io::Errno;

    pub(super) const ENOENT: i32 = Errno::NOENT.raw_os_error();
    pub(super) const ENODEV: i32 = Errno::NODEV.raw_os_error();
    pub(super) const EOPNOTSUPP: i32 = Errno::OPNOTSUPP.raw_os_error();
    pub(super) const EACCES: i32 = Errno::ACCESS.raw_os_error();
    pub(super) const EPERM: i32 = Errno::PERM.raw_os_error();
}

/// A file kept open and re-read with `pread` at offset 0, reopened once on
/// `ENODEV` and on the read after a failure.
#[derive(Debug)]
struct KeptFile {
    path: PathBuf,
    file: Option<File>,
    buf: [u8; BUF_LEN],
    /// When the file was last found unsupported: that is the kernel's to
    /// change, not the cgroup's, so it is only checked again after
    /// [`UNSUPPORTED_RECHECK`] rather than costing an `open` every read.
    unsupported_at: Option<Instant>,
}

/// How long an unsupported file is taken to stay unsupported.
const UNSUPPORTED_RECHECK: Duration = Duration::from_secs(60);

impl KeptFile {
    fn new(path: PathBuf) -> Self {
        KeptFile {
            path,
            file: None,
            buf: [0; BUF_LEN],
            unsupported_at: None,
        }
    }

    fn reopen(&mut self) -> Result<(), ReadError> {
        self.file = None;
        if self
            .unsupported_at
            .is_some_and(|t| t.elapsed() < UNSUPPORTED_RECHECK)
        {
            return Err(ReadError::Unsupported {
                path: self.path.clone(),
            });
        }
        match open(&self.path) {
            Ok(file) => {
                self.unsupported_at = None;
                self.file = Some(file);
                Ok(())
            }
            Err(e) => {
                if matches!(e, ReadError::Unsupported { .. }) {
                    self.unsupported_at = Some(Instant::now());
                }
                Err(e)
            }
        }
    }

    fn pread(&mut self) -> io::Result<usize> {
        let (file, buf) = (&self.file, &mut self.buf);
        match file {
            Some(file) => retry(|| file.read_at(buf, 0)),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    /// Reads afresh, returning how many bytes of `buf` hold whole lines.
    fn read(&mut self) -> Result<usize, ReadError> {
        let fresh = self.file.is_none();
        if fresh {
            self.reopen()?;
        }
        let mut result = self.pread();
        // A kept-open file reads ENODEV once its cgroup is removed or its PSI
        // was switched off; only a fresh open tells which.
        if !fresh && matches!(&result, Err(e) if e.raw_os_error() == Some(libc_errno::ENODEV)) {
            self.reopen()?;
            result = self.pread();
        }
        match result {
            Ok(n) => Ok(whole_lines(&self.buf, n).len()),
            Err(e) => {
                self.file = None;
                Err(read_error(&self.path, e))
            }
        }
    }
}

/// A pressure file kept open and re-read with `pread` at offset 0: one system
/// call a read, no allocation. This is the exporter's hot path.
///
/// The kernel ends a kept-open file when its cgroup is removed or its
/// `cgroup.pressure` is set to `0` (reads fail with `ENODEV`, even after `1`
/// is written back): [`read`](Self::read) then reopens the path once before
/// concluding. A file that could not be opened is retried on the next read,
/// so a `PressureFile` follows a cgroup whose PSI is switched off and on.
#[derive(Debug)]
pub struct PressureFile(KeptFile);

impl PressureFile {
    /// Opens `path` and keeps it open.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, ReadError> {
        let mut file = Self::new(path);
        file.0.reopen()?;
        Ok(file)
    }

    /// A `PressureFile` for `path` that opens it on the first [`read`](Self::read).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PressureFile(KeptFile::new(path.into()))
    }

    /// The path this reads.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// True while a file descriptor is held.
    pub fn is_open(&self) -> bool {
        self.0.file.is_some()
    }

    /// Reads the file afresh.
    pub fn read(&mut self) -> Result<Pressure, ReadError> {
        let n = self.0.read()?;
        parse_pressure(&self.0.path, self.0.buf.get(..n).unwrap_or_default())
    }
}

/// A cgroup's `cpu.stat` kept open, like [`PressureFile`].
#[derive(Debug)]
pub struct CpuStatFile(KeptFile);

impl CpuStatFile {
    /// A `CpuStatFile` for `<dir>/cpu.stat`, opened on the first read.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        CpuStatFile(KeptFile::new(dir.as_ref().join("cpu.stat")))
    }

    /// Reads the file afresh.
    pub fn read(&mut self) -> Result<CpuStat, ReadError> {
        let n = self.0.read()?;
        Ok(crate::cpu_stat::parse(
            self.0.buf.get(..n).unwrap_or_default(),
        ))
    }
}

/// The pressure files of one place, the system or a cgroup, kept open.
#[derive(Debug)]
pub struct PressureSet {
    files: [PressureFile; 4],
}

impl PressureSet {
    /// The system-wide files under `/proc/pressure`.
    pub fn system() -> Self {
        Self::system_at(Path::new("/proc"))
    }

    /// The system-wide files under `<proc_root>/pressure`.
    pub fn system_at(proc_root: &Path) -> Self {
        let dir = proc_root.join("pressure");
        PressureSet {
            files: Resource::ALL.map(|r| PressureFile::new(dir.join(r.name()))),
        }
    }

    /// The `<resource>.pressure` files of a cgroup v2 directory.
    pub fn cgroup(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        PressureSet {
            files: Resource::ALL.map(|r| PressureFile::new(dir.join(r.cgroup_file()))),
        }
    }

    /// The kept-open file for `resource`.
    pub fn file(&mut self, resource: Resource) -> &mut PressureFile {
        &mut self.files[resource.index()]
    }

    /// Reads one resource.
    pub fn read(&mut self, resource: Resource) -> Result<Pressure, ReadError> {
        self.file(resource).read()
    }

    /// Reads every resource, in [`Resource::ALL`] order.
    pub fn read_all(&mut self) -> [(Resource, Result<Pressure, ReadError>); 4] {
        Resource::ALL.map(|r| (r, self.read(r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(errno: rustix::io::Errno) -> io::Error {
        io::Error::from_raw_os_error(errno.raw_os_error())
    }

    #[test]
    fn eopnotsupp_means_booted_with_psi_0() {
        // The kernel cannot be rebooted with psi=0 in a test: the errno is what it returns.
        let e = read_error(
            Path::new("/proc/pressure/cpu"),
            err(rustix::io::Errno::OPNOTSUPP),
        );
        assert!(matches!(
            e,
            ReadError::Disabled {
                by: DisabledBy::Kernel,
                ..
            }
        ));
        assert_eq!(e.reason(), "disabled");
        assert_eq!(
            e.to_string(),
            "pressure stall information is disabled for /proc/pressure/cpu: \
             the kernel was booted with psi=0; boot with psi=1 to enable it"
        );
    }

    #[test]
    fn missing_system_file_is_unsupported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = system_at(dir.path(), Resource::Irq).expect_err("no such file");
        assert!(matches!(e, ReadError::Unsupported { .. }), "{e:?}");
    }

    #[test]
    fn missing_file_in_missing_dir_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = cgroup(&dir.path().join("removed"), Resource::Cpu).expect_err("gone");
        assert!(matches!(e, ReadError::Gone { .. }), "{e:?}");
    }

    #[test]
    fn garbage_is_a_parse_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("cpu.pressure");
        std::fs::write(&p, "some avg10=zero\n").expect("write");
        let e = path(&p).expect_err("garbage");
        assert_eq!(e.reason(), "parse");
        assert_eq!(e.to_string(), format!("failed to parse {}", p.display()));
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("invalid digit in avg10 (byte 11, line 1)")
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("cpu.pressure");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let e = path(&p).expect_err("a fifo is not a pressure file");
        assert_eq!(e.reason(), "io");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("not a regular file"));
    }

    #[test]
    fn a_fifo_in_place_of_cgroup_pressure_does_not_hang_the_explanation() {
        // cpu.pressure is missing, so the reader looks at cgroup.pressure to
        // say why; a FIFO there must not block that open (it would forever).
        let dir = tempfile::tempdir().expect("tempdir");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("cgroup.pressure"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let e = cgroup(dir.path(), Resource::Cpu).expect_err("no cpu.pressure");
        assert!(matches!(e, ReadError::Unsupported { .. }), "{e:?}");
    }

    #[test]
    fn a_full_buffer_keeps_whole_lines_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("cpu.pressure");
        let mut text = String::from("some avg10=0.12 avg60=1.05 avg300=10.50 total=1\n");
        while text.len() < BUF_LEN * 2 {
            text.push_str("future avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
        }
        std::fs::write(&p, &text).expect("write");
        let got = PressureFile::open(&p)
            .and_then(|mut f| f.read())
            .expect("parses");
        assert_eq!(got.some.map(|r| r.total), Some(1));
    }
}
