//! Kubernetes identity from a cgroup path: QoS class, pod UID and container
//! ID, for the systemd and cgroupfs cgroup drivers of the kubelet.
//!
//! ```text
//! systemd:  kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid, _ for ->.slice/cri-containerd-<id>.scope
//!           (also crio-<id>.scope, docker-<id>.scope; guaranteed pods sit right under kubepods.slice)
//! cgroupfs: kubepods/burstable/pod<uid>/<id>   (guaranteed: kubepods/pod<uid>/<id>)
//! ```

use std::fmt;
use std::path::Path;

/// The QoS class of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// What a cgroup path says about Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// The QoS class, from the `kubepods` level below the root.
    pub qos: Option<Qos>,
    /// The pod UID, with dashes (`5f3c…-…`), as `kube_pod_info{uid}` has it.
    pub pod_uid: Option<String>,
    /// The full container ID (64 hex digits for containerd, CRI-O, docker).
    pub container_id: Option<String>,
}

impl Identity {
    /// Reads a cgroup path; `None` when it has no `kubepods` component.
    pub fn from_path(path: &Path) -> Option<Identity> {
        // A name that is not UTF-8 keeps its level, as "", which no rule
        // matches: dropping it would read the levels below it one too high.
        let parts: Vec<&str> = path
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_str().unwrap_or("")),
                _ => None,
            })
            .collect();
        let start = parts
            .iter()
            .position(|p| *p == "kubepods.slice" || *p == "kubepods")?;
        let systemd = parts.get(start).is_some_and(|p| p.ends_with(".slice"));
        let mut id = Identity::default();
        let mut rest = parts.get(start + 1..).unwrap_or_default().iter();
        let mut next = rest.next();
        if systemd {
            // kubepods-burstable.slice / kubepods-besteffort.slice
            if let Some(qos) = next.and_then(|p| systemd_qos(p)) {
                id.qos = Some(qos);
                next = rest.next();
            }
            if let Some(uid) = next.and_then(|p| systemd_pod(p)) {
                id.pod_uid = Some(uid);
                id.qos.get_or_insert(Qos::Guaranteed);
                id.container_id = rest.next().and_then(|p| systemd_container(p));
            }
        } else {
            if let Some(qos) = next.and_then(|p| cgroupfs_qos(p)) {
                id.qos = Some(qos);
                next = rest.next();
            }
            if let Some(uid) = next
                .and_then(|p| p.strip_prefix("pod"))
                .filter(|u| !u.is_empty())
            {
                id.pod_uid = Some(uid.to_owned());
                id.qos.get_or_insert(Qos::Guaranteed);
                id.container_id = rest
                    .next()
                    .map(|p| strip_runtime(p).to_owned())
                    .filter(|c| !c.is_empty());
            }
        }
        Some(id)
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

/// `kubepods-burstable-pod<uid>.slice`, `kubepods-pod<uid>.slice`: the UID
/// with systemd's `_` turned back into `-`.
fn systemd_pod(part: &str) -> Option<String> {
    let name = part.strip_suffix(".slice")?;
    let uid = name.rsplit_once("-pod")?.1;
    (!uid.is_empty()).then(|| uid.replace('_', "-"))
}

/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope`.
fn systemd_container(part: &str) -> Option<String> {
    let name = part.strip_suffix(".scope")?;
    // conmon, CRI-O's monitor process, is not the container.
    if name.starts_with("crio-conmon-") {
        return None;
    }
    let id = strip_runtime(name);
    (id != name && !id.is_empty()).then(|| id.to_owned())
}

fn strip_runtime(name: &str) -> &str {
    ["cri-containerd-", "crio-", "docker-", "containerd-"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f";
    const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn id(path: impl AsRef<str>) -> Option<Identity> {
        Identity::from_path(Path::new(path.as_ref()))
    }

    macro_rules! cases {
        ($($name:ident: $path:expr => $qos:expr, $uid:expr, $cid:expr;)*) => {$(
            #[test]
            fn $name() {
                let got = id($path).expect("a kubepods path");
                assert_eq!(got.qos, $qos, "qos");
                assert_eq!(got.pod_uid.as_deref(), $uid, "pod uid");
                assert_eq!(got.container_id.as_deref(), $cid, "container id");
            }
        )*};
    }

    cases! {
        systemd_burstable_containerd:
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CID}.scope", UID.replace('-', "_"))
            => Some(Qos::Burstable), Some(UID), Some(CID);
        systemd_besteffort_crio:
            format!("/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/crio-{CID}.scope", UID.replace('-', "_"))
            => Some(Qos::BestEffort), Some(UID), Some(CID);
        systemd_guaranteed_docker:
            format!("kubepods.slice/kubepods-pod{}.slice/docker-{CID}.scope", UID.replace('-', "_"))
            => Some(Qos::Guaranteed), Some(UID), Some(CID);
        systemd_pod_level:
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice", UID.replace('-', "_"))
            => Some(Qos::Burstable), Some(UID), None;
        systemd_conmon_is_no_container:
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/crio-conmon-{CID}.scope", UID.replace('-', "_"))
            => Some(Qos::Burstable), Some(UID), None;
        systemd_qos_level:
            "/kubepods.slice/kubepods-besteffort.slice"
            => Some(Qos::BestEffort), None, None;
        systemd_root: "/kubepods.slice" => None, None, None;
        cgroupfs_burstable:
            format!("/kubepods/burstable/pod{UID}/{CID}")
            => Some(Qos::Burstable), Some(UID), Some(CID);
        cgroupfs_guaranteed:
            format!("/sys/fs/cgroup/unified/kubepods/pod{UID}/{CID}")
            => Some(Qos::Guaranteed), Some(UID), Some(CID);
        cgroupfs_besteffort_pod:
            format!("/kubepods/besteffort/pod{UID}")
            => Some(Qos::BestEffort), Some(UID), None;
    }

    #[test]
    fn other_paths_have_no_identity() {
        assert_eq!(id("/system.slice/containerd.service"), None);
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
        assert_eq!(
            with_bad_level("/kubepods/", format!("/pod{UID}/{CID}")),
            Some(Identity::default())
        );
        let systemd_pod = format!("/kubepods-pod{}.slice", UID.replace('-', "_"));
        assert_eq!(
            with_bad_level("/kubepods.slice/", systemd_pod),
            Some(Identity::default())
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
