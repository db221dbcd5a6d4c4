//! Node mode (feature `std`): every selected cgroup of a node, kept open,
//! read and labelled, as one exporter of a DaemonSet serves them.
//!
//! A [`Node`] walks the cgroup tree at [`rescan`](Node::rescan), keeps what
//! the [`Levels`] select (and a caller's filter lets through), names each
//! cgroup with its labels once, and keeps its pressure files open, up to a
//! budget of descriptors; the rest are opened, read and closed at each
//! read. [`read`](Node::read) reads them all and drops a cgroup found gone;
//! [`write`](Node::write) writes the standard families with the labels.
//!
//! Labels, on every sample of a cgroup:
//! - `cgroup`: its path below the mount, as the kernel writes it in
//!   `/proc/<pid>/cgroup` (`/` for the root);
//! - where the path carries them ([`kube`](crate::cgroup::kube)): `qos`,
//!   `pod_uid` (with dashes) and `container_id` (bare hex);
//! - where the kubelet's log directories name them
//!   ([`logs`](crate::cgroup::logs)): `namespace` and `pod` on pod and
//!   container cgroups, `container` on container cgroups.
//!
//! Cgroup PSI is hierarchical (a pod's `some` already counts any of its
//! tasks stalling), so a level is a choice of cgroups, never a sum.
//!
//! ```no_run
//! use psi_core::expose::{Encoder, Families};
//! use psi_core::node::{Config, Levels, Node};
//!
//! let mount = psi_core::cgroup::find_mount("/proc".as_ref())?.point;
//! let mut node = Node::new(Config::new(mount, Levels::POD | Levels::CONTAINER));
//! node.rescan();
//! node.read(|_resource, _error| {});
//! let mut out = Vec::new();
//! node.write(&mut Encoder::new(&mut out), &Families { legacy: false, ..Families::default() });
//! # Ok::<(), psi_core::cgroup::MountError>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::cgroup::kube::{Identity, Level};
use crate::cgroup::logs::Names;
use crate::cgroup::{self, Kind};
use crate::expose::{Encoder, Families, Labels, Snapshot, write_pressure};
use crate::read::{self, ErrorCounts, PressureSet, ReadError};
use crate::{PerResource, Pressure, Resource};

/// Which cgroups node mode exports: a set of levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Levels(u8);

impl Levels {
    /// The root cgroup: the node.
    pub const NODE: Levels = Levels(1);
    /// `kubepods` and the QoS cgroups.
    pub const QOS: Levels = Levels(2);
    /// Pod cgroups.
    pub const POD: Levels = Levels(4);
    /// Container cgroups (Kubernetes' and docker's or podman's).
    pub const CONTAINER: Levels = Levels(8);
    /// Every cgroup, to the walk's depth.
    pub const ALL: Levels = Levels(16);

    /// True when every level of `other` is in this set.
    pub const fn contains(self, other: Levels) -> bool {
        self.0 & other.0 == other.0
    }

    /// Parses one level's name: `node`, `qos`, `pod`, `container` or `all`.
    pub fn from_name(name: &str) -> Option<Levels> {
        match name {
            "node" => Some(Levels::NODE),
            "qos" => Some(Levels::QOS),
            "pod" => Some(Levels::POD),
            "container" => Some(Levels::CONTAINER),
            "all" => Some(Levels::ALL),
            _ => None,
        }
    }
}

impl std::ops::BitOr for Levels {
    type Output = Levels;

    fn bitor(self, other: Levels) -> Levels {
        Levels(self.0 | other.0)
    }
}

