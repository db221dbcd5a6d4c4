//! Hostile input (issue 13): what another container, the kubelet's log
//! directories and the cgroup tree can put in front of the exporter.
//!
//! - Other containers' flags that are FIFOs, devices, sockets, symlinks out
//!   of their root, 1 GB sparse files, NUL bytes or invalid UTF-8: real
//!   processes with a root of their own (`psi_testkit::pod::start_rooted`),
//!   each refused with a reason counted in `psi_discovery_refused_flags`
//!   and named in the not-found message, or simply not matched; discovery
//!   never blocks, never reads more than a few KiB of a flag, and still
//!   finds the real container beside them.
//! - Our own `--pid-flag-file` made as badly: the exporter says why and
//!   exits 1.
//! - Kubelet log entries that mimic the kubelet's names: never a name on
//!   the wrong cgroup, always an exposition promtool accepts.
//! - Cgroup names with quotes, backslashes, control characters and invalid
//!   UTF-8: escaped in every endpoint, byte for byte.
//!
//! Needs root and cgroup v2 (and promtool); in CI these tests must run.

mod support;

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use psi_core::discover::{self, Config};
use psi_testkit::cgroup::{self, TestCgroup};
use psi_testkit::fakeproc::mkfifo;
use psi_testkit::http::{self, free_port, promtool_check, sample};
use psi_testkit::pod::{self, Rooted};
use psi_testkit::process::Process;
use support::kubelet::{Tree, UID_A, UID_B, UID_C, cid};
use support::{metrics, sidecar_flag, start_container, start_exporter, unique_flag};

/// A container whose `/etc/pid_flag` is made by `setup`, and what discovery
/// must make of it: refused for `reason`, or (`None`) simply not matched.
struct Case {
    name: &'static str,
    setup: &'static str,
    reason: Option<&'static str>,
}

/// `$1` is our flag, `$2` a path of the host given to the case.
const CASES: &[Case] = &[
    Case {
        name: "fifo",
        setup: "mkfifo etc/pid_flag",
        reason: Some("fifo"),
    },
    Case {
        name: "fifo in a ConfigMap directory",
        setup: "mkdir etc/pid_flag && mkfifo etc/pid_flag/pid_flag",
        reason: Some("fifo"),
    },
    Case {
        // /dev/zero: a read that never ends.
        name: "character device",
        setup: "mknod etc/pid_flag c 1 5",
        reason: Some("device"),
    },
    Case {
        name: "socket",
        setup: ": > etc/pid_flag && mount --bind \"$2\" etc/pid_flag",
        reason: Some("socket"),
    },
    Case {
        name: "1 GB sparse file",
        setup: "truncate -s 1G etc/pid_flag",
        reason: Some("too_large"),
    },
    Case {
        name: "our flag, then 1 GB of holes",
        setup: "printf '%s\\n' \"$1\" > etc/pid_flag && truncate -s 1G etc/pid_flag",
        reason: Some("too_large"),
    },
    Case {
        name: "our flag and invalid UTF-8",
        setup: "printf '%s\\377' \"$1\" > etc/pid_flag",
        reason: Some("not_utf8"),
    },
    Case {
        name: "empty",
        setup: ": > etc/pid_flag",
        reason: Some("empty"),
    },
    Case {
        name: "two ConfigMap keys",
        setup: "mkdir etc/pid_flag && echo \"$1\" > etc/pid_flag/a && echo \"$1\" > etc/pid_flag/b",
        reason: Some("several_files"),
    },
    Case {
        name: "a directory of 1100 files",
        setup: "mkdir etc/pid_flag && cd etc/pid_flag && i=0 && \
                while [ $i -lt 1100 ]; do : > f$i; i=$((i+1)); done",
        reason: Some("too_many_entries"),
    },
    Case {
        // A magic link: followed, it would be this exporter's own root.
        name: "symlink through /proc/self/root",
        setup: "ln -s \"/proc/self/root$2\" etc/pid_flag",
        reason: Some("symlink"),
    },
    Case {
        // C would stop at the NUL and match.
        name: "our flag, a NUL and more",
        setup: "printf '%s\\0junk' \"$1\" > etc/pid_flag",
        reason: None,
    },
    Case {
        name: "our flag and a NUL",
        setup: "printf '%s\\0' \"$1\" > etc/pid_flag",
        reason: None,
    },
    Case {
        name: "symlink to /etc/shadow",
        setup: "ln -s /etc/shadow etc/pid_flag",
        reason: None,
    },
    Case {
        // The host path of a file holding our flag: it is not in this root.
        name: "absolute symlink to a host-only file",
        setup: "ln -s \"$2\" etc/pid_flag",
        reason: None,
    },
    Case {
        name: "relative symlink climbing out",
        setup: "ln -s \"../../../../../../../../..$2\" etc/pid_flag",
        reason: None,
    },
];

