//! Files kept open and re-read with `pread` at offset 0: the exporter's hot
//! path, one system call a read and no allocation.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Reading;
use super::error::ReadError;
use super::open::{BUF_LEN, is_ended, open, read_error, retry, whole_lines};
use crate::cgroup::Kind;
use crate::cpu_stat::CpuStat;
use crate::{PerResource, Pressure, Resource};

/// How long an unsupported file is taken to stay unsupported.
const UNSUPPORTED_RECHECK: Duration = Duration::from_secs(60);

/// A file kept open and re-read with `pread` at offset 0, reopened once on
/// `ENODEV` and on the read after a failure. It reads into the caller's
/// buffer (on the stack): a node keeps thousands of these.
#[derive(Debug)]
struct KeptFile {
    path: FilePath,
    file: Option<File>,
    /// When the file was last found unsupported: that is the kernel's to
    /// change, not the cgroup's, so it is only checked again after
    /// [`UNSUPPORTED_RECHECK`] rather than costing an `open` every read.
    unsupported_at: Option<Instant>,
}

/// Where a kept file is: a path of its own, or a name in a directory that
/// the four files of a [`PressureSet`] share. A node has thousands of
/// cgroups: the whole path is made only when a file is opened, or when an
/// error needs it (and then kept, for the error a file gives at every
/// read).
#[derive(Debug)]
enum FilePath {
    Own(Arc<Path>),
    InDir {
        dir: Arc<Path>,
        name: &'static str,
        whole: std::sync::OnceLock<Arc<Path>>,
    },
}

impl FilePath {
    /// The whole path, shared.
    fn whole(&self) -> &Arc<Path> {
        match self {
            FilePath::Own(path) => path,
            FilePath::InDir { dir, name, whole } => whole.get_or_init(|| dir.join(name).into()),
        }
    }
}

impl KeptFile {
    fn new(path: PathBuf) -> Self {
        Self::at(FilePath::Own(path.into()))
    }

    fn at(path: FilePath) -> Self {
        KeptFile {
            path,
            file: None,
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
                path: self.path.whole().clone(),
            });
        }
        let opened = match &self.path {
            FilePath::Own(path) => open(path),
            // Made for the open, and dropped after it.
            FilePath::InDir { dir, name, .. } => open(&dir.join(name)),
        };
        match opened {
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

    fn pread(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.file {
            Some(file) => retry(|| file.read_at(buf, 0)),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    /// Reads afresh into `buf`, returning the whole lines read.
    fn read<'b>(&mut self, buf: &'b mut [u8; BUF_LEN]) -> Result<&'b [u8], ReadError> {
        let fresh = self.file.is_none();
        if fresh {
            self.reopen()?;
        }
        let mut result = self.pread(buf);
        // A kept-open file reads ENODEV once its cgroup is removed or its PSI
        // was switched off; only a fresh open tells which.
        if !fresh && matches!(&result, Err(e) if is_ended(e)) {
            self.reopen()?;
            result = self.pread(buf);
        }
        match result {
            Ok(n) => Ok(whole_lines(buf, n)),
            Err(e) => {
                self.file = None;
                Err(read_error(self.path.whole(), e))
            }
        }
    }
}

/// A pressure file kept open and re-read with `pread` at offset 0: one system
/// call a read, no allocation.
///
/// The kernel ends a kept-open file when its cgroup is removed or its
/// `cgroup.pressure` is set to `0` (reads fail with `ENODEV`, even after `1`
/// is written back): [`read`](Self::read) then reopens the path once before
/// concluding. A file that could not be opened is retried on the next read,
/// so a `PressureFile` follows a cgroup whose PSI is switched off and on. A
/// file the kernel does not have ([`ReadError::Unsupported`]) is looked for
/// again once a minute, not at every read.
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
        self.0.path.whole()
    }

    /// True while a file descriptor is held.
    pub fn is_open(&self) -> bool {
        self.0.file.is_some()
    }

    /// Reads the file afresh.
    pub fn read(&mut self) -> Result<Pressure, ReadError> {
        let mut buf = [0u8; BUF_LEN];
        let data = self.0.read(&mut buf)?;
        // The path is made only for an error.
        crate::parse(data).map_err(|source| ReadError::Parse {
            path: self.0.path.whole().clone(),
            source,
        })
    }

    /// Reads the file afresh and closes it: open, read, close, for a file
    /// that is not worth a descriptor between reads (past a budget of open
    /// files). The next [`read`](Self::read) opens it again.
    pub fn read_and_close(&mut self) -> Result<Pressure, ReadError> {
        let result = self.read();
        self.0.file = None;
        result
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
        let mut buf = [0u8; BUF_LEN];
        Ok(crate::cpu_stat::parse(self.0.read(&mut buf)?))
    }
}