/// How a [`Node`] finds and reads its cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The cgroup v2 mount whose tree is walked (the host's, in a DaemonSet).
    pub mount: PathBuf,
    /// The levels exported.
    pub levels: Levels,
    /// How deep the walk goes below the mount.
    pub max_depth: usize,
    /// The kubelet's `/var/log/pods`, for namespace and pod names.
    pub pod_logs: Option<PathBuf>,
    /// The kubelet's `/var/log/containers`, for container names.
    pub container_logs: Option<PathBuf>,
    /// Keep a pod's sandbox (pause) container at the container level.
    pub keep_sandbox: bool,
    /// How many pressure files may stay open between reads; the cgroups
    /// past it are opened, read and closed at each read.
    pub open_budget: usize,
}

impl Config {
    /// `levels` of the tree at `mount`, 8 levels deep, without names, with
    /// a budget of 4,096 open files.
    pub fn new(mount: PathBuf, levels: Levels) -> Config {
        Config {
            mount,
            levels,
            max_depth: 8,
            pod_logs: None,
            container_logs: None,
            keep_sandbox: false,
            open_budget: 4096,
        }
    }
}

/// One exported cgroup.
#[derive(Debug)]
struct Cgroup {
    /// As the kernel writes it: the `cgroup` label and the order.
    name: String,
    /// Device and inode: a cgroup made again under the same name is a new
    /// cgroup, with new files.
    id: (u64, u64),
    labels: Labels,
    files: PressureSet,
    /// What the last read gave.
    values: PerResource<Option<Pressure>>,
}

/// What one rescan found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rescan {
    /// Cgroups exported.
    pub cgroups: usize,
    /// Of those, new since the last rescan.
    pub added: usize,
    /// Cgroups no longer there or no longer selected.
    pub removed: usize,
    /// Sandbox containers left out.
    pub sandboxes: usize,
    /// Cgroups left out, with what is below them, because their path below
    /// the mount is not UTF-8: a label must be, and a lossy one could be
    /// another cgroup's name (`x\xff` and `x\xfe` would both be `x\u{fffd}`).
    pub unlabelled: usize,
    /// Log directories that are there but could not be listed: their names
    /// are missing.
    pub unreadable_logs: Vec<PathBuf>,
}

/// Every selected cgroup of a node. See the [module docs](self).
pub struct Node {
    config: Config,
    filter: Box<dyn Fn(&str) -> bool + Send>,
    cgroups: Vec<Cgroup>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("config", &self.config)
            .field("cgroups", &self.cgroups.len())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node with no cgroups until the first [`rescan`](Self::rescan).
    pub fn new(config: Config) -> Node {
        Node {
            config,
            filter: Box::new(|_| true),
            cgroups: Vec::new(),
        }
    }

