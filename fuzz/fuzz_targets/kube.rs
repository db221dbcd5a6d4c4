//! `psi_core::cgroup::kube::Identity::from_path` on any bytes as a path.
//!
//! - It never panics, and agrees with a slow reference of the rules in the
//!   module docs, read level by level from the first `kubepods` or
//!   `kubepods.slice` component (a component that is not UTF-8 is a level
//!   that matches nothing: it is neither skipped nor read).
//! - What it promises: `None` exactly when no component is `kubepods` or
//!   `kubepods.slice`; a pod UID is non-empty, one path component, and comes
//!   with a QoS class; a systemd-driver UID has its `_` turned back into `-`;
//!   a container ID is non-empty, one component, and comes with a pod UID;
//!   a prefix without `kubepods` (a mount point) changes nothing, and
//!   neither do components below the container.
//! - A Kubernetes-shaped path made from the input, for either cgroup
//!   driver, reads back the QoS class, pod UID and container ID it was made
//!   from.
#![no_main]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Component, Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use psi_core::cgroup::kube::{Identity, Qos};

const RUNTIMES: [&str; 4] = ["cri-containerd-", "crio-", "docker-", "containerd-"];

fn strip_runtime(name: &str) -> &str {
    RUNTIMES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name)
}

/// The reference. Levels are the path's named components (`.` and `..`
/// are not levels); `None` stands for one that is not UTF-8.
fn reference(path: &Path) -> Option<Identity> {
    let levels: Vec<Option<&str>> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_str()),
            _ => None,
        })
        .collect();
    let start = levels
        .iter()
        .position(|l| matches!(l, Some("kubepods" | "kubepods.slice")))?;
    let systemd = levels[start] == Some("kubepods.slice");
    let level = |i: usize| levels.get(start + 1 + i).copied().flatten();
    let mut id = Identity::default();
    let qos = if systemd {
        match level(0) {
            Some("kubepods-burstable.slice") => Some(Qos::Burstable),
            Some("kubepods-besteffort.slice") => Some(Qos::BestEffort),
            _ => None,
        }
    } else {
        match level(0) {
            Some("burstable") => Some(Qos::Burstable),
            Some("besteffort") => Some(Qos::BestEffort),
            _ => None,
        }
    };
    id.qos = qos;
    let pod = usize::from(qos.is_some());
    let uid = if systemd {
        // `<anything>-pod<uid, - written _>.slice`: the UID follows the last `-pod`.
        level(pod)
            .and_then(|l| l.strip_suffix(".slice"))
            .and_then(|l| Some(&l[l.rfind("-pod")? + 4..]))
            .map(|u| u.replace('_', "-"))
    } else {
        level(pod)
            .and_then(|l| l.strip_prefix("pod"))
            .map(str::to_owned)
    };
    let Some(uid) = uid.filter(|u| !u.is_empty()) else {
        return Some(id);
    };
    id.pod_uid = Some(uid);
    id.qos = Some(qos.unwrap_or(Qos::Guaranteed));
    id.container_id = if systemd {
        // `<runtime>-<id>.scope`, but not CRI-O's monitor, conmon.
        level(pod + 1)
            .and_then(|l| l.strip_suffix(".scope"))
            .filter(|l| !l.starts_with("crio-conmon-"))
            .and_then(|l| RUNTIMES.iter().find_map(|r| l.strip_prefix(r)))
    } else {
        level(pod + 1).map(strip_runtime)
    }
    .filter(|c| !c.is_empty())
    .map(str::to_owned);
    Some(id)
}

fn join(a: &[u8], b: &[u8]) -> PathBuf {
    let mut out = a.to_vec();
    out.push(b'/');
    out.extend_from_slice(b);
    PathBuf::from(OsString::from_vec(out))
}

