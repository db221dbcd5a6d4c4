//! Node mode: every selected cgroup of a node ([`psi_core::node`]), walked
//! again at scrape time at most once per rescan interval.

use std::path::Path;
use std::time::{Duration, Instant};

use psi_core::expose::{Encoder, Value};
use psi_core::json::Object;
use psi_core::node::{Node, Rescan};

/// The node and when it was last walked.
#[derive(Debug)]
pub struct NodeSource {
    node: Node,
    rescan_interval: Duration,
    last_rescan: Option<Instant>,
    last: Rescan,
    rescans: u64,
}

impl NodeSource {
    /// Node mode over `node`, walked at most once per `rescan_interval`.
    pub fn new(node: Node, rescan_interval: Duration) -> Self {
        NodeSource {
            node,
            rescan_interval,
            last_rescan: None,
            last: Rescan::default(),
            rescans: 0,
        }
    }

    /// The node, walked again if the interval has passed.
    pub fn node(&mut self) -> &mut Node {
        let due = self
            .last_rescan
            .is_none_or(|t| t.elapsed() >= self.rescan_interval);
        if due {
            let rescan = self.node.rescan();
            // Said once, when it starts: names missing for want of access.
            if rescan.unreadable_logs != self.last.unreadable_logs {
                for dir in &rescan.unreadable_logs {
                    tracing::warn!(dir = %dir.display(), "cannot list the kubelet's log directory: pods and containers are exported without their names (give the exporter read access to it)");
                }
            }
            self.last = rescan;
            self.last_rescan = Some(Instant::now());
            self.rescans += 1;
            if self.last.added > 0 || self.last.removed > 0 {
                tracing::info!(
                    cgroups = self.last.cgroups,
                    added = self.last.added,
                    removed = self.last.removed,
                    sandboxes = self.last.sandboxes,
                    open_files = self.node.open_files(),
                    "walked the cgroup tree"
                );
            }
        }
        &mut self.node
    }

    /// The mount walked.
    pub fn mount(&self) -> &Path {
        &self.node.config().mount
    }

    /// This mode's own families: cgroups, open files, walks, sandboxes.
    pub fn write_own(&self, enc: &mut Encoder<'_>) {
        let families: [(&str, &'static str, u64); 5] = [
            (
                "psi_node_cgroups",
                psi_core::header!(
                    "psi_node_cgroups",
                    gauge,
                    "Cgroups exported at this scrape (the selected levels, less those gone)"
                ),
                self.node.len() as u64,
            ),
            (
                "psi_node_open_files",
                psi_core::header!(
                    "psi_node_open_files",
                    gauge,
                    "Pressure files kept open between scrapes (the rest are opened, read and closed)"
                ),
                self.node.open_files() as u64,
            ),
            (
                "psi_node_rescans_total",
                psi_core::header!(
                    "psi_node_rescans_total",
                    counter,
                    "Walks of the cgroup tree, which find new cgroups and names"
                ),
                self.rescans,
            ),
            (
                "psi_node_sandboxes",
                psi_core::header!(
                    "psi_node_sandboxes",
                    gauge,
                    "Pod sandbox (pause) cgroups left out at the last walk"
                ),
                self.last.sandboxes as u64,
            ),
            (
                "psi_node_unlabelled_cgroups",
                psi_core::header!(
                    "psi_node_unlabelled_cgroups",
                    gauge,
                    "Cgroups left out at the last walk, with what is below them, because their path is not UTF-8 (a label must be)"
                ),
                self.last.unlabelled as u64,
            ),
        ];
        for (name, header, value) in families {
            enc.header(header);
            enc.sample(name, &[], &[], Value::Int(value));
        }
    }

    /// The `/psi` members of this mode: the mount and the cgroups exported.
    pub fn json(&self, obj: &mut Object<'_>) {
        obj.string("mount", Some(&self.mount().to_string_lossy()));
        let out = obj.key("cgroups");
        out.push(b'[');
        for (i, name) in self.node.cgroups().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            psi_core::json::string(out, name);
        }
        out.push(b']');
    }

    /// The `/health` line.
    pub fn health(&self) -> String {
        format!(
            "ok: exporting {} cgroups under {} (node)\n",
            self.node.len(),
            self.mount().display()
        )
    }
}