/// Bytes a process has read (`rchar`) and its peak resident memory in KiB.
fn io_and_peak(pid: u32) -> (u64, u64) {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let rchar = io
        .lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("rchar in /proc/<pid>/io");
    let hwm = support::status_field(pid, "VmHWM:")
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    (rchar, hwm)
}

#[test]
fn hostile_flags_are_refused_without_blocking_and_the_real_one_is_found() {
    let Some(root) = cgroup::root() else { return };
    let flag = unique_flag("hostile");
    let flag_dir = sidecar_flag(&flag);
    let ours = flag_dir.path().join("pid_flag_sc/pid_flag");
    // A file only the host can reach, holding our flag: a container whose
    // flag links to it would impersonate the monitored one.
    let host = tempfile::tempdir().expect("tempdir");
    let host_only = host.path().join("flag");
    std::fs::write(&host_only, format!("{flag}\n")).expect("write");
    let socket = host.path().join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("a socket");
    let hostile = TestCgroup::new(&root, "hostile-flags").expect("cgroup");
    let sidecar = TestCgroup::new(&root, "hostile-sidecar").expect("cgroup");

    let mut containers: Vec<(&Case, Process, tempfile::TempDir)> = Vec::new();
    for case in CASES {
        let host_path = match case.name {
            "socket" => socket.to_str(),
            "absolute symlink to a host-only file" | "relative symlink climbing out" => {
                host_only.to_str()
            }
            _ => ours.to_str(),
        }
        .expect("UTF-8 temporary paths");
        let mount_point = tempfile::tempdir().expect("tempdir");
        let spec = Rooted {
            setup: case.setup,
            args: &[&flag, host_path],
            user: None,
        };
        let process = pod::start_rooted(hostile.path(), mount_point.path(), spec)
            .unwrap_or_else(|e| panic!("start the container {:?}: {e}", case.name));
        containers.push((case, process, mount_point));
    }

    // Each case, as the library reads it on the real /proc (in a thread
    // that must come back: a FIFO opened for reading would never return).
    let config = Config::default();
    for (case, process, _) in &containers {
        let pid = process.child.id();
        let config = config.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(discover::flag_of(&config, pid)));
        let read = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{}: reading the flag blocked", case.name));
        match (read, case.reason) {
            (Ok(text), None) => assert_ne!(text, flag, "{}: matched", case.name),
            (Ok(text), Some(want)) => panic!("{}: read {text:?}, not refused ({want})", case.name),
            (Err(discover::DiscoverError::Flag { source, .. }), want) => {
                assert_eq!(source.reason(), want, "{}: {source}", case.name);
            }
            (Err(e), _) => panic!("{}: {e}", case.name),
        }
    }

    // The exporter: it listens (its first search runs before), finds
    // nothing, and says which flags it refused and why.
    let port = free_port().expect("port");
    let exporter = start_exporter(port, flag_dir.path(), &sidecar, &[]);
    let body = metrics(port);
    promtool_check(&body);
    assert_eq!(sample(&body, "psi_target_up"), Some(0.0), "{body}");
    for case in CASES {
        let Some(reason) = case.reason else { continue };
        let want = CASES.iter().filter(|c| c.reason == Some(reason)).count() as f64;
        let series = format!("psi_discovery_refused_flags{{reason=\"{reason}\"}}");
        // Other tests' containers may add to these, never take away.
        let got = sample(&body, &series).unwrap_or(0.0);
        assert!(got >= want, "{series}: {got} < {want}\n{body}");
    }
    let health = http::get(port, "/health").expect("GET /health");
    assert_eq!(health.status, 200);
    assert!(
        health
            .body
            .starts_with("ok: serving, but the monitored container is not found: no process")
            && health.body.contains("; flags refused: pid "),
        "{}",
        health.body
    );
    let (read, peak) = io_and_peak(exporter.child.id());
    // A whole /proc scan reads a few KiB a process: nothing near 1 GB, and
    // no buffer of that size either.
    assert!(read < 64 << 20, "the exporter read {read} bytes");
    assert!(peak < 64 << 10, "the exporter's peak RSS is {peak} KiB");

    // The real container beside them is found, without a restart.
    let app = TestCgroup::new(&root, "hostile-app").expect("cgroup");
    let real = start_container(app.path(), &flag);
    let body = support::wait_for_target(port, real.child.id());
    assert!(
        !body.contains("psi_discovery_refused_flags{"),
        "refusals are those of a search that found nothing: {body}"
    );
    assert!(
        body.contains(&format!("pids=\"{}\"", real.child.id())),
        "only the real container: {body}"
    );
    drop(exporter);
    drop(real);
    drop(containers);
}

