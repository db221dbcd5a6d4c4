//! `psi_core::cgroup::kube::Identity::from_path` on any bytes as a path.
//!
//! - It never panics, and agrees, field by field, with a slow reference of
//!   the rules in the module docs and its tests, written from the path's
//!   bytes (split at `/`; `""`, `.` and `..` are no level; a name that is
//!   not UTF-8 is a level that matches nothing, neither skipped nor read).
//! - What it promises whatever the path: `None` exactly when no component
//!   is `kubepods` or `kubepods.slice` and the last one is no docker or
//!   podman container; `level == Container` exactly when there is a
//!   container ID; a pod UID comes with a QoS class, is hex digits and
//!   dashes (no `_`), at most 64; a container ID is lowercase hex, at most
//!   64; each level carries what it names and nothing finer; outside
//!   `kubepods` only a container, with nothing but its ID; a mount point in
//!   front changes nothing, and for a `kubepods` path no prefix without
//!   `kubepods` does; a cgroup below a container is `Other`, same pod.
//! - Kubelet-shaped paths made from the input, for both cgroup drivers, all
//!   QoS classes, every runtime prefix and every level (and docker and
//!   podman paths outside Kubernetes) read back the level, QoS class, pod
//!   UID and container ID they were made from.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use psi_core::cgroup::kube::{Identity, Level, Qos};

/// An [`Identity`] the target can build (that one is `#[non_exhaustive]`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Want {
    level: Level,
    qos: Option<Qos>,
    pod_uid: Option<String>,
    container_id: Option<String>,
}

impl Want {
    fn at(level: Level) -> Want {
        Want {
            level,
            qos: None,
            pod_uid: None,
            container_id: None,
        }
    }
}

impl From<&Identity> for Want {
    fn from(id: &Identity) -> Want {
        Want {
            level: id.level,
            qos: id.qos,
            pod_uid: id.pod_uid.clone(),
            container_id: id.container_id.clone(),
        }
    }
}

fn read(path: &[u8]) -> Option<Want> {
    Identity::from_path(Path::new(OsStr::from_bytes(path)))
        .as_ref()
        .map(Want::from)
}

/// The levels of a path: its names between slashes, without `""`, `.` and
/// `..`; a name that is not UTF-8 stands as `""`.
fn names(path: &[u8]) -> Vec<&str> {
    path.split(|&b| b == b'/')
        .filter(|n| !matches!(*n, b"" | b"." | b".."))
        .map(|n| std::str::from_utf8(n).unwrap_or(""))
        .collect()
}

/// The QoS classes that have a level of their own, with the names of that
/// level for the systemd and the cgroupfs driver.
const QOS_LEVELS: [(Qos, &str, &str); 2] = [
    (Qos::Burstable, "kubepods-burstable.slice", "burstable"),
    (Qos::BestEffort, "kubepods-besteffort.slice", "besteffort"),
];

/// The runtimes' prefixes of a container's systemd scope and its cgroupfs
/// directory (the bare ID is the other cgroupfs name).
const SYSTEMD_RUNTIMES: [&str; 3] = ["cri-containerd-", "crio-", "docker-"];
const CGROUPFS_RUNTIMES: [&str; 2] = ["", "crio-"];

fn is_hex_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| "0123456789abcdef".contains(c))
}

