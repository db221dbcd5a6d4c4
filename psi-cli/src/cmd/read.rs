//! `psi read`: one read of each target, as a table, JSON or Prometheus text.

use std::io::Write as _;

use psi_core::expose::{Encoder, Families, Labels, Snapshot, write_pressure};
use psi_core::read::{Reading, Reason};
use psi_core::report::Chain;
use psi_core::target::Target;

use crate::cli::{Format, ReadArgs};
use crate::exit::Exit;
use crate::target::{self, Env};
use crate::ui::clock::Utc;
use crate::view;

/// Runs `psi read`: prints all it could read, then names on stderr every
/// file that could not be read for a reason other than "the kernel does not
/// have it", and exits 2 if there was one.
pub fn run(args: &ReadArgs, env: &Env, color: bool) -> anyhow::Result<Exit> {
    let targets = target::resolve(&args.targets, env)?;
    let time = Utc::now();
    let readings: Vec<Reading> = targets
        .iter()
        .map(|t| t.pressure_set().read_all())
        .collect();
    let mut out = Vec::with_capacity(4096);
    match args.format {
        Format::Table => {
            for (i, (t, r)) in targets.iter().zip(&readings).enumerate() {
                if i > 0 {
                    out.push(b'\n');
                }
                for line in view::table(t, r, None) {
                    out.extend_from_slice(line.render(color, None).as_bytes());
                    out.push(b'\n');
                }
            }
        }
        Format::Json => {
            for (t, r) in targets.iter().zip(&readings) {
                view::json_object(&mut out, t, r, None, time);
            }
        }
        Format::Prometheus => prometheus(&mut out, &targets, &readings),
    }
    std::io::stdout().lock().write_all(&out)?;
    super::require_readable(&targets, &readings)?;
    let mut failed = false;
    for (resource, e) in readings.iter().flat_map(Reading::errors) {
        if e.reason() != Reason::Unsupported {
            crate::ui::say!("psi: cannot read {resource} ({}): {}", e.reason(), Chain(e));
            failed = true;
        }
    }
    Ok(if failed { Exit::Error } else { Exit::Success })
}

/// The exporter's families for each target: no labels for one target (the
/// very exposition `psi-exporter` serves); for several, a `cgroup` label
/// (the cgroup as `/proc/<pid>/cgroup` writes it, else the directory, such
/// as `/proc/pressure`) and the Kubernetes labels where the path carries
/// them.
fn prometheus(out: &mut Vec<u8>, targets: &[Target], readings: &[Reading]) {
    let labels: Vec<Vec<(&str, String)>> = targets
        .iter()
        .map(|t| {
            if targets.len() == 1 {
                return Vec::new();
            }
            let cgroup = t
                .cgroup
                .clone()
                .unwrap_or_else(|| t.dir.to_string_lossy().into_owned());
            let mut l = vec![("cgroup", cgroup)];
            if let Some(k) = &t.kube {
                if let Some(q) = k.qos {
                    l.push(("qos", q.name().to_owned()));
                }
                if let Some(uid) = &k.pod_uid {
                    l.push(("pod_uid", uid.clone()));
                }
                if let Some(c) = &k.container_id {
                    l.push(("container_id", c.clone()));
                }
            }
            l
        })
        .collect();
    let rendered: Vec<Labels> = labels
        .iter()
        .map(|l| {
            let pairs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Labels::new(&pairs)
        })
        .collect();
    let snapshots: Vec<Snapshot<'_>> = targets
        .iter()
        .zip(readings)
        .zip(&rendered)
        .map(|((t, r), labels)| Snapshot {
            labels,
            pressure: r.values(),
            cpu_stat: match t.kind {
                psi_core::cgroup::Kind::System => None,
                _ => psi_core::read::cpu_stat(&t.dir).ok(),
            },
        })
        .collect();
    write_pressure(&mut Encoder::new(out), &Families::default(), &snapshots);
}
