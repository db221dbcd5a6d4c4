//! Child processes a test starts and must not leave behind, and polling for
//! what they do.

use std::io;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// A child process stopped (SIGTERM, then SIGKILL after 2 s) when dropped,
/// so that a failing test leaves no server or container running.
#[derive(Debug)]
pub struct Process {
    /// The child.
    pub child: Child,
}

impl Process {
    /// Sends a signal to the process: `TERM`, `INT`, `HUP` or `KILL`.
    pub fn signal(&self, sig: &str) -> io::Result<()> {
        use rustix::process::{Pid, Signal, kill_process};
        let sig = match sig {
            "TERM" => Signal::TERM,
            "INT" => Signal::INT,
            "HUP" => Signal::HUP,
            "KILL" => Signal::KILL,
            other => return Err(io::Error::other(format!("no signal {other} here"))),
        };
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::other("no such pid"))?;
        kill_process(pid, sig).map_err(io::Error::from)
    }

    /// Waits up to `limit` for the process to exit: `None` if it still runs.
    pub fn wait_timeout(&mut self, limit: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SIGTERM first: a server under test shuts down as in production
            // and releases its port; SIGKILL only if it does not.
            let _ = self.signal("TERM");
            if !matches!(self.wait_timeout(Duration::from_secs(2)), Ok(Some(_))) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Polls `f` every 200 ms until it returns `Some`, for at most `limit`.
///
/// Tests wait for what the kernel or a server does with this rather than
/// sleeping a fixed time: fast where the machine is idle, patient where it
/// is shared.
pub fn eventually<T>(limit: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    eventually_every(limit, Duration::from_millis(200), f)
}

/// [`eventually`], polling every `period`: for a test that waits for
/// something a hundred times, where 200 ms a wait would add up.
pub fn eventually_every<T>(
    limit: Duration,
    period: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(period);
    }
}