fn is_uid(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

/// The reference.
fn reference(path: &[u8]) -> Option<Want> {
    let names = names(path);
    match names
        .iter()
        .position(|n| *n == "kubepods" || *n == "kubepods.slice")
    {
        Some(start) => Some(under_kubepods(&names[start..])),
        None => runtime_container(&names),
    }
}

/// `names` starts at `kubepods` or `kubepods.slice`.
fn under_kubepods(names: &[&str]) -> Want {
    let systemd = names[0] == "kubepods.slice";
    let mut want = Want::at(Level::Kubepods);
    let mut rest = &names[1..];
    if rest.is_empty() {
        return want;
    }

    // A QoS level, if the first name below is one; a guaranteed pod is
    // right below kubepods.
    let qos = QOS_LEVELS
        .iter()
        .find_map(|&(qos, systemd_name, cgroupfs_name)| {
            let name = if systemd { systemd_name } else { cgroupfs_name };
            (rest[0] == name).then_some(qos)
        });
    if let Some(qos) = qos {
        (want.level, want.qos) = (Level::Qos, Some(qos));
        rest = &rest[1..];
        if rest.is_empty() {
            return want;
        }
    }

    // The pod: the systemd name is `<parent slice without .slice>-pod<uid>.slice`
    // with the UID's dashes written `_`.
    let pod = rest[0];
    let uid = if systemd {
        let parent = match want.qos {
            Some(Qos::Burstable) => "kubepods-burstable",
            Some(Qos::BestEffort) => "kubepods-besteffort",
            _ => "kubepods",
        };
        // A literal `-` in the UID is refused: systemd would read it as one
        // more level of slices, and the kubelet never writes it.
        pod.strip_prefix(parent)
            .and_then(|p| p.strip_prefix("-pod"))
            .and_then(|p| p.strip_suffix(".slice"))
            .filter(|u| !u.contains('-'))
            .map(|u| u.replace('_', "-"))
    } else {
        pod.strip_prefix("pod").map(str::to_owned)
    };
    let Some(uid) = uid.filter(|u| is_uid(u)) else {
        want.level = Level::Other;
        return want;
    };
    (want.level, want.pod_uid) = (Level::Pod, Some(uid));
    want.qos = Some(want.qos.unwrap_or(Qos::Guaranteed));
    let Some((&container, deeper)) = rest[1..].split_first() else {
        return want;
    };

    // The container, and nothing below it.
    let id = if systemd {
        SYSTEMD_RUNTIMES.iter().find_map(|r| {
            container
                .strip_prefix(r)
                .and_then(|c| c.strip_suffix(".scope"))
                .filter(|c| is_hex_id(c))
        })
    } else {
        CGROUPFS_RUNTIMES
            .iter()
            .find_map(|r| container.strip_prefix(r).filter(|c| is_hex_id(c)))
    };
    match id {
        Some(id) if deeper.is_empty() => {
            want.level = Level::Container;
            want.container_id = Some(id.to_owned());
        }
        _ => want.level = Level::Other,
    }
    want
}

/// Outside kubepods: `docker-<id>.scope`, `docker/<id>`, `libpod-<id>.scope`
/// or `libpod-<id>` as the last level.
fn runtime_container(names: &[&str]) -> Option<Want> {
    let last = *names.last()?;
    let parent = names.len().checked_sub(2).map(|i| names[i]);
    let candidates = [
        last.strip_prefix("docker-")
            .and_then(|n| n.strip_suffix(".scope")),
        last.strip_prefix("libpod-")
            .and_then(|n| n.strip_suffix(".scope")),
        (parent == Some("docker")).then_some(last),
        last.strip_prefix("libpod-"),
    ];
    let id = candidates.into_iter().flatten().find(|id| is_hex_id(id))?;
    Some(Want {
        container_id: Some(id.to_owned()),
        ..Want::at(Level::Container)
    })
}

/// The properties every answer has, checked on their own, not through the
/// reference.
fn check_promises(path: &[u8], got: Option<&Identity>) {
    let names = names(path);
    let kubepods = names
        .iter()
        .any(|n| *n == "kubepods" || *n == "kubepods.slice");
    // A docker or podman container's name: the runtime's word, a lowercase
    // hex ID, and `.scope` for systemd (libpod also without, docker
    // without only below `docker`).
    let container_name = |n: &str, parent: Option<&str>| {
        let (word, scoped) = match n.strip_suffix(".scope") {
            Some(s) => (s, true),
            None => (n, false),
        };
        let bare = |p: &str| word.strip_prefix(p).is_some_and(is_hex_id);
        (scoped && (bare("docker-") || bare("libpod-")))
            || (!scoped && (bare("libpod-") || (parent == Some("docker") && is_hex_id(word))))
    };
    let runtime = match names[..] {
        [] => false,
        [only] => container_name(only, None),
        [.., parent, last] => container_name(last, Some(parent)),
    };
    assert_eq!(
        got.is_some(),
        kubepods || runtime,
        "Some exactly when under kubepods or a docker or podman container"
    );
    let Some(id) = got else { return };

    assert_eq!(
        id.level == Level::Container,
        id.container_id.is_some(),
        "a container ID exactly at the container level: {id:?}"
    );
    if let Some(uid) = &id.pod_uid {
        assert!(id.qos.is_some(), "a pod without a QoS class: {id:?}");
        assert!(is_uid(uid) && !uid.contains('_'), "pod uid {uid:?}");
    }
    if let Some(cid) = &id.container_id {
        assert!(is_hex_id(cid), "container id {cid:?}");
        let short = id.short_container().expect("a short id");
        assert!(cid.starts_with(short) && short.len() == cid.len().min(12));
    } else {
        assert_eq!(id.short_container(), None);
    }
    if !kubepods {
        assert_eq!(id.level, Level::Container, "outside kubepods: {id:?}");
        assert_eq!((id.qos, &id.pod_uid), (None, &None), "outside kubepods");
    }
    // Each level has what it names, and nothing finer.
    match id.level {
        Level::Kubepods => assert_eq!((id.qos, &id.pod_uid), (None, &None)),
        Level::Qos => {
            assert!(matches!(id.qos, Some(Qos::Burstable | Qos::BestEffort)));
            assert_eq!(id.pod_uid, None);
        }
        Level::Pod => assert!(id.pod_uid.is_some(), "a pod without a uid"),
        Level::Container if kubepods => assert!(id.pod_uid.is_some(), "no pod: {id:?}"),
        _ => {}
    }
    let _ = id.describe();
}

fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b"/", b].concat()
}