#[test]
fn a_container_whose_cgroup_view_links_out_of_its_root_is_read_from_its_real_cgroup() {
    let Some(root) = cgroup::root() else { return };
    let flag = unique_flag("view");
    let flag_dir = sidecar_flag(&flag);
    // Pressure files only the host can reach, with a total no cgroup has.
    let host = tempfile::tempdir().expect("tempdir");
    let fake = "some avg10=0.00 avg60=0.00 avg300=0.00 total=4242424242\n\
                full avg10=0.00 avg60=0.00 avg300=0.00 total=4242424242\n";
    for resource in ["cpu", "memory", "io"] {
        std::fs::write(host.path().join(format!("{resource}.pressure")), fake).expect("write");
    }
    let app = TestCgroup::new(&root, "view-app").expect("cgroup");
    let sidecar = TestCgroup::new(&root, "view-sidecar").expect("cgroup");
    let mount_point = tempfile::tempdir().expect("tempdir");
    // Its own /sys/fs/cgroup: a tmpfs that looks like a cgroup, whose
    // pressure files are absolute links to the host's files.
    let setup = "umount sys/fs/cgroup && mount -t tmpfs tmpfs sys/fs/cgroup && \
                 echo 'cpu io memory' > sys/fs/cgroup/cgroup.controllers && \
                 for r in cpu memory io; do ln -s \"$2/$r.pressure\" sys/fs/cgroup/$r.pressure; done && \
                 printf '%s\\n' \"$1\" > etc/pid_flag";
    let host_dir = host.path().to_str().expect("a UTF-8 path");
    let spec = Rooted {
        setup,
        args: &[&flag, host_dir],
        user: None,
    };
    let container = pod::start_rooted(app.path(), mount_point.path(), spec).expect("container");
    let port = free_port().expect("port");
    let _exporter = start_exporter(port, flag_dir.path(), &sidecar, &[]);
    let body = support::wait_for_target(port, container.child.id());
    assert!(
        !body.contains("4242.424242"),
        "a host file was read:\n{body}"
    );
    let real = format!("path=\"{}\"", app.path().display());
    assert!(body.contains(&real), "{real} in:\n{body}");
    assert!(
        sample(&body, "psi_cpu_waiting_seconds_total").is_some(),
        "{body}"
    );
}

/// Runs the exporter with `--pid-flag-file` at `path`: it must exit 1
/// within 10 s, saying why on stderr.
fn refused_at_start(path: &Path) -> String {
    let port = free_port().expect("port");
    let mut exporter = Process {
        child: Command::new(env!("CARGO_BIN_EXE_psi-exporter"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--pid-flag-file")
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the exporter"),
    };
    let status = exporter
        .wait_timeout(Duration::from_secs(10))
        .expect("wait")
        .unwrap_or_else(|| panic!("{}: the exporter did not exit", path.display()));
    assert_eq!(status.code(), Some(1), "{}", path.display());
    let mut stderr = String::new();
    if let Some(mut pipe) = exporter.child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).expect("stderr");
    }
    stderr
}