/// The properties every answer has, whatever the path.
fn check_promises(path: &Path, got: &Option<Identity>) {
    let kubepods = path.components().any(|c| is_kubepods(&c));
    assert_eq!(
        got.is_some(),
        kubepods,
        "Some exactly when there is a kubepods level"
    );
    let Some(id) = got else { return };
    let one_component = |s: &str| !s.is_empty() && !s.contains('/');
    if let Some(uid) = &id.pod_uid {
        assert!(one_component(uid), "pod uid {uid:?}");
        assert!(id.qos.is_some(), "a pod without a QoS class");
        if driver_is_systemd(path) {
            assert!(!uid.contains('_'), "systemd pod uid {uid:?} keeps a _");
        }
    }
    if let Some(cid) = &id.container_id {
        assert!(one_component(cid), "container id {cid:?}");
        assert!(id.pod_uid.is_some(), "a container without a pod");
        assert_eq!(id.short_container(), cid.get(..12).or(Some(cid)));
    }
    let _ = id.describe();
}

fn is_kubepods(c: &Component<'_>) -> bool {
    matches!(c, Component::Normal(n) if *n == "kubepods" || *n == "kubepods.slice")
}

/// Whether the first kubepods level is systemd's `kubepods.slice`.
fn driver_is_systemd(path: &Path) -> bool {
    path.components().find(is_kubepods) == Some(Component::Normal("kubepods.slice".as_ref()))
}

/// A pod UID and a container ID made of the input's bytes: lowercase hex
/// and, in the UID, dashes (a real UID is 8-4-4-4-12 hex).
fn made_up(data: &[u8]) -> Option<(String, String, u8)> {
    let (&choice, rest) = data.split_first()?;
    let (uid, cid) = rest.split_at(rest.len() / 2);
    let hex = |b: &u8| char::from(b"0123456789abcdef"[usize::from(b & 15)]);
    let uid: String = uid
        .iter()
        .map(|b| if b & 0xf0 == 0xf0 { '-' } else { hex(b) })
        .collect();
    let cid: String = cid.iter().map(hex).collect();
    (!uid.is_empty() && !cid.is_empty()).then_some((uid, cid, choice))
}

fn made_up_paths(uid: &str, cid: &str, choice: u8) -> (Option<Qos>, [String; 2]) {
    let qos = [None, Some(Qos::Burstable), Some(Qos::BestEffort)][usize::from(choice % 3)];
    let runtime = ["cri-containerd-", "crio-", "docker-"][usize::from(choice / 3 % 3)];
    let systemd_uid = uid.replace('-', "_");
    let systemd = match qos {
        None => format!("/kubepods.slice/kubepods-pod{systemd_uid}.slice/{runtime}{cid}.scope"),
        Some(q) => format!(
            "/kubepods.slice/kubepods-{q}.slice/kubepods-{q}-pod{systemd_uid}.slice/{runtime}{cid}.scope"
        ),
    };
    let cgroupfs = match qos {
        None => format!("/kubepods/pod{uid}/{cid}"),
        Some(q) => format!("/kubepods/{q}/pod{uid}/{cid}"),
    };
    (qos, [systemd, cgroupfs])
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new(OsStr::from_bytes(data));
    let got = Identity::from_path(path);
    assert_eq!(
        got,
        reference(path),
        "from_path({path:?}) against the reference"
    );
    check_promises(path, &got);

    // A mount point in front changes nothing; neither does what lies below
    // a container.
    let mounted = join(b"/sys/fs/cgroup/unified", data);
    assert_eq!(Identity::from_path(&mounted), got, "under a mount point");
    if got.as_ref().is_some_and(|id| id.container_id.is_some()) {
        let deeper = join(data, b"init.scope/x");
        assert_eq!(Identity::from_path(&deeper), got, "below the container");
    }

    if let Some((uid, cid, choice)) = made_up(data) {
        let (qos, paths) = made_up_paths(&uid, &cid, choice);
        for made in paths {
            let want = Identity {
                qos: Some(qos.unwrap_or(Qos::Guaranteed)),
                pod_uid: Some(uid.clone()),
                container_id: Some(cid.clone()),
            };
            assert_eq!(Identity::from_path(made.as_ref()), Some(want), "{made}");
        }
    }
});
