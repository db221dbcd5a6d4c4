//! Pod and container names from the kubelet's log directories, without the
//! Kubernetes API.
//!
//! The kubelet names its log directories `/var/log/pods/<namespace>_<pod>_<pod-uid>/<container>/`
//! and its symlinks `/var/log/containers/<pod>_<namespace>_<container>-<container-id>.log`,
//! the names fluent-bit and promtail rely on. [`Names::read`] reads those
//! entries' names (the two directories' own entries: pods from the first,
//! containers from the second), never a file's contents, and never follows
//! a symlink.
//!
//! The names are untrusted: an entry that does not have the kubelet's exact
//! shape (a DNS label for the namespace and the container, a DNS subdomain
//! for the pod, hex and dashes for the pod UID, 64 hex digits for the
//! container ID) is ignored. A symlink name the kubelet cut at 255 bytes has
//! lost its ID and is skipped. A pod UID or container ID that two entries
//! claim with different names gets neither: the kubelet makes one of each.
//!
//! ```
//! use psi_core::cgroup::logs::Names;
//!
//! let pods = tempfile::tempdir()?;
//! let containers = tempfile::tempdir()?;
//! std::fs::create_dir_all(pods.path().join("shop_web-7d4b9_5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f/nginx"))?;
//! let id = "0123456789abcdef".repeat(4);
//! std::fs::write(containers.path().join(format!("web-7d4b9_shop_nginx-{id}.log")), "")?;
//! let names = Names::read(pods.path(), containers.path());
//! let pod = names.pod("5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f").expect("named");
//! assert_eq!((pod.namespace.as_str(), pod.pod.as_str()), ("shop", "web-7d4b9"));
//! assert_eq!(names.container(&id).map(|c| c.container.as_str()), Some("nginx"));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the kubelet keeps its pod log directories.
pub const POD_LOGS: &str = "/var/log/pods";

/// Where the kubelet keeps its container log links.
pub const CONTAINER_LOGS: &str = "/var/log/containers";

/// A pod's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodName {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub pod: String,
}

/// A container's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerName {
    /// Its pod's namespace.
    pub namespace: String,
    /// Its pod's name.
    pub pod: String,
    /// Its name in the pod spec.
    pub container: String,
}

/// The names read from the two log directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// By pod UID.
    pods: HashMap<String, PodName>,
    /// By container ID.
    containers: HashMap<String, ContainerName>,
    /// The directories that are there but could not be listed.
    unreadable: Vec<PathBuf>,
}

impl Names {
    /// Reads the entries of `pod_logs` (`/var/log/pods`) and
    /// `container_logs` (`/var/log/containers`). A directory that is missing
    /// or unreadable gives no names, not an error: the labels are a help,
    /// the pressure is read without them.
    pub fn read(pod_logs: &Path, container_logs: &Path) -> Names {
        let mut names = Names::default();
        for dir in [pod_logs, container_logs] {
            if dir.exists() && std::fs::read_dir(dir).is_err() {
                names.unreadable.push(dir.to_owned());
            }
        }
        // The pod's own directory is not listed: a node has thousands, and
        // container names come from the container links.
        let pods = entry_names(pod_logs, true);
        names.pods = unambiguous(pods.iter().filter_map(|n| parse_pod_dir(n)));
        let containers = entry_names(container_logs, false);
        names.containers = unambiguous(containers.iter().filter_map(|n| parse_container_link(n)));
        names
    }

    /// The names of the pod with this UID.
    pub fn pod(&self, uid: &str) -> Option<&PodName> {
        self.pods.get(uid)
    }

    /// The names of the container with this ID.
    pub fn container(&self, id: &str) -> Option<&ContainerName> {
        self.containers.get(id)
    }

    /// The log directories that exist but could not be listed (permission
    /// denied, say): their names are missing, which the caller should say.
    pub fn unreadable(&self) -> &[PathBuf] {
        &self.unreadable
    }

    /// True when no name was read.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty() && self.containers.is_empty()
    }
}

/// The names of the entries of `dir` that are directories (`dirs`) or
/// anything but directories, as UTF-8; symlinks are not followed.
fn entry_names(dir: &Path, dirs: bool) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir() == dirs))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// The names by key, leaving out every key claimed by two entries with
/// different names: the kubelet makes one entry per pod UID and container
/// ID, so a second is someone else's, and which is true cannot be told from
/// names (the listing's order would decide).
fn unambiguous<'a, T: PartialEq>(
    entries: impl Iterator<Item = (&'a str, T)>,
) -> HashMap<String, T> {
    let mut out = HashMap::new();
    let mut ambiguous = std::collections::HashSet::new();
    for (key, value) in entries {
        if ambiguous.contains(key) {
            continue;
        }
        match out.get(key) {
            Some(seen) if *seen != value => {
                out.remove(key);
                ambiguous.insert(key);
            }
            Some(_) => {}
            None => {
                out.insert(key.to_owned(), value);
            }
        }
    }
    out
}

/// Exactly three names joined by `_` (none of the kubelet's names has one).
fn three(name: &str) -> Option<[&str; 3]> {
    let mut parts = name.split('_');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c), None) => Some([a, b, c]),
        _ => None,
    }
}

/// `<namespace>_<pod>_<uid>`.
fn parse_pod_dir(name: &str) -> Option<(&str, PodName)> {
    let [namespace, pod, uid] = three(name)?;
    let valid = is_dns_label(namespace) && is_dns_subdomain(pod) && is_uid(uid);
    let names = PodName {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
    };
    valid.then_some((uid, names))
}

