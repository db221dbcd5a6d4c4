//! The terminal: a full-screen view that refreshes in place and is restored
//! on every exit (q, Ctrl-C, SIGTERM, SIGHUP, errors), and a wait that wakes
//! on the next tick, a key or a signal.

use std::io::{self, IsTerminal as _, Read as _, Write};
use std::os::fd::AsFd as _;
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};

/// What ended a [`Waiter::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The deadline passed.
    Tick,
    /// A key was pressed (the first byte of what was read).
    Key(u8),
    /// SIGINT, SIGTERM or SIGHUP arrived.
    Interrupt,
    /// The terminal was resized (SIGWINCH).
    Resize,
}

/// The ticks of a live view, every `interval`. A late tick (a suspended
/// process) starts a fresh schedule rather than catching up in a burst.
#[derive(Debug)]
pub struct Ticker {
    next: Instant,
    interval: Duration,
}

impl Ticker {
    /// The first tick is `interval` from now.
    pub fn new(interval: Duration) -> Self {
        Ticker {
            next: Instant::now() + interval,
            interval,
        }
    }

    /// Waits for the next tick, a key or a signal; a tick schedules the next.
    pub fn wait(&mut self, waiter: &mut Waiter) -> io::Result<Wake> {
        let wake = waiter.wait(self.next)?;
        if wake == Wake::Tick {
            self.next += self.interval;
            let now = Instant::now();
            if self.next <= now {
                self.next = now + self.interval;
            }
        }
        Ok(wake)
    }
}

/// Signals and keys, delivered through self-pipes so that `poll` sees them
/// without a race.
#[derive(Debug)]
pub struct Waiter {
    signals: UnixStream,
    winch: UnixStream,
    keys: bool,
}

impl Waiter {
    /// Catches SIGINT, SIGTERM, SIGHUP and SIGWINCH from now on; reads keys
    /// from stdin when `keys` is set and stdin is a terminal.
    pub fn new(keys: bool) -> io::Result<Self> {
        let (signals, tx) = UnixStream::pair()?;
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            signal_hook::low_level::pipe::register(sig, tx.try_clone()?)?;
        }
        let (winch, wtx) = UnixStream::pair()?;
        signal_hook::low_level::pipe::register(signal_hook::consts::SIGWINCH, wtx)?;
        signals.set_nonblocking(true)?;
        winch.set_nonblocking(true)?;
        Ok(Waiter {
            signals,
            winch,
            keys: keys && io::stdin().is_terminal(),
        })
    }

    /// Waits until `deadline`, a key or a signal.
    pub fn wait(&mut self, deadline: Instant) -> io::Result<Wake> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = timespec(left);
            let stdin = io::stdin();
            let stdin_fd = stdin.as_fd();
            let mut fds = vec![
                PollFd::new(&self.signals, PollFlags::IN),
                PollFd::new(&self.winch, PollFlags::IN),
            ];
            if self.keys {
                fds.push(PollFd::from_borrowed_fd(stdin_fd, PollFlags::IN));
            }
            let ready = match poll(&mut fds, Some(&timeout)) {
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            if ready == 0 {
                return Ok(Wake::Tick);
            }
            let readable = |fd: &PollFd<'_>| !fd.revents().is_empty();
            let (sig, winch, key) = (
                readable(&fds[0]),
                readable(&fds[1]),
                fds.get(2).is_some_and(readable),
            );
            drop(fds);
            if sig {
                drain(&mut self.signals);
                return Ok(Wake::Interrupt);
            }
            if winch {
                drain(&mut self.winch);
                return Ok(Wake::Resize);
            }
            if key {
                let mut buf = [0u8; 16];
                match stdin.lock().read(&mut buf) {
                    Ok(0) | Err(_) => self.keys = false,
                    Ok(_) => return Ok(Wake::Key(buf[0])),
                }
            }
            if Instant::now() >= deadline {
                return Ok(Wake::Tick);
            }
        }
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

fn drain(s: &mut UnixStream) {
    let mut buf = [0u8; 64];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

/// The terminal's size, columns and rows, when stdout is one.
pub fn size() -> Option<(usize, usize)> {
    let ws = termios::tcgetwinsize(io::stdout()).ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then(|| (usize::from(ws.ws_col), usize::from(ws.ws_row)))
}

/// The alternate screen with the cursor hidden and keys read one at a time
/// without echo; all of it undone on drop, and by a panic hook (release
/// builds abort on panic, so no destructor would run).
#[derive(Debug)]
pub struct Screen {
    _private: (),
}

/// While a [`Screen`] is up: the terminal settings to restore, if stdin is a
/// terminal.
static ACTIVE: Mutex<Option<Option<Termios>>> = Mutex::new(None);

impl Screen {
    /// Takes over the terminal.
    pub fn enter() -> io::Result<Self> {
        let stdin = io::stdin();
        let saved = if stdin.is_terminal() {
            let saved = termios::tcgetattr(&stdin)?;
            let mut keys = saved.clone();
            // Keys arrive one by one, unechoed; ISIG stays on so that Ctrl-C
            // is still a signal, and output processing is untouched.
            keys.local_modes
                .remove(LocalModes::ICANON | LocalModes::ECHO);
            keys.special_codes[SpecialCodeIndex::VMIN] = 1;
            keys.special_codes[SpecialCodeIndex::VTIME] = 0;
            termios::tcsetattr(&stdin, OptionalActions::Now, &keys)?;
            Some(saved)
        } else {
            None
        };
        if let Ok(mut active) = ACTIVE.lock() {
            *active = Some(saved);
        }
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        let mut out = io::stdout().lock();
        out.write_all(b"\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J")?;
        out.flush()?;
        Ok(Screen { _private: () })
    }

    /// Replaces the screen's content with `lines` (already cut to the width),
    /// without clearing first, so nothing flickers.
    pub fn draw(&mut self, lines: &[String]) -> io::Result<()> {
        let rows = size().map_or(usize::MAX, |s| s.1);
        let mut text = String::from("\x1b[H");
        for (i, line) in lines.iter().take(rows).enumerate() {
            if i > 0 {
                text.push_str("\r\n");
            }
            text.push_str(line);
            text.push_str("\x1b[K");
        }
        text.push_str("\x1b[J");
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }
}

/// Gives the terminal back: colours reset, cursor shown, main screen, the
/// saved settings. Does nothing when no screen is up.
fn restore() {
    let Some(saved) = ACTIVE.lock().ok().and_then(|mut a| a.take()) else {
        return;
    };
    // Stdout's lock is reentrant: this works from a panic while printing.
    let mut out = io::stdout().lock();
    let _ = out.write_all(b"\x1b[0m\x1b[?25h\x1b[?1049l");
    let _ = out.flush();
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(io::stdin(), OptionalActions::Now, &saved);
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}
