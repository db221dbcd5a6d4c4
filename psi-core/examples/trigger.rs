//! A kernel PSI trigger: sleep until the kernel says a cgroup stalled,
//! instead of polling.
//!
//! ```text
//! cargo run -p psi-core --example trigger [CGROUP] [TRIGGER] [EVENTS] [TIMEOUT]
//! ```
//!
//! Defaults: this process's own cgroup (also for an empty `CGROUP`), `cpu some 500ms 2s` (fire when
//! tasks waited for a CPU 500 ms within any 2 s: a window an unprivileged
//! process may use since Linux 6.4), stop after 1 event or `30s`. Exits 1
//! when no event came in time.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use psi_core::discover::{self, Config};
use psi_core::trigger::{EventKind, Monitor, Trigger};

fn main() -> Result<ExitCode, Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let dir = match args.next().filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => discover::cgroup_of(&Config::default(), std::process::id())?,
    };
    let spec: Trigger = args
        .next()
        .as_deref()
        .unwrap_or("cpu some 500ms 2s")
        .parse()?;
    let events: usize = args.next().map_or(Ok(1), |n| n.parse())?;
    let timeout = match args.next() {
        Some(text) => psi_core::duration::parse(&text)?,
        None => Duration::from_secs(30),
    };

    let mut monitor = Monitor::new();
    monitor.add_cgroup(&dir, spec)?;
    println!("armed {spec} on {}", dir.display());
    let start = Instant::now();
    let mut seen = 0;
    while seen < events {
        let Some(left) = timeout.checked_sub(start.elapsed()) else {
            break;
        };
        for event in monitor.wait(Some(left))? {
            match event.kind {
                EventKind::Fired => {
                    seen += 1;
                    println!(
                        "fired: {} after {} ms",
                        event.trigger,
                        start.elapsed().as_millis()
                    );
                }
                EventKind::Gone => {
                    println!("the cgroup is gone");
                    return Ok(ExitCode::FAILURE);
                }
                // Events a newer psi-core may report.
                other => println!("{other:?}"),
            }
        }
    }
    if seen < events {
        println!("no event within {} s", timeout.as_secs());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
