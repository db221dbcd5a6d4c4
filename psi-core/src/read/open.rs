//! Opening files that may be hostile, and naming what went wrong.
//!
//! A path may run through another container's root, where a FIFO or a
//! device in place of a pressure file must not hang or fool the reader: every
//! file is opened `O_NONBLOCK` and must be a regular file.

use std::fs::File;
use std::io::{self, Read as _};
use std::path::Path;
use std::sync::Arc;

use super::error::{DisabledBy, ReadError};
use crate::{ParseError, Pressure};

/// The size of the buffer a pressure file is read into. Today's files are
/// about 110 bytes; the rest is room for fields a later kernel may add.
pub const BUF_LEN: usize = 512;

/// Opens a file to read, without blocking and only if it is a regular file.
pub(super) fn open(path: &Path) -> Result<File, ReadError> {
    let file = open_nonblocking(path).map_err(|e| open_error(path, e))?;
    let meta = file.metadata().map_err(|e| read_error(path, e))?;
    if !meta.is_file() {
        return Err(ReadError::Io {
            path: path.into(),
            source: not_regular(),
        });
    }
    Ok(file)
}

/// Reads a regular file of at most `buf.len()` bytes, without blocking,
/// keeping whole lines only: one open, one read, one close.
pub(super) fn read_once<'b>(path: &Path, buf: &'b mut [u8]) -> Result<&'b [u8], ReadError> {
    let mut file = open(path)?;
    let n = retry(|| file.read(buf)).map_err(|e| read_error(path, e))?;
    Ok(whole_lines(buf, n))
}

/// Parses what a pressure file held, naming the file on failure.
pub(super) fn parse_pressure(path: &Path, data: &[u8]) -> Result<Pressure, ReadError> {
    crate::parse(data).map_err(|source: ParseError| ReadError::Parse {
        path: path.into(),
        source,
    })
}

/// The first `n` bytes of `buf`. A read that filled the buffer may have cut a
/// line short; the kernel writes its known lines first, so only whole lines
/// are kept.
pub(super) fn whole_lines(buf: &[u8], n: usize) -> &[u8] {
    let data = buf.get(..n).unwrap_or(buf);
    match memchr::memrchr(b'\n', data) {
        Some(end) if n == buf.len() => data.get(..=end).unwrap_or(data),
        _ => data,
    }
}

/// Retries a system call interrupted by a signal.
pub(super) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
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
    let path: Arc<Path> = path.into();
    match e.raw_os_error() {
        Some(errno::ENOENT) => missing(path),
        Some(errno::ENODEV) if is_cgroup_file(&path) => ReadError::Gone { path },
        _ => classify(path, e),
    }
}

/// Explains a failed `read`.
pub(super) fn read_error(path: &Path, e: io::Error) -> ReadError {
    let path: Arc<Path> = path.into();
    match e.raw_os_error() {
        Some(errno::ENODEV) => ReadError::Gone { path },
        _ => classify(path, e),
    }
}

/// True for the error a kept-open file gives once the kernel has ended it.
pub(super) fn is_ended(e: &io::Error) -> bool {
    e.raw_os_error() == Some(errno::ENODEV)
}

/// The errors that mean the same on open and read.
fn classify(path: Arc<Path>, e: io::Error) -> ReadError {
    match e.raw_os_error() {
        Some(errno::EOPNOTSUPP) => ReadError::Disabled {
            path,
            by: DisabledBy::Kernel,
        },
        Some(errno::EACCES | errno::EPERM) => ReadError::PermissionDenied { path, source: e },
        _ => ReadError::Io { path, source: e },
    }
}

/// Explains a pressure file that does not exist: its cgroup was removed, its
/// cgroup hides it (`cgroup.pressure` is `0`), or the kernel lacks it.
fn missing(path: Arc<Path>) -> ReadError {
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
        // Kernels before 6.1 have no cgroup.pressure: the directory tells,
        // unless it is a removed cgroup still seen through a mount of it.
        Err(_) if dir.is_dir() && !crate::fs::is_removed_cgroup(dir) => {
            ReadError::Unsupported { path }
        }
        Err(_) => ReadError::Gone { path },
    }
}

/// The errno values this module tells apart (Linux numbering, from rustix).
mod errno {
    use rustix::io::Errno;

    pub(super) const ENOENT: i32 = Errno::NOENT.raw_os_error();
    pub(super) const ENODEV: i32 = Errno::NODEV.raw_os_error();
    pub(super) const EOPNOTSUPP: i32 = Errno::OPNOTSUPP.raw_os_error();
    pub(super) const EACCES: i32 = Errno::ACCESS.raw_os_error();
    pub(super) const EPERM: i32 = Errno::PERM.raw_os_error();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::Reason;

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
        assert_eq!(e.reason(), Reason::Disabled);
        assert_eq!(
            e.to_string(),
            "pressure stall information is disabled for /proc/pressure/cpu: \
             the kernel was booted with psi=0; boot with psi=1 to enable it"
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
        let e = read_once(&p, &mut [0; BUF_LEN]).expect_err("a fifo is not a pressure file");
        assert_eq!(e.reason(), Reason::Io);
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
        let e = open(&dir.path().join("cpu.pressure")).expect_err("no cpu.pressure");
        assert!(matches!(e, ReadError::Unsupported { .. }), "{e:?}");
    }
}