    /// Keeps only the cgroups whose `cgroup` label `keep` accepts (the
    /// exporter's `--include` and `--exclude`), from the next rescan on.
    pub fn with_filter(mut self, keep: impl Fn(&str) -> bool + Send + 'static) -> Node {
        self.filter = Box::new(keep);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many cgroups are exported.
    pub fn len(&self) -> usize {
        self.cgroups.len()
    }

    /// True when no cgroup is exported.
    pub fn is_empty(&self) -> bool {
        self.cgroups.is_empty()
    }

    /// How many pressure files are open now.
    pub fn open_files(&self) -> usize {
        self.cgroups.iter().map(|c| c.files.open_files()).sum()
    }

    /// The `cgroup` label of each exported cgroup, in order.
    pub fn cgroups(&self) -> impl Iterator<Item = &str> {
        self.cgroups.iter().map(|c| c.name.as_str())
    }

    /// Walks the tree again: new cgroups are added (their files opened at
    /// the next read), those gone or no longer selected are dropped (their
    /// files closed), the others keep their open files. Names are read
    /// again from the log directories.
    pub fn rescan(&mut self) -> Rescan {
        let names = match (&self.config.pod_logs, &self.config.container_logs) {
            (None, None) => Names::default(),
            (pods, containers) => Names::read(
                pods.as_deref().unwrap_or(Path::new("")),
                containers.as_deref().unwrap_or(Path::new("")),
            ),
        };
        let found = self.select(&names);
        let unreadable_logs = names.unreadable().to_vec();
        let mut old: HashMap<String, Cgroup> = self
            .cgroups
            .drain(..)
            .map(|c| (c.name.clone(), c))
            .collect();
        let mut stats = Rescan::default();
        let mut budget = self.config.open_budget;
        for f in found.selected {
            let mut cgroup = match old.remove(&f.name) {
                Some(mut c) if c.id == f.id => {
                    c.labels = f.labels;
                    c
                }
                _ => {
                    stats.added += 1;
                    Cgroup {
                        files: PressureSet::new(&f.dir, f.kind),
                        name: f.name,
                        id: f.id,
                        labels: f.labels,
                        values: PerResource::default(),
                    }
                }
            };
            // Each cgroup keeps at most its four files open.
            let keep = budget >= Resource::ALL.len();
            if keep {
                budget -= Resource::ALL.len();
            }
            cgroup.files.set_keep_open(keep);
            self.cgroups.push(cgroup);
        }
        stats.removed = old.len();
        stats.cgroups = self.cgroups.len();
        stats.sandboxes = found.sandboxes;
        stats.unlabelled = found.unlabelled;
        stats.unreadable_logs = unreadable_logs;
        stats
    }

    /// The cgroups of the tree that are selected, in path order.
    fn select(&self, names: &Names) -> Found {
        let config = &self.config;
        let mut candidates = Vec::new();
        // Every directory below the mount is a cgroup of the mount's own
        // kind: looked at once, not once a cgroup.
        let mount_kind = Kind::of(&config.mount).ok();
        let below = if crate::fs::fs_type(&config.mount) == Some(crate::fs::CGROUP2_SUPER_MAGIC) {
            Kind::Cgroup
        } else {
            Kind::Copy
        };
        // Below a container is what it makes inside its own cgroup: walked
        // only for `all`.
        let all = config.levels.contains(Levels::ALL);
        let utf8 = |dir: &Path| {
            dir.strip_prefix(&config.mount)
                .is_ok_and(|rel| rel.to_str().is_some())
        };
        let descend = |dir: &Path| {
            utf8(dir)
                && (all
                    || cgroup::relative(&config.mount, dir)
                        .and_then(|name| Identity::from_cgroup(Path::new(&name)))
                        .is_none_or(|id| id.level != Level::Container))
        };
        let mut unlabelled = 0;
        for entry in cgroup::walk_where(&config.mount, config.max_depth, descend) {
            if !utf8(&entry.path) {
                unlabelled += 1;
                continue;
            }
            let Some(name) = cgroup::relative(&config.mount, &entry.path) else {
                continue;
            };
            let identity = Identity::from_cgroup(Path::new(&name));
            let level = match (&identity, entry.depth) {
                (_, 0) => Levels::NODE,
                (Some(id), _) => match id.level {
                    Level::Kubepods | Level::Qos => Levels::QOS,
                    Level::Pod => Levels::POD,
                    Level::Container => Levels::CONTAINER,
                    _ => Levels::ALL,
                },
                (None, _) => Levels::ALL,
            };
            if !(all || config.levels.contains(level)) {
                continue;
            }
            if !(self.filter)(&name) {
                continue;
            }
            let kind = match (entry.depth, mount_kind) {
                (0, Some(kind)) => kind,
                // A mount point with no pressure files of its own (a tree
                // of saved copies): only what is below it.
                (0, None) => continue,
                _ => below,
            };
            candidates.push(Candidate {
                dir: entry.path,
                name,
                id: entry.id,
                kind,
                identity,
            });
        }
        // A pod's container cgroup with no log entry while another of the
        // pod's containers has one is its sandbox (pause).
        let named_pods: std::collections::HashSet<String> = candidates
            .iter()
            .filter_map(|c| {
                let id = c.identity.as_ref()?;
                let cid = id.container_id.as_deref()?;
                names.container(cid)?;
                id.pod_uid.clone()
            })
            .collect();
        let mut found = Found {
            unlabelled,
            ..Found::default()
        };
        for c in candidates {
            let sandbox = c.identity.as_ref().is_some_and(|id| {
                id.level == Level::Container
                    && id
                        .container_id
                        .as_deref()
                        .is_some_and(|cid| names.container(cid).is_none())
                    && id
                        .pod_uid
                        .as_deref()
                        .is_some_and(|uid| named_pods.contains(uid))
            });
            if sandbox && !config.keep_sandbox && !all {
                found.sandboxes += 1;
                continue;
            }
            found.selected.push(Selected {
                labels: labels(&c, names),
                dir: c.dir,
                name: c.name,
                id: c.id,
                kind: c.kind,
            });
        }
        found
    }

    /// Reads every cgroup. A read that fails is told to `on_error`, except
    /// for a cgroup found gone ([`read::is_gone`]), which is dropped
    /// without a word: cgroups come and go.
    pub fn read(&mut self, mut on_error: impl FnMut(Resource, &ReadError)) {
        self.cgroups.retain_mut(|c| {
            let reading = c.files.read_all();
            if read::is_gone(c.files.dir(), &reading) {
                return false;
            }
            for (resource, e) in reading.errors() {
                on_error(resource, e);
            }
            c.values = reading.values();
            true
        });
    }

    /// Writes the families of every cgroup, as [`read`](Self::read) last
    /// read them: the counters, and the averages if `families` has them.
    /// The Go sidecar's gauges are for one target, throttling is not read,
    /// and availability is told by absence (see [`Families::availability`]).
    pub fn write(&self, enc: &mut Encoder<'_>, families: &Families) {
        let families = Families {
            legacy: false,
            throttling: false,
            availability: false,
            ..*families
        };
        let snapshots: Vec<Snapshot<'_>> = self
            .cgroups
            .iter()
            .map(|c| Snapshot {
                labels: &c.labels,
                pressure: c.values,
                cpu_stat: None,
            })
            .collect();
        write_pressure(enc, &families, &snapshots);
    }

    /// Counts of failed reads by reason, for a caller that keeps them: a
    /// convenience over [`read`](Self::read).
    pub fn read_counting(&mut self, counts: &mut ErrorCounts) {
        self.read(|resource, e| counts.count(resource, e));
    }
}

/// A cgroup of the walk at a selected level.
struct Candidate {
    dir: PathBuf,
    name: String,
    id: (u64, u64),
    kind: Kind,
    identity: Option<Identity>,
}

/// A cgroup to export.
struct Selected {
    dir: PathBuf,
    name: String,
    id: (u64, u64),
    kind: Kind,
    labels: Labels,
}

#[derive(Default)]
struct Found {
    selected: Vec<Selected>,
    sandboxes: usize,
    unlabelled: usize,
}

/// The labels of a cgroup: `cgroup`, then the names, then the identity.
fn labels(c: &Candidate, names: &Names) -> Labels {
    let mut pairs: Vec<(&str, &str)> = vec![("cgroup", &c.name)];
    if let Some(id) = &c.identity {
        let container = id
            .container_id
            .as_deref()
            .and_then(|cid| names.container(cid));
        let pod = id.pod_uid.as_deref().and_then(|uid| names.pod(uid));
        match (container, pod) {
            (Some(c), _) => {
                pairs.push(("namespace", &c.namespace));
                pairs.push(("pod", &c.pod));
                pairs.push(("container", &c.container));
            }
            (None, Some(p)) => {
                pairs.push(("namespace", &p.namespace));
                pairs.push(("pod", &p.pod));
            }
            (None, None) => {}
        }
        if let Some(q) = id.qos {
            pairs.push(("qos", q.name()));
        }
        if let Some(uid) = &id.pod_uid {
            pairs.push(("pod_uid", uid));
        }
        if let Some(cid) = &id.container_id {
            pairs.push(("container_id", cid));
        }
    }
    Labels::new(&pairs)
}