const MOUNTS: [&[u8]; 3] = [
    b"/sys/fs/cgroup",
    b"/sys/fs/cgroup/unified",
    b"host/sys/fs/cgroup",
];

/// What made-up paths are made of: a selector byte, a pod UID (hex digits
/// either case and dashes, 1 to 64) and a container ID (lowercase hex, 1
/// to 64) from the input's bytes.
struct MadeUp {
    choice: u8,
    uid: String,
    cid: String,
}

fn made_up(data: &[u8]) -> Option<MadeUp> {
    let (&choice, rest) = data.split_first()?;
    let (&uid_len, rest) = rest.split_first()?;
    let uid_len = usize::from(uid_len % 64) + 1;
    if rest.len() <= uid_len {
        return None;
    }
    let (uid, cid) = rest.split_at(uid_len);
    const UID_CHARS: &[u8] = b"0123456789abcdef-ABCDEF";
    const HEX: &[u8] = b"0123456789abcdef";
    let pick = |set: &[u8], b: u8| char::from(set[usize::from(b) % set.len()]);
    Some(MadeUp {
        choice,
        uid: uid.iter().map(|&b| pick(UID_CHARS, b)).collect(),
        cid: cid.iter().take(64).map(|&b| pick(HEX, b)).collect(),
    })
}

/// The kubelet's paths for one pod and container, for both drivers, at
/// each level from kubepods to below the container, with what each says.
fn kubelet_paths(m: &MadeUp) -> Vec<(String, Want)> {
    let qos = [Qos::Guaranteed, Qos::Burstable, Qos::BestEffort][usize::from(m.choice % 3)];
    let choice = usize::from(m.choice / 3);
    let systemd_runtime = SYSTEMD_RUNTIMES[choice % SYSTEMD_RUNTIMES.len()];
    let cgroupfs_runtime = CGROUPFS_RUNTIMES[choice % CGROUPFS_RUNTIMES.len()];
    let (uid, cid) = (&m.uid, &m.cid);
    let systemd_uid = uid.replace('-', "_");
    let word = match qos {
        Qos::Guaranteed => "guaranteed",
        Qos::Burstable => "burstable",
        Qos::BestEffort => "besteffort",
    };
    assert_eq!((qos.name(), qos.to_string().as_str()), (word, word));
    let (systemd_qos, cgroupfs_qos) = match qos {
        Qos::Guaranteed => (String::new(), String::new()),
        _ => (format!("/kubepods-{word}.slice"), format!("/{word}")),
    };
    let pod_slice = match qos {
        Qos::Guaranteed => format!("kubepods-pod{systemd_uid}.slice"),
        _ => format!("kubepods-{word}-pod{systemd_uid}.slice"),
    };
    let levels: [[String; 2]; 4] = [
        ["/kubepods.slice".into(), "/kubepods".into()],
        [
            format!("/kubepods.slice{systemd_qos}"),
            format!("/kubepods{cgroupfs_qos}"),
        ],
        [
            format!("/kubepods.slice{systemd_qos}/{pod_slice}"),
            format!("/kubepods{cgroupfs_qos}/pod{uid}"),
        ],
        [
            format!("/kubepods.slice{systemd_qos}/{pod_slice}/{systemd_runtime}{cid}.scope"),
            format!("/kubepods{cgroupfs_qos}/pod{uid}/{cgroupfs_runtime}{cid}"),
        ],
    ];
    let class = (qos != Qos::Guaranteed).then_some(qos);
    let pod = Want {
        level: Level::Pod,
        qos: Some(qos),
        pod_uid: Some(uid.clone()),
        container_id: None,
    };
    let wants = [
        Want::at(Level::Kubepods),
        Want {
            qos: class,
            ..Want::at(if class.is_some() {
                Level::Qos
            } else {
                Level::Kubepods
            })
        },
        pod.clone(),
        Want {
            level: Level::Container,
            container_id: Some(cid.clone()),
            ..pod.clone()
        },
    ];
    let mut out = Vec::new();
    for (paths, want) in levels.into_iter().zip(wants) {
        for path in paths {
            out.push((path, want.clone()));
        }
    }
    // A cgroup made inside a container's (the container's cgroupfs path
    // being bare hex, a name that is an ID as well).
    let inside: Vec<(String, Want)> = out[out.len() - 2..]
        .iter()
        .flat_map(|(container, want)| {
            let want = Want {
                level: Level::Other,
                container_id: None,
                ..want.clone()
            };
            ["init.scope", cid.as_str()].map(|inner| (format!("{container}/{inner}"), want.clone()))
        })
        .collect();
    out.extend(inside);
    // A systemd pod slice named for another QoS class than its parent.
    if let Some(q) = class {
        let other = if q == Qos::Burstable {
            "besteffort"
        } else {
            "burstable"
        };
        let want = Want {
            level: Level::Other,
            qos: class,
            ..Want::at(Level::Other)
        };
        out.push((
            format!("/kubepods.slice{systemd_qos}/kubepods-{other}-pod{systemd_uid}.slice"),
            want,
        ));
    }
    out
}