#[test]
fn our_own_hostile_flag_stops_the_exporter_at_start_with_a_reason() {
    // No root needed: every one of these can be made by any user.
    let dir = tempfile::tempdir().expect("tempdir");
    let at = |name: &str| dir.path().join(name);
    mkfifo(&at("fifo")).expect("mkfifo");
    std::os::unix::fs::symlink(at("fifo"), at("link-to-fifo")).expect("symlink");
    std::fs::File::create(at("sparse"))
        .and_then(|f| f.set_len(1 << 30))
        .expect("a 1 GB sparse file");
    std::fs::write(at("latin1"), b"caf\xe9\n").expect("write");
    std::fs::write(at("empty"), b" \n").expect("write");
    std::fs::create_dir(at("two")).expect("mkdir");
    std::fs::write(at("two/a"), "x").expect("write");
    std::fs::write(at("two/b"), "x").expect("write");
    let cases: [(PathBuf, &str); 7] = [
        (at("fifo"), "a fifo, not a regular file"),
        (at("link-to-fifo"), "a fifo, not a regular file"),
        // A read of /dev/zero would never end.
        (
            PathBuf::from("/dev/zero"),
            "a character device, not a regular file",
        ),
        (at("sparse"), "larger than 4096 bytes"),
        (at("latin1"), "not UTF-8 text"),
        (at("empty"), "empty after trimming whitespace"),
        (
            at("two"),
            "2 regular files in the directory and none named pid_flag",
        ),
    ];
    for (path, why) in cases {
        let stderr = refused_at_start(&path);
        let want = format!("cannot read the flag at {}: {why}", path.display());
        assert!(stderr.contains(&want), "want {want:?} in:\n{stderr}");
    }
}

/// Writes each `(name, is_dir)` below `dir`, a name being raw bytes.
fn entries(dir: &Path, names: &[(Vec<u8>, bool)]) {
    for (name, is_dir) in names {
        let path = dir.join(std::ffi::OsStr::from_bytes(name));
        if *is_dir {
            std::fs::create_dir_all(&path).expect("mkdir a log directory");
        } else {
            std::os::unix::fs::symlink("/nonexistent/0.log", &path).expect("symlink a log");
        }
    }
}

#[test]
fn log_names_that_mimic_the_kubelets_never_name_the_wrong_cgroup() {
    let Some(root) = cgroup::root() else { return };
    let tree = Tree::build(&root);
    let pods = tree.logs.path().join("pods");
    let containers = tree.logs.path().join("containers");
    let id = |d| cid(d);
    let long_pod = "p".repeat(255 - "shop_".len() - "_".len() - UID_C.len());
    entries(
        &pods,
        &[
            // A second claim on the web pod's UID: which is true cannot be
            // told from names, so neither is used.
            (format!("evil_web_{UID_A}").into_bytes(), true),
            // Extra underscores, quotes and newlines, invalid UTF-8.
            (format!("shop_db_x_{UID_B}").into_bytes(), true),
            (format!("sh\"op_d\nb_{UID_B}").into_bytes(), true),
            (
                [b"shop\xff_db_".as_slice(), UID_B.as_bytes()].concat(),
                true,
            ),
            // 255 bytes, the kubelet's shape, a pod UID no cgroup has.
            (
                format!("shop_{long_pod}_{}", UID_C.replace('1', "9")).into_bytes(),
                true,
            ),
        ],
    );
    let long_link = format!("{}_batch_worker-{}.log", "q".repeat(200), id('d'));
    entries(
        &containers,
        &[
            // A second claim on nginx's ID.
            (format!("web_shop_evil-{}.log", id('a')).into_bytes(), false),
            // postgres's ID, one digit short or long, or with more fields.
            (
                format!("db_shop_pg-{}.log", &id('c')[..63]).into_bytes(),
                false,
            ),
            (format!("db_shop_pg-{}c.log", id('c')).into_bytes(), false),
            (format!("db_x_shop_pg-{}.log", id('c')).into_bytes(), false),
            (
                format!("db_shop_p\"g\n-{}.log", id('c')).into_bytes(),
                false,
            ),
            (
                [b"db_shop_p\xffg-".as_slice(), id('c').as_bytes(), b".log"].concat(),
                false,
            ),
            // The worker's link as the kubelet cuts a name at 255 bytes.
            (long_link.as_bytes()[..255].to_vec(), false),
        ],
    );
    let port = free_port().expect("port");
    let _exporter = tree.exporter(port, &["--level", "pod,container"]);
    let body = metrics(port);
    promtool_check(&body);
    for name in ["evil", "pg", "x", "q", "sh\\\"op", "\\n"] {
        for label in ["namespace", "pod", "container"] {
            let bad = format!("{label}=\"{name}");
            assert!(!body.lines().any(|l| l.contains(&bad)), "{bad} in:\n{body}");
        }
    }
    assert!(!body.contains(&long_pod), "{body}");
    let line = |rel: &str| {
        let needle = format!("psi_cpu_waiting_seconds_total{{cgroup=\"/{rel}\",");
        body.lines()
            .find(|l| l.starts_with(&needle))
            .unwrap_or_else(|| panic!("{rel} in:\n{body}"))
            .to_owned()
    };
    // nginx's ID and the web pod's UID are each claimed twice: no names.
    let nginx = line(&tree.nginx());
    assert!(
        nginx.contains(&format!(
            ",qos=\"burstable\",pod_uid=\"{UID_A}\",container_id="
        )),
        "{nginx}"
    );
    assert!(!nginx.contains("namespace="), "{nginx}");
    // postgres keeps its one true name beside its mimics.
    let postgres = line(&tree.postgres());
    assert!(
        postgres.contains("namespace=\"shop\",pod=\"db\",container=\"postgres\","),
        "{postgres}"
    );
    let worker = line(&format!("kubepods/besteffort/pod{UID_C}/crio-{}", id('d')));
    assert!(
        worker.contains("namespace=\"batch\",pod=\"job\",container=\"worker\","),
        "{worker}"
    );
}

