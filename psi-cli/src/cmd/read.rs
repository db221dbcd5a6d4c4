//! `psi read`: one read of each target, as a table, JSON or Prometheus text.

use std::io::Write as _;

use psi_core::expose::{Encoder, Families, Snapshot, write_pressure};

use crate::cli::{Format, ReadArgs};
use crate::clock::Utc;
use crate::exit::Exit;
use crate::sample::Reading;
use crate::target::{self, Env, Kind, Target};
use crate::view;

/// Runs `psi read`.
pub fn run(args: &ReadArgs, env: &Env, color: bool) -> anyhow::Result<Exit> {
    let targets = target::resolve(&args.targets, env)?;
    let time = Utc::now();
    let readings: Vec<Reading> = targets.iter().map(|t| t.files().read()).collect();
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
    Ok(Exit::Success)
}

/// The exporter's families for each target: no labels for one target (the
/// very exposition `psi-exporter` serves), a `path` label (and the
/// Kubernetes labels where the path carries them) for several.
fn prometheus(out: &mut Vec<u8>, targets: &[Target], readings: &[Reading]) {
    let labels: Vec<Vec<(&str, String)>> = targets
        .iter()
        .map(|t| {
            if targets.len() == 1 {
                return Vec::new();
            }
            let mut l = vec![("path", t.path.to_string_lossy().into_owned())];
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
    let borrowed: Vec<Vec<(&str, &str)>> = labels
        .iter()
        .map(|l| l.iter().map(|(k, v)| (*k, v.as_str())).collect())
        .collect();
    let snapshots: Vec<Snapshot<'_>> = targets
        .iter()
        .zip(readings)
        .zip(&borrowed)
        .map(|((t, r), labels)| Snapshot {
            labels,
            pressure: r.values(),
            cpu_stat: match t.kind {
                Kind::Cgroup => psi_core::read::cpu_stat(&t.path).ok(),
                Kind::System => None,
            },
            system: t.whole_system,
        })
        .collect();
    write_pressure(&mut Encoder::new(out), &Families::default(), &snapshots);
}
