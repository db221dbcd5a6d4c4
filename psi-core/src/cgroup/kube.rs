//! Pod and container identity from a cgroup path: where in the kubelet's
//! tree a cgroup is, its QoS class, pod UID and container ID, for both
//! cgroup drivers of the kubelet, and the container ID of docker and podman
//! containers outside Kubernetes.
//!
//! ```text
//! systemd:  kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid, _ for ->.slice/cri-containerd-<id>.scope
//!           (also crio-<id>.scope, docker-<id>.scope; guaranteed pods sit right under kubepods.slice)
//! cgroupfs: kubepods/burstable/pod<uid>/<id>   (also crio-<id>; guaranteed: kubepods/pod<uid>/<id>)
//! docker:   system.slice/docker-<id>.scope, docker/<id>
//! podman:   machine.slice/libpod-<id>.scope, libpod_parent/libpod-<id>
//! ```
//!
//! Names are matched exactly: a component that does not have the shape the
//! kubelet or the runtime gives it makes the cgroup [`Level::Other`], never
//! a wrong pod or container.
//!
//! ```
//! use psi_core::cgroup::kube::{Identity, Level, Qos};
//!
//! let id = Identity::from_path("/kubepods/besteffort/pod5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f".as_ref())
//!     .expect("a kubepods path");
//! assert_eq!(id.level, Level::Pod);
//! assert_eq!(id.qos, Some(Qos::BestEffort));
//! assert_eq!(id.pod_uid.as_deref(), Some("5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f"));
//! ```

use std::fmt;
use std::path::{Component, Path};

/// The QoS class of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qos {
    /// Requests equal limits for every container.
    Guaranteed,
    /// Some requests or limits.
    Burstable,
    /// None.
    BestEffort,
}

impl Qos {
    /// Kubernetes' lowercase word, as in `kube_pod_status_qos_class`.
    pub fn name(self) -> &'static str {
        match self {
            Qos::Guaranteed => "guaranteed",
            Qos::Burstable => "burstable",
            Qos::BestEffort => "besteffort",
        }
    }
}

impl fmt::Display for Qos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Where a cgroup sits among the kubelet's and the runtimes' cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Level {
    /// `kubepods.slice` or `kubepods`, the parent of every pod.
    Kubepods,
    /// A QoS class's cgroup: `kubepods-burstable.slice`, `kubepods/besteffort`.
    Qos,
    /// A pod's cgroup.
    Pod,
    /// A container's cgroup (a pod's sandbox included), or a docker or
    /// podman container's.
    Container,
    /// Below `kubepods`, but none of the above (CRI-O's conmon, a cgroup a
    /// container made inside its own).
    Other,
}

/// What a cgroup path says about pods and containers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// Where the cgroup sits.
    pub level: Level,
    /// The QoS class (pods and what is below them, and the QoS cgroups).
    pub qos: Option<Qos>,
    /// The pod UID, with dashes (`5f3c…-…`), as `kube_pod_info{uid}` has it.
    pub pod_uid: Option<String>,
    /// The container ID, bare hex without the runtime's prefix (64 digits
    /// for containerd, CRI-O, docker and podman).
    pub container_id: Option<String>,
}

impl Identity {
    /// Reads a cgroup path (relative to the cgroup mount, or any path that
    /// holds such a one); `None` when it is neither under `kubepods` nor a
    /// docker or podman container.
    pub fn from_path(path: &Path) -> Option<Identity> {
        let parts = parts(path);
        match parts
            .iter()
            .position(|p| *p == "kubepods.slice" || *p == "kubepods")
        {
            Some(start) => Some(kubepods(parts.get(start..).unwrap_or_default())),
            None => runtime_container(&parts),
        }
    }

