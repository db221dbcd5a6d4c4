//! `psi` against real cgroups under CPU stress. Needs root and a cgroup v2
//! mount; in CI these must run. The machine is shared with other tests, so
//! only what outside load cannot fake is asserted: the stressed cgroup's
//! stall beside an empty cgroup's exact zero, never a duration.

mod support;

use std::path::Path;
use std::time::Duration;

use predicates::prelude::*;
use psi_testkit::cgroup::{self, TestCgroup};
use psi_testkit::http::{promtool_check, sample};
use psi_testkit::pod::{self, FlagLayout};
use psi_testkit::process::{Process, eventually};
use support::{Pair, psi};

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect()
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

/// The `cpu some` total of a cgroup, in µs, as `psi read --format json` gives it.
fn cpu_some_total(cg: &TestCgroup) -> u64 {
    let a = psi(&["read", "-f", "json", cg.path().to_str().expect("utf-8")])
        .assert()
        .success();
    json_lines(&a.get_output().stdout)[0]["pressure"]["cpu"]["some"]["total"]
        .as_u64()
        .expect("a total")
}

#[test]
fn read_a_stressed_and_an_idle_cgroup_in_every_format() {
    let Some(root) = cgroup::root() else { return };
    let pair = Pair::new(&root, "cli-read");
    let (busy, idle) = pair.paths();
    eventually(Duration::from_secs(20), || {
        (cpu_some_total(&pair.busy) > 0).then_some(())
    })
    .expect("the busy cgroup stalls");

    // The table: one row per resource and line, irq (absent here) explained.
    let a = psi(&["read", busy]).assert().success();
    let table = stdout(&a);
    assert!(
        table.starts_with(&format!("{busy}\nRESOURCE  LINE  AVG10")),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("cpu       some  ")),
        "{table}"
    );
    if !pair.busy.path().join("irq.pressure").exists() {
        assert!(
            table.contains("irq       -     unavailable (unsupported): "),
            "{table}"
        );
    }

    // JSON, relative to the cgroup v2 mount as well as absolute.
    let rel = pair
        .idle
        .path()
        .strip_prefix(&root)
        .expect("under the mount")
        .to_str()
        .expect("utf-8");
    let a = psi(&["read", "--format", "json", busy, rel])
        .assert()
        .success();
    let objects = json_lines(&a.get_output().stdout);
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["target"]["path"], busy);
    assert_eq!(objects[1]["target"]["path"], idle);
    assert_eq!(objects[1]["target"]["cgroup"], format!("/{rel}"));
    assert!(objects[0]["pressure"]["cpu"]["some"]["total"].as_u64() > Some(0));
    // An empty cgroup never stalls, whatever runs elsewhere.
    for line in ["some", "full"] {
        let rec = &objects[1]["pressure"]["cpu"][line];
        assert_eq!(rec["total"].as_u64(), Some(0), "{rec}");
        assert_eq!(rec["avg10"].as_f64(), Some(0.0), "{rec}");
    }
    // irq is read where the kernel has it in cgroups, and explained where not.
    let kernel_has_irq = pair.busy.path().join("irq.pressure").exists();
    for o in &objects {
        let irq = &o["pressure"]["irq"];
        if kernel_has_irq {
            assert!(irq.is_object(), "{o}");
        } else {
            assert!(irq.is_null(), "{o}");
            assert_eq!(o["errors"]["irq"]["reason"], "unsupported", "{o}");
        }
    }

    // Prometheus text, as the exporter serves it, valid for promtool.
    let a = psi(&["read", "--format", "prometheus", busy])
        .assert()
        .success();
    let text = stdout(&a);
    assert!(
        text.contains("psi_pressure_available{resource=\"cpu\"} 1\n"),
        "{text}"
    );
    let waited = sample(&text, "psi_cpu_waiting_seconds_total").expect("the counter");
    assert!(waited > 0.0, "{text}");
    promtool_check(&text);
    let a = psi(&["read", "--format", "prometheus", busy, idle, "--system"])
        .assert()
        .success();
    promtool_check(&stdout(&a));
}

#[test]
fn read_by_pid() {
    let Some(root) = cgroup::root() else { return };
    let mut cg = TestCgroup::new(&root, "cli-pid").expect("cgroup");
    let pid = cg
        .spawn(std::process::Command::new("sleep").arg("600"))
        .expect("sleep");
    let a = psi(&["read", "-f", "json", "--pid", &pid.to_string()])
        .assert()
        .success();
    let o = &json_lines(&a.get_output().stdout)[0];
    assert_eq!(o["target"]["path"], cg.path().to_str().expect("utf-8"));
    assert_eq!(o["target"]["pids"], serde_json::json!([pid]));
}