#[test]
fn a_kubepods_made_inside_another_cgroup_is_no_pod() {
    let Some(root) = cgroup::root() else { return };
    let top = TestCgroup::new(&root, "mimic").expect("cgroup");
    let real = format!("kubepods/besteffort/pod{UID_C}");
    // A user's delegated subtree, and a docker container's own cgroup,
    // holding cgroups named as the kubelet names a pod: UID_C's, and
    // UID_B's under the systemd driver.
    let fakes = [
        format!("user.slice/user-1000.slice/kubepods/besteffort/pod{UID_C}"),
        format!(
            "system.slice/docker-{}.scope/kubepods.slice/kubepods-pod{}.slice",
            cid('e'),
            UID_B.replace('-', "_")
        ),
    ];
    let mut made = Vec::new();
    for path in std::iter::once(&real).chain(&fakes) {
        let mut dir = top.path().to_owned();
        for part in path.split('/') {
            dir.push(part);
            let parent = dir.parent().expect("a parent").to_owned();
            if !dir.exists() {
                made.push(TestCgroup::named(&parent, part).expect("mkdir"));
            }
        }
    }
    // A Vec drops from its first element: the deepest first, even on a
    // failed assertion.
    made.reverse();
    let logs = tempfile::tempdir().expect("tempdir");
    for pod in [format!("batch_job_{UID_C}"), format!("shop_db_{UID_B}")] {
        std::fs::create_dir_all(logs.path().join("pods").join(pod)).expect("mkdir");
    }
    let port = free_port().expect("port");
    let mut command = Command::new(env!("CARGO_BIN_EXE_psi-exporter"));
    command
        .args(["--mode", "node", "--level", "pod"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--cgroup-root"])
        .arg(top.path())
        .arg("--pod-logs-dir")
        .arg(logs.path().join("pods"));
    let _exporter = http::serve(&mut command, port, Duration::from_secs(10));
    let body = metrics(port);
    promtool_check(&body);
    let pods: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("psi_cpu_waiting_seconds_total{"))
        .collect();
    assert_eq!(pods.len(), 1, "only the kubelet's pod:\n{body}");
    assert!(
        pods[0].starts_with(&format!(
            "psi_cpu_waiting_seconds_total{{cgroup=\"/{real}\",namespace=\"batch\",pod=\"job\","
        )),
        "{body}"
    );
}

/// A cgroup name made of what escaping must handle: HTML's five, the text
/// format's backslash and quote, a carriage return and a tab. A newline is
/// what the kernel refuses (checked below).
const NASTY: &str = "<script>\"a\\b'\r\t&";

/// The body of `GET path`, which must answer 200.
fn body(port: u16, path: &str) -> String {
    let r = http::get(port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(r.status, 200, "{path}");
    r.body
}

#[test]
fn nasty_cgroup_names_are_escaped_in_every_endpoint() {
    let Some(root) = cgroup::root() else { return };
    let top = TestCgroup::new(&root, "names").expect("cgroup");
    let err = std::fs::create_dir(top.path().join("a\nb")).expect_err("a newline");
    assert_eq!(
        err.raw_os_error(),
        Some(22),
        "the kernel refuses \\n: {err}"
    );
    let nasty = TestCgroup::named(top.path(), NASTY).expect("mkdir the nasty cgroup");
    // Two names that are not UTF-8, and the valid one a lossy label of
    // either would be.
    let _lossy = TestCgroup::named(top.path(), "x\u{fffd}").expect("mkdir");
    let _ff = TestCgroup::named_os(top.path(), std::ffi::OsStr::from_bytes(b"x\xff"))
        .expect("mkdir a name that is not UTF-8");
    let _fe = TestCgroup::named_os(top.path(), std::ffi::OsStr::from_bytes(b"x\xfe"))
        .expect("mkdir a name that is not UTF-8");
    let top_rel = top
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .expect("an ASCII name");

    // Node mode: the `cgroup` label, each series once, and /psi.
    let port = free_port().expect("port");
    let mut command = Command::new(env!("CARGO_BIN_EXE_psi-exporter"));
    command
        .args(["--mode", "node", "--level", "all"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--cgroup-root"])
        .arg(top.path());
    let node = http::serve(&mut command, port, Duration::from_secs(10));
    let text = metrics(port);
    promtool_check(&text);
    let mut seen = std::collections::HashSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let key = line.rsplit_once(' ').map_or(line, |(k, _)| k);
        assert!(seen.insert(key), "duplicate series {key:?} in:\n{text}");
    }
    let series = "psi_cpu_waiting_seconds_total{cgroup=\"/<script>\\\"a\\\\b'\r\t&\"} ";
    assert!(text.contains(series), "{series:?} in:\n{text}");
    assert!(text.contains("psi_cpu_waiting_seconds_total{cgroup=\"/x\u{fffd}\"} "));
    // The root, the nasty one and the valid x\u{fffd}: the two that are not
    // UTF-8 cannot be labelled as themselves, and are left out and counted.
    assert_eq!(sample(&text, "psi_node_cgroups"), Some(3.0), "{text}");
    assert_eq!(
        sample(&text, "psi_node_unlabelled_cgroups"),
        Some(2.0),
        "{text}"
    );
    let json = body(port, "/psi");
    let want = "\"/<script>\\\"a\\\\b'\\r\\t&\"";
    assert!(json.contains(want), "{want} in {json}");
    serde_json::from_str::<serde_json::Value>(&json).expect("/psi is JSON");
    drop(node);

    // The sidecar on that one cgroup: every endpoint that echoes its path.
    let port = free_port().expect("port");
    let _sidecar = support::start_exporter_on(port, nasty.path());
    let dir = top.path().to_str().expect("an ASCII path");
    let text = metrics(port);
    promtool_check(&text);
    let info = format!(
        "psi_target_info{{mode=\"cgroup\",path=\"{dir}/<script>\\\"a\\\\b'\r\t&\",pids=\"\"}} 1\n"
    );
    assert!(text.contains(&info), "{info:?} in:\n{text}");
    let json = body(port, "/psi");
    for want in [
        format!("\"path\":\"{dir}/<script>\\\"a\\\\b'\\r\\t&\""),
        format!("\"cgroup\":\"/{top_rel}/<script>\\\"a\\\\b'\\r\\t&\""),
    ] {
        assert!(json.contains(&want), "{want} in {json}");
    }
    serde_json::from_str::<serde_json::Value>(&json).expect("/psi is JSON");
    // /health is one line: a backslash doubled, \r and \t spelt out.
    let health = body(port, "/health");
    assert_eq!(
        health,
        format!("ok: exporting {dir}/<script>\"a\\\\b'\\r\\t& (cgroup)\n")
    );
    let page = body(port, "/");
    let want = format!(
        "<p>Target: ok: exporting {dir}/&lt;script&gt;&quot;a\\\\b&#39;\\r\\t&amp; (cgroup)</p>"
    );
    assert!(page.contains(&want), "{want} in:\n{page}");
    for (endpoint, text) in [("/psi", &json), ("/health", &health), ("/", &page)] {
        assert!(
            !text.contains('\r') && !text.contains('\t'),
            "{endpoint}: {text:?}"
        );
        assert!(!text.contains("<script>\"a\\b'"), "{endpoint}: {text}");
    }
    assert!(!page.contains("<script"), "{page}");
}
