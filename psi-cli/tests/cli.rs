//! The command line without a live kernel: help, generated files, usage
//! errors, and copies of pressure files saved for a post-mortem.

mod support;

use std::path::Path;

use predicates::prelude::*;
use psi_testkit::http::promtool_check;
use support::psi;

const CPU: &str = "some avg10=48.17 avg60=28.99 avg300=21.46 total=367315389\n\
                   full avg10=0.50 avg60=0.25 avg300=0.00 total=4000000\n";
const MEMORY: &str = "some avg10=0.00 avg60=0.00 avg300=0.00 total=12\n\
                      full avg10=0.00 avg60=0.00 avg300=0.00 total=3\n";

/// A cgroup's pressure files copied for a post-mortem (no io, no irq).
fn saved_cgroup() -> tempfile::TempDir {
    psi_testkit::files::dir(&[("cpu.pressure", CPU), ("memory.pressure", MEMORY)])
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn every_command_has_help_with_examples() {
    for cmd in [
        "read",
        "watch",
        "top",
        "check",
        "wait",
        "completions",
        "man",
    ] {
        psi(&[cmd, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Examples:"));
    }
    psi(&["--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Exit codes: 0 success; 1 a check rule is breached",
        ));
}

#[test]
fn completions_and_man_pages_come_from_the_clap_definition() {
    psi(&["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("_psi()").and(predicate::str::contains("--pid-flag")));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        psi(&["completions", shell]).assert().success();
    }
    psi(&["man"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(".ie").or(predicate::str::contains(".TH psi 1")));
    let dir = tempfile::tempdir().expect("tempdir");
    psi(&["man", "--dir", path(dir.path())]).assert().success();
    for page in [
        "psi.1",
        "psi-read.1",
        "psi-watch.1",
        "psi-top.1",
        "psi-check.1",
        "psi-wait.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).expect(page);
        assert!(
            text.contains(".SH EXAMPLES") || text.contains("Examples:"),
            "{page}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    psi(&["read", "--format", "xml"]).assert().code(2);
    psi(&["check"]).assert().code(2);
    psi(&["check", "--max", "cpu.some.avg10"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("such as cpu.some.avg10=40"));
    psi(&["check", "--max", "cpu.some.avg10=40", "./x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("a TARGET goes before --max"));
    psi(&["wait", "--trigger", "cpu some 3s 2s"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("at most the window"));
    psi(&["watch", "--interval", "0s"]).assert().code(2);
}

#[test]
fn read_a_saved_copy_as_a_table() {
    let dir = saved_cgroup();
    let out = psi(&["read", path(dir.path())]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], path(dir.path()));
    assert_eq!(lines[1], "RESOURCE  LINE  AVG10  AVG60  AVG300    TOTAL(s)");
    assert_eq!(lines[2], "cpu       some  48.17  28.99   21.46  367.315389");
    assert_eq!(lines[3], "cpu       full   0.50   0.25    0.00    4.000000");
    assert_eq!(lines[4], "memory    some   0.00   0.00    0.00    0.000012");
    assert!(
        lines[6].starts_with("io        -     unavailable (unsupported): ")
            && lines[6]
                .ends_with("io.pressure does not exist: this kernel does not report that pressure"),
        "{}",
        lines[6]
    );
    assert!(!text.contains('\x1b'), "no colour through a pipe");
}

#[test]
fn colour_only_when_asked_through_a_pipe() {
    let dir = saved_cgroup();
    let out = psi(&["read", "--color", "always", path(dir.path())])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("\x1b[1;31m48.17\x1b[0m"), "{text}");
    let out = psi(&["read", "--color", "auto", path(dir.path())])
        .env("NO_COLOR", "1")
        .assert()
        .success();
    assert!(!out.get_output().stdout.contains(&0x1b));
}

#[test]
fn read_a_saved_copy_as_json() {
    let dir = saved_cgroup();
    let other = saved_cgroup();
    // The same directory twice is one target.
    let out = psi(&[
        "read",
        "--format",
        "json",
        path(dir.path()),
        path(other.path()),
        &format!("{}/.", path(dir.path())),
    ])
    .assert()
    .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 2, "one object per target");
    let o = &objects[0];
    assert!(o["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(o["target"]["kind"], "copy");
    assert_eq!(o["target"]["path"], path(dir.path()));
    assert_eq!(objects[1]["target"]["path"], path(other.path()));
    assert_eq!(o["target"]["pids"], serde_json::json!([]));
    assert_eq!(o["target"]["kubernetes"], serde_json::Value::Null);
    let cpu = &o["pressure"]["cpu"];
    assert_eq!(cpu["some"]["avg10"].as_f64(), Some(48.17));
    assert_eq!(cpu["some"]["total"].as_u64(), Some(367_315_389));
    assert_eq!(cpu["full"]["avg60"].as_f64(), Some(0.25));
    assert_eq!(o["pressure"]["io"], serde_json::Value::Null);
    assert_eq!(o["errors"]["io"]["reason"], "unsupported");
    assert!(
        o["errors"]["io"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("io.pressure"))
    );
    assert!(o["errors"].get("cpu").is_none());
    assert!(o.get("rates").is_none(), "one read has no rates");
}

#[test]
fn read_a_saved_copy_as_prometheus_text() {
    let dir = saved_cgroup();
    let out = psi(&["read", "--format", "prometheus", path(dir.path())])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("psi_cpu_waiting_seconds_total 367.315389\n"),
        "{text}"
    );
    assert!(
        text.contains("psi_cpu_waiting_ratio{window=\"10s\"} 0.4817\n"),
        "{text}"
    );
    assert!(text.contains(
        "cgroup_monitor_sc_monitored_cpu_psi{type=\"some\",window=\"total\"} 367315389\n"
    ));
    assert!(text.contains("psi_pressure_available{resource=\"io\"} 0\n"));
    assert!(
        !text.contains("psi_io_"),
        "no fake zero for an unreadable resource"
    );
    promtool_check(&text);
    // Two targets: a cgroup label (here the directory, which is under no
    // cgroup mount) tells them apart; the same directory named twice is
    // one target, not a duplicate series.
    let other = saved_cgroup();
    let out = psi(&[
        "read",
        "-f",
        "prometheus",
        path(dir.path()),
        path(other.path()),
        path(dir.path()),
    ])
    .assert()
    .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for d in [&dir, &other] {
        let series = format!(
            "psi_cpu_waiting_seconds_total{{cgroup=\"{}\"}} 367.315389\n",
            path(d.path())
        );
        assert_eq!(text.matches(&series).count(), 1, "{series} once in {text}");
    }
    promtool_check(&text);
}

#[test]
fn a_copy_of_proc_pressure_reads_as_the_system() {
    let dir = psi_testkit::files::dir(&[(
        "cpu",
        "some avg10=1.00 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    )]);
    psi(&["read", path(dir.path())])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "cpu       full  not measured system-wide",
        ));
}

#[test]
fn check_exit_codes_on_a_saved_copy() {
    let dir = saved_cgroup();
    let d = path(dir.path());
    psi(&["check", d, "--max", "cpu.some.avg10=48.17"])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(
            "ok      cpu.some.avg10 = 48.17 <= 48.17",
        ));
    psi(&[
        "check",
        d,
        "--max",
        "cpu.some.avg10=40",
        "memory.some.avg60=1",
    ])
    .assert()
    .code(1)
    .stdout(predicate::str::contains(
        "BREACH  cpu.some.avg10 = 48.17 > 40.00 by 8.17",
    ))
    .stdout(predicate::str::contains(
        "ok      memory.some.avg60 = 0.00 <= 1.00",
    ));
    psi(&["check", d, "--max", "cpu.full.total=3s"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("cpu.full.total = 4s > 3s by 1s"));
    // The copy does not change: the rate over the interval is exactly zero.
    psi(&["check", d, "--max", "cpu.some.rate=0%", "-i", "100ms"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("cpu.some.rate = 0.00% <= 0.00%"));
    psi(&["check", d, "-q", "--max", "cpu.some.avg10=1"])
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty());
    psi(&["check", d, "--max", "io.some.avg10=1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot check io.some.avg10"))
        .stderr(predicate::str::contains("unavailable (unsupported)"));
}

#[test]
fn errors_say_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    psi(&["read", path(&dir.path().join("gone"))])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("psi: no such cgroup: "));
    psi(&["read", path(dir.path())])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "holds no pressure files: it is not a cgroup v2 directory",
        ));
    psi(&["read", "--pid", "4294967295"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no such process: pid 4294967295"));
    // A proc root without a cgroup2 line in mountinfo.
    let proc = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(proc.path().join("self")).expect("mkdir");
    std::fs::write(proc.path().join("self/mountinfo"), "").expect("write");
    psi(&["read", "--proc-root", path(proc.path()), "system.slice"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no cgroup v2 mount"))
        .stderr(predicate::str::contains("--cgroup-root"));
    // PSI switched off in a copy: cgroup.pressure is 0 and the files are hidden.
    let off = psi_testkit::files::dir(&[("cgroup.pressure", "0\n"), ("cgroup.procs", "")]);
    psi(&["read", path(off.path())])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("unavailable (disabled)"))
        .stderr(predicate::str::contains("write 1 to it to enable it"));
}

#[test]
fn read_names_every_file_it_could_not_read_and_exits_2() {
    // A malformed cpu.pressure beside a good memory.pressure: every format
    // prints what it could, names the bad file on stderr, and exits 2. The
    // missing io and irq files are the kernel's to have, not a failure.
    let dir = saved_cgroup();
    let bad = dir.path().join("cpu.pressure");
    std::fs::write(&bad, "some avg10=x\n").expect("write");
    for format in ["table", "json", "prometheus"] {
        let out = psi(&["read", "--format", format, path(dir.path())])
            .assert()
            .code(2);
        let output = out.get_output();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("failed to parse {}", bad.display())),
            "{format}: {stderr}"
        );
        assert!(stderr.contains("(parse)"), "{format}: {stderr}");
        assert!(!stderr.contains("io.pressure"), "{format}: {stderr}");
        assert!(stdout.contains("memory"), "{format}: {stdout}");
        if format == "prometheus" {
            assert!(!stdout.contains("psi_cpu_"), "{stdout}");
            assert!(stdout.contains("psi_pressure_available{resource=\"cpu\"} 0\n"));
        }
    }
}

#[test]
fn two_copies_of_proc_pressure_are_two_labelled_targets() {
    // Neither is under the cgroup mount: each is labelled with its
    // directory, so no series repeats.
    let text = "some avg10=1.00 avg60=0.00 avg300=0.00 total=5\n";
    let a = psi_testkit::files::dir(&[("cpu", text)]);
    let b = psi_testkit::files::dir(&[("cpu", text)]);
    let out = psi(&["read", "-f", "prometheus", path(a.path()), path(b.path())])
        .assert()
        .success();
    let body = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let mut lines: Vec<&str> = body.lines().filter(|l| !l.starts_with('#')).collect();
    let all = lines.len();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), all, "no duplicate series:\n{body}");
    promtool_check(&body);
}

#[test]
fn a_full_stdout_and_stderr_are_an_error_exit_not_a_panic() {
    // /dev/full takes nothing: the table cannot be written, nor the error.
    let dir = saved_cgroup();
    for target in [path(dir.path()), "/nonexistent/psi-test"] {
        let full = || {
            std::fs::File::options()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full")
        };
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_psi"))
            .args(["read", target])
            .stdout(full())
            .stderr(full())
            .status()
            .expect("run psi");
        assert_eq!(status.code(), Some(2), "{target}: {status}");
    }
}
