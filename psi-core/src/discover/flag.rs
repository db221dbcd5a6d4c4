//! Reading a pid_flag without trusting it.
//!
//! Our own flag is read through this process's view of the file system. The
//! flag of another container is read through its root directory with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so that an absolute
//! symlink such as `/etc/pid_flag -> /etc/pid_flag_sc/pid_flag` resolves inside
//! that container (where our flag is not) and `..` stops at its root, while
//! the kubelet's relative `pid_flag -> ..data/pid_flag` links keep working.
//!
//! Every file is first opened with `O_PATH`, which opens nothing: a FIFO, a
//! socket or a device is seen by `fstat` and refused without ever being
//! opened for reading. A regular file is then opened again with
//! `O_RDONLY | O_NONBLOCK`, checked to be the same inode, and read up to
//! [`FLAG_LIMIT`] + 1 bytes.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::Read as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::Path;

use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::{Dir, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::error::FlagError;

/// The largest flag accepted, in bytes; a longer one is refused, not truncated.
pub const FLAG_LIMIT: usize = 4096;

/// The file a ConfigMap directory is expected to hold.
const NAMED_FLAG: &str = "pid_flag";

/// Directory entries read from a flag directory, hidden ones included. A
/// ConfigMap volume holds a handful; a container could make millions.
const MAX_ENTRIES: usize = 1024;

/// `FUSE_SUPER_MAGIC` from `<linux/magic.h>`.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// How often an `openat2` that raced with a rename or mount is retried.
const EAGAIN_RETRIES: u32 = 8;

/// Where paths are resolved.
#[derive(Clone, Copy)]
pub(super) enum Base<'a> {
    /// This process's own view: for our own flag.
    Host,
    /// Inside another process's root directory, never leaving it.
    InRoot(BorrowedFd<'a>),
}

impl Base<'_> {
    fn open(self, path: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
        // openat2 refuses O_PATH combined with anything but these.
        let flags = if flags.contains(OFlags::PATH) {
            flags | OFlags::CLOEXEC
        } else {
            flags | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK
        };
        match self {
            Base::Host => rustix::fs::open(path, flags, Mode::empty()),
            Base::InRoot(root) => open_in_root(root, path, flags),
        }
    }

    fn untrusted(self) -> bool {
        matches!(self, Base::InRoot(_))
    }
}

/// `openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`.
pub(super) fn open_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(root, path, flags, Mode::empty(), resolve) {
            // RESOLVE_IN_ROOT answers EAGAIN when a rename or a mount raced
            // with a `..` in the path: the kernel asks us to try again.
            Err(Errno::AGAIN | Errno::INTR) if tries < EAGAIN_RETRIES => tries += 1,
            other => return other,
        }
    }
}

/// Reads the flag at `path`: a regular file, or a directory holding it.
pub(super) fn read_flag(base: Base<'_>, path: &Path) -> Result<String, FlagError> {
    let (handle, meta) = open_path(base, path)?;
    if meta.is_dir() {
        read_flag_dir(base, path, &meta)
    } else {
        read_regular(base, path, handle, &meta)
    }
}

/// Opens `path` with `O_PATH` (no side effects, never blocks) and stats it.
fn open_path(base: Base<'_>, path: &Path) -> Result<(File, Metadata), FlagError> {
    let handle = File::from(base.open(path, OFlags::PATH)?);
    let meta = handle.metadata()?;
    Ok((handle, meta))
}