    /// Reads a cgroup as `/proc/<pid>/cgroup` names it, relative to the
    /// root of the hierarchy (`/kubepods.slice/...`): a Kubernetes identity
    /// only when `kubepods.slice` or `kubepods` is its first component. A
    /// `kubepods` further down is one that someone made inside a cgroup of
    /// their own (a user's delegated systemd slice, a container allowed to
    /// make cgroups), named as the kubelet names another pod: read with
    /// [`from_path`](Self::from_path), it would carry that pod's UID and,
    /// in node mode, its names. Such a path is only ever a docker or podman
    /// container's, as [`from_path`](Self::from_path) reads those.
    ///
    /// ```
    /// use psi_core::cgroup::kube::Identity;
    ///
    /// let uid = "5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f";
    /// let real = format!("/kubepods/besteffort/pod{uid}");
    /// assert!(Identity::from_cgroup(real.as_ref()).is_some());
    /// let fake = format!("/user.slice/kubepods/besteffort/pod{uid}");
    /// assert_eq!(Identity::from_cgroup(fake.as_ref()), None);
    /// ```
    pub fn from_cgroup(path: &Path) -> Option<Identity> {
        let parts = parts(path);
        match parts.first() {
            Some(&("kubepods.slice" | "kubepods")) => Some(kubepods(&parts)),
            _ => runtime_container(&parts),
        }
    }

    fn at(level: Level) -> Identity {
        Identity {
            level,
            qos: None,
            pod_uid: None,
            container_id: None,
        }
    }

    /// The container ID cut to 12 characters, as `docker ps` and `crictl ps` show it.
    pub fn short_container(&self) -> Option<&str> {
        self.container_id
            .as_deref()
            .map(|c| c.get(..12).unwrap_or(c))
    }

    /// One line for people: `pod 5f3c… container 0123456789ab (burstable)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(uid) = &self.pod_uid {
            parts.push(format!("pod {uid}"));
        }
        if let Some(c) = self.short_container() {
            parts.push(format!("container {c}"));
        }
        match (self.qos, parts.is_empty()) {
            (Some(q), true) => format!("kubepods {q}"),
            (Some(q), false) => format!("{} ({q})", parts.join(" ")),
            (None, true) => "kubepods".to_owned(),
            (None, false) => parts.join(" "),
        }
    }
}

/// The names of a path's components. A name that is not UTF-8 keeps its
/// level, as "", which no rule matches: dropping it would read the levels
/// below it one too high.
fn parts(path: &Path) -> Vec<&str> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_str().unwrap_or("")),
            _ => None,
        })
        .collect()
}

/// `parts` starts at `kubepods.slice` or `kubepods`.
fn kubepods(parts: &[&str]) -> Identity {
    let systemd = parts.first().is_some_and(|p| p.ends_with(".slice"));
    let mut id = Identity::at(Level::Kubepods);
    let mut rest = parts.get(1..).unwrap_or_default();
    let Some((&first, tail)) = rest.split_first() else {
        return id;
    };
    // The QoS level, where there is one: guaranteed pods sit right below.
    let qos = if systemd {
        systemd_qos(first)
    } else {
        cgroupfs_qos(first)
    };
    let pod_prefix = match (systemd, qos) {
        (true, Some(q)) => format!("kubepods-{}-pod", q.name()),
        (true, None) => "kubepods-pod".to_owned(),
        (false, _) => "pod".to_owned(),
    };
    if let Some(q) = qos {
        id.level = Level::Qos;
        id.qos = Some(q);
        rest = tail;
    }
    let Some((&pod, below)) = rest.split_first() else {
        return id;
    };
    let uid = if systemd {
        // systemd writes the UID's dashes as `_`: a `-` there would be one
        // more level of slices, which the kubelet never makes.
        pod.strip_suffix(".slice")
            .and_then(|p| p.strip_prefix(&pod_prefix))
            .filter(|u| !u.contains('-'))
            .map(|u| u.replace('_', "-"))
    } else {
        pod.strip_prefix(&pod_prefix).map(str::to_owned)
    };
    let Some(uid) = uid.filter(|u| is_uid(u)) else {
        id.level = Level::Other;
        return id;
    };
    id.level = Level::Pod;
    id.qos.get_or_insert(Qos::Guaranteed);
    id.pod_uid = Some(uid);
    let Some((&container, deeper)) = below.split_first() else {
        return id;
    };
    let cid = if systemd {
        container
            .strip_suffix(".scope")
            .and_then(|c| strip_prefix_any(c, &["cri-containerd-", "crio-", "docker-"]))
    } else {
        Some(strip_prefix_any(container, &["crio-"]).unwrap_or(container))
    };
    match cid.filter(|c| is_hex_id(c)) {
        Some(c) if deeper.is_empty() => {
            id.level = Level::Container;
            id.container_id = Some(c.to_owned());
        }
        _ => id.level = Level::Other,
    }
    id
}