#[test]
fn check_exits_on_both_sides_of_a_threshold() {
    let Some(root) = cgroup::root() else { return };
    let pair = Pair::new(&root, "cli-check");
    let (busy, idle) = pair.paths();
    // Four loops on two CPUs: some task waits nearly all the time. An empty
    // cgroup: exactly zero.
    psi(&[
        "check",
        busy,
        "--max",
        "cpu.some.rate=1%",
        "--interval",
        "1s",
    ])
    .assert()
    .code(1)
    .stdout(predicate::str::contains("BREACH  cpu.some.rate = "))
    .stdout(predicate::str::contains("> 1.00% by "));
    psi(&[
        "check",
        idle,
        "--max",
        "cpu.some.rate=0%",
        "cpu.full.rate=0",
        "--interval",
        "1s",
    ])
    .assert()
    .code(0)
    .stdout(predicate::str::contains(
        "ok      cpu.some.rate = 0.00% <= 0.00%",
    ));
    // The kernel's averages rise within a few of its 2 s updates.
    let breached = eventually(Duration::from_secs(30), || {
        let a = psi(&["check", busy, "--max", "cpu.some.avg10=1"]).assert();
        (a.get_output().status.code() == Some(1)).then_some(())
    });
    assert!(
        breached.is_some(),
        "cpu.some.avg10 of the busy cgroup rises above 1"
    );
    psi(&["check", idle, "--max", "cpu.some.avg10=0"])
        .assert()
        .code(0);
    // Every rule on every target: one breach is enough.
    psi(&["check", idle, busy, "--max", "cpu.some.rate=1%"])
        .assert()
        .code(1);
    // A cgroup that does not exist is an error, not a pass.
    let gone = format!("{idle}-gone");
    psi(&["check", &gone, "--max", "cpu.some.avg10=90"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no such cgroup"));
}

#[test]
fn watch_prints_a_line_per_tick_off_a_terminal() {
    let Some(root) = cgroup::root() else { return };
    let pair = Pair::new(&root, "cli-watch");
    let (busy, idle) = pair.paths();
    let a = psi(&["watch", busy, idle, "-i", "500ms", "-n", "2"])
        .assert()
        .success();
    let text = stdout(&a);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "two ticks of two targets: {text}");
    let rate = |line: &str| -> f64 {
        let v = line
            .split(' ')
            .find_map(|kv| kv.strip_prefix("cpu.some.rate="))
            .expect("a cpu.some.rate field");
        v.parse().expect("a number")
    };
    for pair_of_lines in lines.chunks(2) {
        assert!(pair_of_lines[0].contains(&format!(" target={busy} ")));
        assert!(pair_of_lines[1].contains(&format!(" target={idle} ")));
        assert!(rate(pair_of_lines[0]) > 0.0, "{text}");
        assert_eq!(rate(pair_of_lines[1]), 0.0, "{text}");
        assert!(pair_of_lines[1].contains(" cpu.some.total=0 "), "{text}");
    }

    let a = psi(&["watch", busy, "-i", "500ms", "-n", "1", "--format", "json"])
        .assert()
        .success();
    let o = &json_lines(&a.get_output().stdout)[0];
    let some = &o["rates"]["cpu"]["some"];
    let (stall, elapsed) = (
        some["stall_us"].as_u64().expect("stall"),
        some["elapsed_us"].as_u64().expect("elapsed"),
    );
    assert!(stall > 0 && elapsed > 0, "{o}");
    // The percentage is the two integers' ratio, rounded to two decimals.
    let exact = stall as f64 * 100.0 / elapsed as f64;
    let shown = some["percent"].as_f64().expect("percent");
    assert!((shown - exact).abs() <= 0.005 + 1e-9, "{shown} vs {exact}");
}

#[test]
fn top_ranks_the_stressed_cgroup_first() {
    let Some(root) = cgroup::root() else { return };
    let pair = Pair::new(&root, "cli-top");
    let parent = pair.parent.path().to_str().expect("utf-8");
    let a = psi(&["top", parent, "-i", "1s", "-n", "1"])
        .assert()
        .success();
    let text = stdout(&a);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("# ") && lines[0].contains("2 cgroups"),
        "{text}"
    );
    assert!(
        lines[1]
            .trim_start()
            .starts_with("CPU%  MEM%   IO%  CPU AVG10  CGROUP"),
        "{text}"
    );
    assert!(
        lines[2].ends_with(&pair.name(&pair.busy)),
        "the busy cgroup first: {text}"
    );
    assert!(lines[3].ends_with(&pair.name(&pair.idle)), "{text}");
    assert!(
        lines[3].trim_start().starts_with("0.00  0.00  0.00"),
        "{text}"
    );
    // --limit, and another sort key: both at zero memory stall, the order is by name.
    let a = psi(&[
        "top", parent, "-i", "500ms", "-n", "1", "--limit", "1", "--sort", "memory",
    ])
    .assert()
    .success();
    assert_eq!(stdout(&a).lines().count(), 3);
}

