//! The floor under node mode's scrape: a minimal program that only
//! `pread`s every pressure file of the container cgroups under a root that
//! the kubelet's container log directory names (the ones node mode exports
//! at `--level container`, sandboxes left out), once per pass, and prints
//! the CPU time of a pass. `benches/node.sh` runs it beside the exporter on
//! the same tree.
//!
//! `pread_floor ROOT CONTAINER_LOGS [PASSES]`

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::time::Instant;

use psi_core::cgroup::kube::{Identity, Level};
use psi_core::cgroup::logs::Names;
use psi_core::cgroup::{relative, walk};

/// utime + stime of this process, in clock ticks (100 a second on Linux).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the command: state is field 3, utime 14, stime 15.
    field(11) + field(12)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(logs)) = (args.next(), args.next()) else {
        eprintln!("usage: pread_floor ROOT CONTAINER_LOGS [PASSES]");
        std::process::exit(2);
    };
    let passes: u32 = args.next().and_then(|p| p.parse().ok()).unwrap_or(200);
    let root = Path::new(&root);
    let names = Names::read(Path::new(""), Path::new(&logs));
    let mut files = Vec::new();
    for entry in walk(root, 8) {
        let Some(name) = relative(root, &entry.path) else {
            continue;
        };
        let container = Identity::from_path(Path::new(&name)).is_some_and(|id| {
            id.level == Level::Container
                && id
                    .container_id
                    .as_deref()
                    .is_some_and(|c| names.container(c).is_some())
        });
        if !container {
            continue;
        }
        for file in [
            "cpu.pressure",
            "memory.pressure",
            "io.pressure",
            "irq.pressure",
        ] {
            if let Ok(f) = File::open(entry.path.join(file)) {
                files.push(f);
            }
        }
    }
    let mut buf = [0u8; 512];
    let mut bytes = 0usize;
    let (ticks0, wall0) = (cpu_ticks(), Instant::now());
    for _ in 0..passes {
        for f in &files {
            bytes += f.read_at(&mut buf, 0).unwrap_or(0);
        }
    }
    let (ticks, wall) = (cpu_ticks() - ticks0, wall0.elapsed());
    let cpu_us = ticks as f64 * 10_000.0 / f64::from(passes);
    let wall_us = wall.as_secs_f64() * 1e6 / f64::from(passes);
    // files, CPU µs per pass, wall µs per pass, bytes per pass
    println!(
        "{} {cpu_us:.0} {wall_us:.0} {}",
        files.len(),
        bytes / passes.max(1) as usize
    );
}