/// Reads a regular file, `handle` being its `O_PATH` handle.
fn read_regular(
    base: Base<'_>,
    path: &Path,
    handle: File,
    meta: &Metadata,
) -> Result<String, FlagError> {
    if !meta.is_file() {
        return Err(FlagError::NotRegular {
            kind: kind(meta.file_type()),
        });
    }
    if base.untrusted() && on_fuse(&handle) {
        return Err(FlagError::Fuse);
    }
    if meta.len() > FLAG_LIMIT as u64 {
        return Err(FlagError::TooLarge { limit: FLAG_LIMIT });
    }
    // Reopen for reading. Between the two opens the path may have been
    // swapped for something else: the inode check catches it, and
    // O_NONBLOCK keeps even a swapped-in FIFO from blocking the open.
    let file = File::from(base.open(path, OFlags::RDONLY)?);
    let now = file.metadata()?;
    if !now.is_file() || now.dev() != meta.dev() || now.ino() != meta.ino() {
        return Err(FlagError::Replaced);
    }
    let mut buf = [0u8; FLAG_LIMIT + 1];
    let mut len = 0;
    // `take` bounds the read even if the file grows after the size check.
    let mut limited = file.take(buf.len() as u64);
    loop {
        match limited.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
        if len == buf.len() {
            break;
        }
    }
    flag_text(&buf[..len]).map(str::to_owned)
}

/// What a flag file's bytes say as a flag: at most [`FLAG_LIMIT`] bytes of
/// UTF-8, trimmed of whitespace, not empty. Two flags match when these are
/// equal.
///
/// ```
/// use psi_core::discover::flag_text;
///
/// assert_eq!(flag_text(b"  my-app\n").ok(), Some("my-app"));
/// assert!(flag_text(b" \n").is_err());
/// assert!(flag_text(b"\xff").is_err());
/// ```
pub fn flag_text(bytes: &[u8]) -> Result<&str, FlagError> {
    if bytes.len() > FLAG_LIMIT {
        return Err(FlagError::TooLarge { limit: FLAG_LIMIT });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| FlagError::NotUtf8)?;
    let flag = text.trim();
    if flag.is_empty() {
        return Err(FlagError::Empty);
    }
    Ok(flag)
}

/// Reads the flag of a ConfigMap-style directory: its `pid_flag`, or else its
/// only regular file. Entries whose names begin with `..` (the kubelet's
/// `..data` link and `..<timestamp>` directories) are not counted.
fn read_flag_dir(base: Base<'_>, path: &Path, meta: &Metadata) -> Result<String, FlagError> {
    let dir = File::from(base.open(path, OFlags::RDONLY | OFlags::DIRECTORY)?);
    let now = dir.metadata()?;
    if now.dev() != meta.dev() || now.ino() != meta.ino() {
        return Err(FlagError::Replaced);
    }
    let mut names = Vec::new();
    let mut seen = 0;
    let mut named = false;
    for entry in Dir::new(OwnedFd::from(dir))? {
        let entry = entry?;
        seen += 1;
        if seen > MAX_ENTRIES {
            return Err(FlagError::TooManyEntries { limit: MAX_ENTRIES });
        }
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." || name.starts_with(b"..") {
            continue;
        }
        if name == NAMED_FLAG.as_bytes() {
            named = true;
            break;
        }
        names.push(OsStr::from_bytes(name).to_owned());
    }
    if named {
        let file = path.join(NAMED_FLAG);
        let (handle, meta) = open_path(base, &file)?;
        return read_regular(base, &file, handle, &meta);
    }
    // Entries that cannot be opened (a dangling link) or are not regular
    // files (a subdirectory) are not candidates.
    let mut candidates = names.iter().filter_map(|name| {
        let file = path.join(name);
        let (handle, meta) = open_path(base, &file).ok()?;
        meta.is_file().then_some((file, handle, meta))
    });
    match (candidates.next(), candidates.next()) {
        (None, _) => Err(FlagError::NoFlagFile),
        (Some((file, handle, meta)), None) => read_regular(base, &file, handle, &meta),
        (Some(_), Some(_)) => Err(FlagError::SeveralFiles {
            count: 2 + candidates.count(),
        }),
    }
}

/// Whether the file is on FUSE, whose daemon may never answer a read.
fn on_fuse(handle: &File) -> bool {
    // `f_type` is a signed long of architecture-dependent width.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::fstatfs(handle).is_ok_and(|st| st.f_type as i64 == FUSE_SUPER_MAGIC)
}

/// A word for what a non-regular file is.
fn kind(t: std::fs::FileType) -> &'static str {
    if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symlink"
    } else {
        "special file"
    }
}