#[test]
fn wait_fires_on_stress_and_times_out_on_an_empty_cgroup() {
    let Some(root) = cgroup::root() else { return };
    let pair = Pair::new(&root, "cli-wait");
    let (busy, idle) = pair.paths();
    psi(&[
        "wait",
        busy,
        "--trigger",
        "cpu some 500ms 2s",
        "--timeout",
        "30s",
    ])
    .assert()
    .code(0)
    .stdout(format!("fired: cpu some 500ms 2s on {busy}\n"));
    psi(&[
        "wait",
        idle,
        "--trigger",
        "cpu some 500ms 2s",
        "--timeout",
        "4s",
    ])
    .assert()
    .code(124)
    .stderr(predicate::str::contains("timed out after 4s"));
    if !psi_core::trigger::has_cap_sys_resource() {
        psi(&["wait", idle, "--trigger", "cpu some 150ms 1s"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "the window must be a multiple of 2s",
            ))
            .stderr(predicate::str::contains(
                "try --trigger 'cpu some 150ms 2s'",
            ));
    }
}

#[test]
fn read_and_check_by_pid_flag() {
    let Some(root) = cgroup::root() else { return };
    let mut cg = TestCgroup::new(&root, "cli-flag").expect("cgroup");
    let flag = format!("psi-cli-flag-{}", std::process::id());
    let container =
        pod::start_container(cg.path(), &flag, FlagLayout::File).expect("start the container");
    let pid = container.child.id();
    cg.burn(4)
        .expect("busy loops beside the container's process");
    let a = psi(&["read", "-f", "json", "--pid-flag", &flag])
        .assert()
        .success();
    let o = &json_lines(&a.get_output().stdout)[0];
    // Seen through the container's own cgroup2 mount, as the exporter does.
    assert_eq!(
        o["target"]["path"],
        format!("/proc/{pid}/root/sys/fs/cgroup")
    );
    assert_eq!(o["target"]["pids"], serde_json::json!([pid]));
    assert!(o["pressure"]["cpu"]["some"]["total"].is_u64(), "{o}");
    psi(&["check", "--pid-flag", &flag, "--max", "cpu.some.rate=1%"])
        .assert()
        .code(1);
    psi(&["read", "--pid-flag", "no-such-flag-anywhere"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no process has the pid_flag \"no-such-flag-anywhere\"",
        ));
}

