//! Keeps one pressure file open and prints its exact stall rate over each
//! interval, from the growth of `total` (the kernel's own averages move
//! every 2 s and are smoothed; this is the share of *this* interval).
//!
//! ```text
//! cargo run -p psi-core --example rate [DIR] [RESOURCE] [INTERVAL] [COUNT]
//! ```
//!
//! Defaults: `/proc/pressure`, `cpu`, `1s`, 5 samples (`0`: until stopped).
//! `DIR` is `/proc/pressure` or a cgroup directory; `INTERVAL` is in psi's
//! duration grammar (`250ms`, `2s`). The file is one `PressureFile` of a
//! `PressureSet`, opened once and re-read with one `pread` a sample; the
//! set leaves out the lines the kernel does not measure (the whole
//! system's cpu `full`).

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use psi_core::rate::Rate;
use psi_core::target::Target;
use psi_core::{Line, Resource};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "/proc/pressure".to_owned());
    let resource: Resource = args.next().as_deref().unwrap_or("cpu").parse()?;
    let interval = match args.next() {
        Some(text) => psi_core::duration::parse(&text)?,
        None => Duration::from_secs(1),
    };
    let count: u64 = args.next().map_or(Ok(5), |n| n.parse())?;

    let target = if dir == "/proc/pressure" {
        Target::system(Path::new("/proc"))
    } else {
        Target::at(dir.into(), None)?
    };
    let mut files = target.pressure_set();
    let path = files.file(resource).path().display().to_string();
    let mut before = (files.read(resource)?, Instant::now());
    for _ in (0..).take_while(|&n| count == 0 || n < count) {
        std::thread::sleep(interval);
        let now = (files.read(resource)?, Instant::now());
        let elapsed_us = u64::try_from(now.1.duration_since(before.1).as_micros())?;
        for line in Line::ALL {
            let (Some(a), Some(b)) = (before.0.get(line), now.0.get(line)) else {
                continue;
            };
            if let Some(rate) = Rate::between(a, b, elapsed_us) {
                println!(
                    "{path} {line}: {rate}% stalled over the last {} ms (avg10 {})",
                    elapsed_us / 1000,
                    b.avg10
                );
            }
        }
        before = now;
    }
    Ok(())
}
