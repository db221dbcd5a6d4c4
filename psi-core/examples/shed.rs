//! Adaptive load shedding: a worker pool that refuses new work while its
//! own cgroup's CPU pressure over the last interval is above a limit.
//!
//! ```text
//! cargo run -p psi-core --example shed [DURATION] [LIMIT] [INTERVAL]
//! ```
//!
//! Defaults: run `10s`, shed above `20` % of `cpu.some` (the share of time
//! at least one of the cgroup's tasks was waiting for a CPU), measured over
//! each `500ms`. Work arrives every 4 ms and costs 0.5 ms of CPU.
//! Put the program in a cgroup with other busy processes (or a low
//! `cpu.max`) and it sheds; take them away and it accepts again. Each
//! interval prints one line, and the last line the totals.
//!
//! The decision uses the exact rate from `total` over the interval, not
//! the kernel's `avg10`: that average moves every 2 s and remembers the
//! last 10 s, too slow for a queue that fills in milliseconds.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, TrySendError};
use std::time::{Duration, Instant};

use psi_core::discover::{self, Config};
use psi_core::rate::Rate;
use psi_core::read::PressureFile;

/// Counts kept by the pool, read by the report.
#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    shed: AtomicU64,
    queue_full: AtomicU64,
    done: AtomicU64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let run = match args.next() {
        Some(text) => psi_core::duration::parse(&text)?,
        None => Duration::from_secs(10),
    };
    let limit_percent: u64 = args.next().map_or(Ok(20), |n| n.parse())?;
    let interval = match args.next() {
        Some(text) => psi_core::duration::parse(&text)?,
        None => Duration::from_millis(500),
    };

    let cgroup = discover::cgroup_of(&Config::default(), std::process::id())?;
    let mut cpu = PressureFile::open(cgroup.join("cpu.pressure"))?;
    println!(
        "cgroup {}: shedding while cpu some > {limit_percent}% over {} ms",
        cgroup.display(),
        interval.as_millis()
    );

    let counts = Arc::new(Counts::default());
    let shedding = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::sync_channel::<Instant>(64);
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (rx, counts) = (Arc::clone(&rx), Arc::clone(&counts));
            std::thread::spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    if job.is_err() {
                        break;
                    }
                    spin(Duration::from_micros(500));
                    counts.done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // The producer: work arrives at a steady pace, refused while shedding.
    let producer = {
        let (counts, shedding) = (Arc::clone(&counts), Arc::clone(&shedding));
        std::thread::spawn(move || {
            let end = Instant::now() + run;
            while Instant::now() < end {
                if shedding.load(Ordering::Relaxed) {
                    counts.shed.fetch_add(1, Ordering::Relaxed);
                } else {
                    match tx.try_send(Instant::now()) {
                        Ok(()) => counts.accepted.fetch_add(1, Ordering::Relaxed),
                        Err(TrySendError::Full(_)) => {
                            counts.queue_full.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(TrySendError::Disconnected(_)) => break,
                    };
                }
                std::thread::sleep(Duration::from_millis(4));
            }
            // Dropping the sender stops the workers once the queue is empty.
        })
    };

    // The controller: the cgroup's cpu.some rate over each interval.
    let start = Instant::now();
    let mut before = (cpu.read()?, Instant::now());
    let mut last = (0, 0);
    while start.elapsed() < run {
        std::thread::sleep(interval);
        let now = (cpu.read()?, Instant::now());
        let elapsed_us = u64::try_from(now.1.duration_since(before.1).as_micros())?;
        let rate = match (before.0.some, now.0.some) {
            (Some(a), Some(b)) => Rate::between(&a, &b, elapsed_us),
            _ => None,
        };
        let over = rate.is_some_and(|r| r.exceeds_hundredths(limit_percent * 100));
        shedding.store(over, Ordering::Relaxed);
        let (accepted, shed) = (
            counts.accepted.load(Ordering::Relaxed),
            counts.shed.load(Ordering::Relaxed),
        );
        // What this interval did, then what the next one will do.
        println!(
            "{:>5} ms: +{:<3} accepted +{:<3} shed; cpu some {:>6}% -> {}",
            start.elapsed().as_millis(),
            accepted - last.0,
            shed - last.1,
            rate.map_or_else(|| "?".to_owned(), |r| r.to_string()),
            if over { "shedding" } else { "accepting" },
        );
        last = (accepted, shed);
        before = now;
    }
    // A thread that panicked has nothing left to count.
    let _ = producer.join();
    for w in workers {
        let _ = w.join();
    }
    println!(
        "accepted {}, shed {}, queue full {}, done {}",
        counts.accepted.load(Ordering::Relaxed),
        counts.shed.load(Ordering::Relaxed),
        counts.queue_full.load(Ordering::Relaxed),
        counts.done.load(Ordering::Relaxed),
    );
    Ok(())
}

/// Burns `cost` of CPU time: a stand-in for real work.
fn spin(cost: Duration) {
    let end = Instant::now() + cost;
    let mut x = 0u64;
    while Instant::now() < end {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