/// `<pod>_<namespace>_<container>-<64 hex>.log`.
fn parse_container_link(name: &str) -> Option<(&str, ContainerName)> {
    let stem = name.strip_suffix(".log")?;
    let (names, id) = stem.rsplit_once('-')?;
    if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let [pod, namespace, container] = three(names)?;
    let valid = is_dns_subdomain(pod) && is_dns_label(namespace) && is_dns_label(container);
    let names = ContainerName {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        container: container.to_owned(),
    };
    valid.then_some((id, names))
}

/// An RFC 1123 label, as namespaces and container names are: at most 63
/// lowercase letters, digits and `-`, starting and ending alphanumeric.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// An RFC 1123 subdomain, as pod names are: labels joined by `.`, at most
/// 253 bytes.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A pod UID: hex digits and dashes.
fn is_uid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f";

    fn id() -> String {
        "0123456789abcdef".repeat(4)
    }

    #[test]
    fn pod_directories() {
        let name = format!("kube-system_coredns-5d78c9869d-x2x4k_{UID}");
        let (uid, pod) = parse_pod_dir(&name).expect("a kubelet name");
        assert_eq!(uid, UID);
        assert_eq!(
            (pod.namespace.as_str(), pod.pod.as_str()),
            ("kube-system", "coredns-5d78c9869d-x2x4k")
        );
        for bad in [
            format!("ns_pod_{UID}_extra"),
            "ns_pod".to_owned(),
            format!("Ns_pod_{UID}"),
            "ns_pod_not-a-uid!".to_owned(),
            format!("-ns_pod_{UID}"),
            format!("ns__{UID}"),
            format!("{}_pod_{UID}", "n".repeat(64)),
        ] {
            assert_eq!(parse_pod_dir(&bad), None, "{bad}");
        }
    }

    #[test]
    fn container_links() {
        let name = format!("web-1.shop_shop_nginx-{}.log", id());
        let (got_id, c) = parse_container_link(&name).expect("a kubelet name");
        assert_eq!(got_id, id());
        assert_eq!(
            (c.pod.as_str(), c.namespace.as_str(), c.container.as_str()),
            ("web-1.shop", "shop", "nginx")
        );
        // The kubelet cuts names at 255 bytes: the id is what goes.
        let long = format!("{}_shop_nginx-{}.log", "p".repeat(200), id());
        assert_eq!(parse_container_link(long.get(..255).unwrap_or(&long)), None);
        for bad in [
            format!("web_shop_nginx-{}.log", &id()[..63]),
            format!("web_shop_nginx-{}.txt", id()),
            format!("web_shop_nginx_x-{}.log", id()),
            format!("web_shop_NGINX-{}.log", id()),
            format!("web_shop_nginx-{}.log", id().to_uppercase()),
        ] {
            assert_eq!(parse_container_link(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_uid_or_id_claimed_twice_gets_no_name() {
        let pods = tempfile::tempdir().expect("tempdir");
        let containers = tempfile::tempdir().expect("tempdir");
        for dir in [format!("shop_web_{UID}"), format!("evil_web_{UID}")] {
            std::fs::create_dir(pods.path().join(dir)).expect("mkdir");
        }
        let other = "5f3c2a1e-8b7d-4c6a-9e0f-000000000000";
        std::fs::create_dir(pods.path().join(format!("shop_db_{other}"))).expect("mkdir");
        for link in [
            format!("web_shop_nginx-{}.log", id()),
            format!("web_shop_evil-{}.log", id()),
        ] {
            std::os::unix::fs::symlink("/x", containers.path().join(link)).expect("symlink");
        }
        let names = Names::read(pods.path(), containers.path());
        assert_eq!(names.pod(UID), None);
        assert_eq!(names.container(&id()), None);
        assert!(names.pod(other).is_some(), "the others keep theirs");
    }

    #[test]
    fn read_names_only_and_never_follow_links() {
        let pods = tempfile::tempdir().expect("tempdir");
        let containers = tempfile::tempdir().expect("tempdir");
        let pod_dir = pods.path().join(format!("shop_web_{UID}"));
        std::fs::create_dir_all(pod_dir.join("nginx")).expect("mkdir");
        std::fs::create_dir_all(pod_dir.join("sidecar")).expect("mkdir");
        std::fs::write(pod_dir.join("Not_A_Container"), "").expect("a file, not a directory");
        // A link to a directory elsewhere: seen as a link, not followed.
        std::os::unix::fs::symlink("/", pods.path().join(format!("evil_link_{UID}0")))
            .expect("symlink");
        let link = containers
            .path()
            .join(format!("web_shop_nginx-{}.log", id()));
        std::os::unix::fs::symlink("/nonexistent/0.log", &link).expect("symlink");
        std::fs::create_dir(
            containers
                .path()
                .join(format!("web_shop_dir-{}.log", id().replace('0', "1"))),
        )
        .expect("mkdir");
        let names = Names::read(pods.path(), containers.path());
        let pod = names.pod(UID).expect("named");
        assert_eq!((pod.namespace.as_str(), pod.pod.as_str()), ("shop", "web"));
        assert_eq!(names.pod(&format!("{UID}0")), None);
        assert_eq!(
            names.container(&id()).map(|c| c.container.as_str()),
            Some("nginx")
        );
        assert_eq!(names.containers.len(), 1, "a directory is no log link");
        let none = Names::read(Path::new("/nonexistent"), Path::new("/nonexistent"));
        assert!(none.is_empty());
        assert!(
            none.unreadable().is_empty(),
            "a missing directory is no problem"
        );
        // There but not listable (as root, a file in its place is how to
        // make one): said, so that the caller can say why names are missing.
        let file = pods.path().join(format!("shop_web_{UID}/nginx/0.log"));
        std::fs::write(&file, "").expect("write");
        let odd = Names::read(&file, containers.path());
        assert_eq!(odd.unreadable(), [file]);
    }
}
