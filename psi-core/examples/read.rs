//! Reads the whole system's pressure and one cgroup's, once.
//!
//! ```text
//! cargo run -p psi-core --example read [CGROUP]
//! ```
//!
//! `CGROUP` is a path, absolute or relative to the cgroup v2 mount
//! (`system.slice`); without it, this process's own cgroup. A resource that
//! cannot be read says why, in the library's words: no fake zeros.

use std::error::Error;
use std::path::Path;

use psi_core::discover::{self, Config};
use psi_core::report::Chain;
use psi_core::target::Target;
use psi_core::{Line, cgroup};

fn main() -> Result<(), Box<dyn Error>> {
    let mount = cgroup::find_mount(Path::new("/proc"))?.point;
    let cgroup = match std::env::args_os().nth(1) {
        Some(path) => Target::resolve(Path::new(&path), Some(&mount))?,
        None => {
            let own = discover::cgroup_of(&Config::default(), std::process::id())?;
            Target::at(own, Some(&mount))?
        }
    };
    for target in [Target::system(Path::new("/proc")), cgroup] {
        let name = target.cgroup.as_deref().unwrap_or("the system");
        println!("{name} ({}, {})", target.kind, target.dir.display());
        for (resource, result) in target.pressure_set().read_all().results() {
            match result {
                Ok(pressure) => {
                    for line in Line::ALL {
                        if let Some(record) = pressure.get(line) {
                            println!("  {resource:<6} {line} {record}");
                        }
                    }
                }
                Err(e) => println!("  {resource:<6} not read ({}): {}", e.reason(), Chain(e)),
            }
        }
    }
    Ok(())
}