/// Docker's and podman's paths outside Kubernetes, for both drivers.
fn runtime_paths(cid: &str) -> Vec<(String, Want)> {
    let want = Want {
        container_id: Some(cid.to_owned()),
        ..Want::at(Level::Container)
    };
    [
        format!("/system.slice/docker-{cid}.scope"),
        format!("/docker/{cid}"),
        format!("/machine.slice/libpod-{cid}.scope"),
        format!("/libpod_parent/libpod-{cid}"),
    ]
    .into_iter()
    .map(|p| (p, want.clone()))
    .collect()
}

fuzz_target!(|data: &[u8]| {
    let got = Identity::from_path(Path::new(OsStr::from_bytes(data)));
    let path = String::from_utf8_lossy(data);
    assert_eq!(
        got.as_ref().map(Want::from),
        reference(data),
        "from_path({path:?}) against the reference"
    );
    check_promises(data, got.as_ref());
    let got = got.as_ref().map(Want::from);

    // A mount point in front changes nothing, whatever the path.
    for mount in MOUNTS {
        assert_eq!(read(&join(mount, data)), got, "{path:?} under {mount:?}");
    }
    let under_kubepods = names(data)
        .iter()
        .any(|n| *n == "kubepods" || *n == "kubepods.slice");
    if under_kubepods {
        // Nor does any prefix without kubepods in front of a kubepods path:
        // the input's own tail, its kubepods names left out.
        let prefix: Vec<u8> = data
            .split(|&b| b == b'/')
            .rev()
            .filter(|n| !matches!(*n, b"kubepods" | b"kubepods.slice"))
            .collect::<Vec<_>>()
            .join(&b'/');
        assert_eq!(read(&join(&prefix, data)), got, "{path:?} after a prefix");
    }
    // Below a container is Other, the same pod.
    if let Some(want) = got.as_ref().filter(|w| w.level == Level::Container) {
        let deeper = read(&join(data, b"x"));
        let other = under_kubepods.then(|| Want {
            level: Level::Other,
            container_id: None,
            ..want.clone()
        });
        assert_eq!(deeper, other, "below the container {path:?}");
    }

    if let Some(m) = made_up(data) {
        let mut paths = kubelet_paths(&m);
        paths.extend(runtime_paths(&m.cid));
        for (made, want) in paths {
            assert_eq!(read(made.as_bytes()), Some(want.clone()), "{made}");
            let mounted = join(
                MOUNTS[usize::from(m.choice) % MOUNTS.len()],
                made.as_bytes(),
            );
            assert_eq!(read(&mounted), Some(want), "{made} mounted");
        }
    }
});