#[test]
fn top_and_read_show_kubernetes_identity() {
    let Some(root) = cgroup::root() else { return };
    let parent = TestCgroup::new(&root, "cli-kube").expect("cgroup");
    let uid = "5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f";
    let cid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    // A kubelet-style tree (systemd driver). Locals drop in reverse order:
    // the container's loops and cgroup first, the slices above it after.
    let pods = TestCgroup::named(parent.path(), "kubepods.slice").expect("mkdir");
    let qos = TestCgroup::named(pods.path(), "kubepods-burstable.slice").expect("mkdir");
    let pod = TestCgroup::named(
        qos.path(),
        &format!("kubepods-burstable-pod{}.slice", uid.replace('-', "_")),
    )
    .expect("mkdir");
    let mut scope =
        TestCgroup::named(pod.path(), &format!("cri-containerd-{cid}.scope")).expect("mkdir");
    scope.burn(4).expect("busy loops");
    let container = scope.path();
    let a = psi(&["read", "-f", "json", container.to_str().expect("utf-8")])
        .assert()
        .success();
    let o = &json_lines(&a.get_output().stdout)[0];
    assert_eq!(
        o["target"]["kubernetes"],
        serde_json::json!({"qos": "burstable", "pod_uid": uid, "container_id": cid})
    );
    let top = |logs: &Path| {
        let a = psi(&[
            "top",
            parent.path().to_str().expect("utf-8"),
            "-i",
            "1s",
            "-n",
            "1",
            "--pod-logs-dir",
            logs.join("pods").to_str().expect("utf-8"),
            "--container-logs-dir",
            logs.join("containers").to_str().expect("utf-8"),
        ])
        .assert()
        .success();
        stdout(&a)
    };
    // Without the kubelet's log directories: ids.
    let text = top(Path::new("/nonexistent"));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].contains("QOS        POD") && lines[1].contains("CONTAINER"),
        "{text}"
    );
    // The container and the slices above it stall alike; the container is
    // among the first rows, with its identity.
    let row = lines
        .iter()
        .find(|l| l.ends_with(".scope"))
        .expect("the container's row");
    assert!(
        row.contains(&format!("burstable  {uid}  0123456789ab  kubepods.slice/")),
        "{text}"
    );
    assert!(!row.trim_start().starts_with("0.00 "), "it stalls: {text}");
    // With them: names, through the same library code node mode uses.
    let logs = psi_testkit::files::dir(&[(&format!("pods/shop_web_{uid}/nginx/0.log"), "")]);
    std::fs::create_dir(logs.path().join("containers")).expect("mkdir");
    std::os::unix::fs::symlink(
        "/nonexistent",
        logs.path()
            .join(format!("containers/web_shop_nginx-{cid}.log")),
    )
    .expect("symlink");
    let text = top(logs.path());
    let row = text
        .lines()
        .find(|l| l.ends_with(".scope"))
        .expect("the container's row");
    assert!(
        row.contains("burstable  shop/web  nginx      kubepods.slice/"),
        "{text}"
    );
    let pod_row = text
        .lines()
        .find(|l| l.ends_with(".slice") && l.contains("pod5f3c"))
        .expect("the pod's row");
    assert!(pod_row.contains("shop/web"), "{text}");
}

#[test]
fn a_cgroup_with_psi_switched_off_says_how_to_switch_it_on() {
    let Some(root) = cgroup::root() else { return };
    let cg = TestCgroup::new(&root, "cli-off").expect("cgroup");
    let knob = cg.path().join("cgroup.pressure");
    if !knob.exists() {
        psi_testkit::ci::missing("no cgroup.pressure (Linux 6.1 or later)");
        return;
    }
    std::fs::write(&knob, "0").expect("switch PSI off");
    let path = cg.path().to_str().expect("utf-8");
    psi(&["read", path])
        .assert()
        .code(2)
        .stdout(predicate::str::contains(
            "cpu       -     unavailable (disabled): ",
        ))
        .stderr(predicate::str::contains(
            "cgroup.pressure is 0; write 1 to it to enable it",
        ));
    psi(&["check", path, "--max", "cpu.some.avg10=50"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unavailable (disabled)"));
    std::fs::write(&knob, "1").expect("switch PSI on");
    psi(&["read", path]).assert().success();
}

#[test]
fn wait_reports_a_removed_cgroup() {
    let Some(root) = cgroup::root() else { return };
    let cg = TestCgroup::new(&root, "cli-gone").expect("cgroup");
    let child = std::process::Command::new(support::PSI)
        .args([
            "wait",
            cg.path().to_str().expect("utf-8"),
            "-t",
            "cpu some 500ms 2s",
            "--timeout",
            "60s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psi wait");
    let mut waiting = Process { child };
    // Registered once the process holds the pressure file open.
    let fd_dir = format!("/proc/{}/fd", waiting.child.id());
    let armed = eventually(Duration::from_secs(10), || {
        std::fs::read_dir(&fd_dir).ok()?.flatten().find_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            target.ends_with("cpu.pressure").then_some(())
        })
    });
    assert!(armed.is_some(), "psi wait opened cpu.pressure");
    cg.remove().expect("rmdir the cgroup");
    let status = waiting
        .wait_timeout(Duration::from_secs(30))
        .expect("wait")
        .expect("psi wait exits once the cgroup is gone");
    assert_eq!(status.code(), Some(2));
    let mut stderr = String::new();
    std::io::Read::read_to_string(waiting.child.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(stderr.contains("the cgroup is gone"), "{stderr}");
}