/// A docker or podman container outside Kubernetes: the last component.
fn runtime_container(parts: &[&str]) -> Option<Identity> {
    let (&last, before) = parts.split_last()?;
    let id = match last.strip_suffix(".scope") {
        Some(scope) => strip_prefix_any(scope, &["docker-", "libpod-"]),
        None if before.last() == Some(&"docker") => Some(last),
        None => last.strip_prefix("libpod-"),
    }?;
    is_hex_id(id).then(|| Identity {
        container_id: Some(id.to_owned()),
        ..Identity::at(Level::Container)
    })
}

fn strip_prefix_any<'a>(name: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    prefixes.iter().find_map(|p| name.strip_prefix(p))
}

fn systemd_qos(part: &str) -> Option<Qos> {
    match part {
        "kubepods-burstable.slice" => Some(Qos::Burstable),
        "kubepods-besteffort.slice" => Some(Qos::BestEffort),
        _ => None,
    }
}

fn cgroupfs_qos(part: &str) -> Option<Qos> {
    match part {
        "burstable" => Some(Qos::Burstable),
        "besteffort" => Some(Qos::BestEffort),
        _ => None,
    }
}

/// A pod UID as the API server writes it: hex digits and dashes, not empty
/// (kubelets also take static pods' UIDs, which are 32 hex digits).
fn is_uid(uid: &str) -> bool {
    !uid.is_empty() && uid.len() <= 64 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// A container ID: lowercase hex digits, at most 64 (conmon's
/// `crio-conmon-<id>` and `libpod-conmon-<id>` are not one).
fn is_hex_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f";
    const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn id(path: impl AsRef<str>) -> Option<Identity> {
        Identity::from_path(Path::new(path.as_ref()))
    }

    #[test]
    fn from_cgroup_takes_kubepods_only_at_the_top() {
        let pod = format!("/kubepods/besteffort/pod{UID}");
        let systemd = format!(
            "/kubepods.slice/kubepods-pod{}.slice",
            UID.replace('-', "_")
        );
        for real in [&pod, &systemd] {
            let got = Identity::from_cgroup(Path::new(real)).expect("a pod");
            assert_eq!(got.pod_uid.as_deref(), Some(UID), "{real}");
        }
        for fake in [
            format!("/user.slice/user-1000.slice{pod}"),
            format!("/system.slice/docker-{CID}.scope{systemd}"),
            format!("/x{pod}/{CID}"),
        ] {
            assert_eq!(Identity::from_cgroup(Path::new(&fake)), None, "{fake}");
            assert!(id(&fake).is_some(), "from_path reads it: {fake}");
        }
        // Docker and podman containers are wherever their runtime puts them.
        let docker = format!("/system.slice/docker-{CID}.scope");
        let got = Identity::from_cgroup(Path::new(&docker)).expect("a container");
        assert_eq!(got.container_id.as_deref(), Some(CID));
    }

    macro_rules! cases {
        ($($name:ident: $path:expr => $level:ident, $qos:expr, $uid:expr, $cid:expr;)*) => {$(
            #[test]
            fn $name() {
                let got = id($path).expect("an identity");
                assert_eq!(got.level, Level::$level, "level");
                assert_eq!(got.qos, $qos, "qos");
                assert_eq!(got.pod_uid.as_deref(), $uid, "pod uid");
                assert_eq!(got.container_id.as_deref(), $cid, "container id");
            }
        )*};
    }

    cases! {
        systemd_burstable_containerd:
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CID}.scope", UID.replace('-', "_"))
            => Container, Some(Qos::Burstable), Some(UID), Some(CID);
        systemd_besteffort_crio:
            format!("/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/crio-{CID}.scope", UID.replace('-', "_"))
            => Container, Some(Qos::BestEffort), Some(UID), Some(CID);
        systemd_guaranteed_docker:
            format!("kubepods.slice/kubepods-pod{}.slice/docker-{CID}.scope", UID.replace('-', "_"))
            => Container, Some(Qos::Guaranteed), Some(UID), Some(CID);
        systemd_pod_level:
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice", UID.replace('-', "_"))
            => Pod, Some(Qos::Burstable), Some(UID), None;
        systemd_conmon_is_no_container:
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/crio-conmon-{CID}.scope", UID.replace('-', "_"))
            => Other, Some(Qos::Burstable), Some(UID), None;
        systemd_uid_with_dashes_is_other:
            format!("/kubepods.slice/kubepods-pod{UID}.slice")
            => Other, None, None, None;
        systemd_pod_of_another_qos_is_other:
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod{}.slice", UID.replace('-', "_"))
            => Other, Some(Qos::Burstable), None, None;
        systemd_qos_level:
            "/kubepods.slice/kubepods-besteffort.slice"
            => Qos, Some(Qos::BestEffort), None, None;
        systemd_root: "/kubepods.slice" => Kubepods, None, None, None;
        cgroupfs_burstable:
            format!("/kubepods/burstable/pod{UID}/{CID}")
            => Container, Some(Qos::Burstable), Some(UID), Some(CID);
        cgroupfs_crio:
            format!("/kubepods/burstable/pod{UID}/crio-{CID}")
            => Container, Some(Qos::Burstable), Some(UID), Some(CID);
        cgroupfs_guaranteed:
            format!("/sys/fs/cgroup/unified/kubepods/pod{UID}/{CID}")
            => Container, Some(Qos::Guaranteed), Some(UID), Some(CID);
        cgroupfs_besteffort_pod:
            format!("/kubepods/besteffort/pod{UID}")
            => Pod, Some(Qos::BestEffort), Some(UID), None;
        cgroupfs_nested_below_a_container:
            format!("/kubepods/besteffort/pod{UID}/{CID}/inner")
            => Other, Some(Qos::BestEffort), Some(UID), None;
        cgroupfs_not_a_uid:
            "/kubepods/besteffort/podX_y"
            => Other, Some(Qos::BestEffort), None, None;
        docker_systemd: format!("/system.slice/docker-{CID}.scope") => Container, None, None, Some(CID);
        docker_cgroupfs: format!("/docker/{CID}") => Container, None, None, Some(CID);
        podman_systemd: format!("/machine.slice/libpod-{CID}.scope") => Container, None, None, Some(CID);
        podman_cgroupfs: format!("/libpod_parent/libpod-{CID}") => Container, None, None, Some(CID);
    }

    #[test]
    fn other_paths_have_no_identity() {
        assert_eq!(id("/system.slice/containerd.service"), None);
        assert_eq!(
            id(format!("/machine.slice/libpod-conmon-{CID}.scope")),
            None
        );
        assert_eq!(id("/system.slice/docker-notanid.scope"), None);
        assert_eq!(id("/user.slice/user-1000.slice"), None);
        assert_eq!(id("/"), None);
        assert_eq!(id("/mykubepods.slice"), None);
    }

    /// Found by the `kube` fuzz target: a component that is not UTF-8 was
    /// dropped, so the levels below it moved up one and a cgroup that is no
    /// pod (`kubepods/<not UTF-8>/pod<uid>/<id>`) read as a guaranteed pod.
    #[test]
    fn a_level_that_is_not_utf8_is_not_skipped() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt as _;
        let with_bad_level = |before: &str, after: String| {
            let mut bytes = before.as_bytes().to_vec();
            bytes.push(0xff);
            bytes.extend(after.bytes());
            Identity::from_path(Path::new(OsStr::from_bytes(&bytes)))
        };
        let level_and_pod = |id: Option<Identity>| id.map(|id| (id.level, id.pod_uid));
        assert_eq!(
            level_and_pod(with_bad_level("/kubepods/", format!("/pod{UID}/{CID}"))),
            Some((Level::Other, None))
        );
        let systemd_pod = format!("/kubepods-pod{}.slice", UID.replace('-', "_"));
        assert_eq!(
            level_and_pod(with_bad_level("/kubepods.slice/", systemd_pod)),
            Some((Level::Other, None))
        );
    }

    #[test]
    fn short_ids_and_descriptions() {
        let path = format!("/kubepods/burstable/pod{UID}/{CID}");
        let got = id(&path).expect("kubepods");
        assert_eq!(got.short_container(), Some("0123456789ab"));
        assert_eq!(
            got.describe(),
            format!("pod {UID} container 0123456789ab (burstable)")
        );
        assert_eq!(
            id("/kubepods.slice").expect("kubepods").describe(),
            "kubepods"
        );
    }
}