/// The pressure files of one directory, the system's or a cgroup's, kept
/// open. What it reads has the lines the kernel measures there and no
/// other: the whole system's cpu `full` line, all zeros by the kernel's
/// definition, is left out (see [`Kind::measures`]).
#[derive(Debug)]
pub struct PressureSet {
    dir: PathBuf,
    kind: Kind,
    files: PerResource<PressureFile>,
    /// Whether files stay open between reads.
    keep_open: bool,
}

impl PressureSet {
    /// The system-wide files under `/proc/pressure`.
    pub fn system() -> Self {
        Self::system_at(Path::new("/proc"))
    }

    /// The system-wide files under `<proc_root>/pressure`.
    pub fn system_at(proc_root: &Path) -> Self {
        Self::new(proc_root.join("pressure"), Kind::System)
    }

    /// The `<resource>.pressure` files of a cgroup v2 directory, or of a
    /// saved copy of one. Whether it is the root cgroup is found out now
    /// ([`Kind::of`]); a directory that cannot be told is taken for a cgroup.
    pub fn cgroup(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let kind = match Kind::of(&dir) {
            Ok(kind @ (Kind::Root | Kind::Cgroup | Kind::Copy)) => kind,
            _ => Kind::Cgroup,
        };
        Self::new(dir, kind)
    }

    /// The files of `dir`, named and read as `kind` has them.
    pub fn new(dir: impl Into<PathBuf>, kind: Kind) -> Self {
        let dir = dir.into();
        PressureSet {
            files: {
                let shared: Arc<Path> = Arc::from(dir.as_path());
                PerResource::from_fn(|r| {
                    PressureFile(KeptFile::at(FilePath::InDir {
                        dir: shared.clone(),
                        name: kind.file_name(r),
                        whole: std::sync::OnceLock::new(),
                    }))
                })
            },
            dir,
            kind,
            keep_open: true,
        }
    }

    /// Whether the files stay open between reads (the default), or are
    /// opened, read and closed at every read: for a node with more cgroups
    /// than descriptors to keep. Setting `false` closes them now.
    pub fn set_keep_open(&mut self, keep: bool) {
        self.keep_open = keep;
        if !keep {
            for (_, file) in self.files.iter_mut() {
                file.0.file = None;
            }
        }
    }

    /// How many of the files are open now.
    pub fn open_files(&self) -> usize {
        self.files.values().filter(|f| f.is_open()).count()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the directory is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The kept-open file for `resource`.
    pub fn file(&mut self, resource: Resource) -> &mut PressureFile {
        &mut self.files[resource]
    }

    /// Reads one resource: the lines the kernel measures here.
    pub fn read(&mut self, resource: Resource) -> Result<Pressure, ReadError> {
        let kind = self.kind;
        let file = &mut self.files[resource];
        let read = if self.keep_open {
            file.read()
        } else {
            file.read_and_close()
        };
        read.map(|p| kind.measured(resource, p))
    }

    /// Reads every resource, in [`Resource::ALL`] order.
    pub fn read_all(&mut self) -> Reading {
        self.read_only(&Resource::ALL)
    }

    /// Reads only `resources`; the others are left as not read.
    pub fn read_only(&mut self, resources: &[Resource]) -> Reading {
        let mut reading = Reading::default();
        for &r in resources {
            let result = self.read(r);
            reading.set(r, result, Instant::now());
        }
        reading
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn files_past_a_budget_are_read_and_closed() {
        let dir = psi_testkit::files::dir(&[(
            "cpu.pressure",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n",
        )]);
        let mut set = PressureSet::cgroup(dir.path());
        assert!(set.read(Resource::Cpu).is_ok());
        assert_eq!(set.open_files(), 1);
        set.set_keep_open(false);
        assert_eq!(set.open_files(), 0);
        let again = set
            .read(Resource::Cpu)
            .expect("read without keeping it open");
        assert_eq!(again.some.map(|r| r.total), Some(5));
        assert_eq!(set.open_files(), 0);
    }

    #[test]
    fn the_system_layout_leaves_out_cpu_full_and_a_saved_copy_keeps_it() {
        // The same lines in both layouts. The copy is not on cgroup2fs, so
        // not the root cgroup, whatever files it lacks.
        const CPU: &str = "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n\
                           full avg10=0.00 avg60=0.00 avg300=0.00 total=3\n";
        let dir = psi_testkit::files::dir(&[("pressure/cpu", CPU), ("copy/cpu.pressure", CPU)]);
        let mut system = PressureSet::system_at(dir.path());
        let mut copy = PressureSet::cgroup(dir.path().join("copy"));
        assert_eq!((system.kind(), copy.kind()), (Kind::System, Kind::Copy));
        let (system, copy) = (system.read_all(), copy.read_all());
        let total = |r: &Reading, line| r.record(Resource::Cpu, line).map(|r| r.total);
        assert_eq!(total(&system, crate::Line::Some), Some(5));
        assert_eq!(total(&system, crate::Line::Full), None);
        assert_eq!(total(&copy, crate::Line::Full), Some(3));
        assert!(system.error(Resource::Irq).is_some());
    }
}
