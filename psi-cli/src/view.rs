//! What `read` and `watch` print about a target: a table, a JSON object, a
//! logfmt line.

use std::fmt::Write as _;

use psi_core::read::ReadError;
use psi_core::{Line, Record, Resource, json};

use crate::clock::Utc;
use crate::sample::{Rate, Reading, seconds6};
use crate::style::{self, Align, Cell, Style, Table};
use crate::target::Target;

/// The error and its causes on one line: `failed to read X: permission denied`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

/// Why a line a file lacks is not shown as numbers, or `None` to leave it out.
fn missing_line(target: &Target, resource: Resource, line: Line) -> Option<&'static str> {
    match (resource, line) {
        (Resource::Irq, Line::Some) => None,
        (Resource::Cpu, Line::Full) if target.whole_system => {
            Some("not measured system-wide (the kernel prints zeros)")
        }
        _ => Some("not reported by this kernel"),
    }
}

fn avg_cell(p: psi_core::Percent) -> Cell {
    Cell::new(
        p.to_string(),
        Style::for_hundredths(u64::from(p.hundredths())),
    )
}

/// The title line and the table of one reading; with `before`, a RATE column
/// of the stall rate since then.
pub fn table(target: &Target, now: &Reading, before: Option<&Reading>) -> Vec<style::Line> {
    let mut headers = vec![
        ("RESOURCE", Align::Left),
        ("LINE", Align::Left),
        ("AVG10", Align::Right),
        ("AVG60", Align::Right),
        ("AVG300", Align::Right),
        ("TOTAL(s)", Align::Right),
    ];
    let with_rate = before.is_some();
    if with_rate {
        headers.push(("RATE", Align::Right));
    }
    let mut t = Table::new(&headers);
    for resource in Resource::ALL {
        let Some(result) = &now.results[resource.index()] else {
            continue;
        };
        let name = Cell::new(resource.name(), Style::Plain);
        let p = match result {
            Ok(p) => p,
            Err(e) => {
                t.row(vec![
                    name,
                    Cell::new("-", Style::Dim),
                    Cell::span(unavailable(e), Style::Warn),
                ]);
                continue;
            }
        };
        for line in Line::ALL {
            let Some(r) = p.get(line) else {
                if let Some(why) = missing_line(target, resource, line) {
                    t.row(vec![
                        name.clone(),
                        Cell::new(line.name(), Style::Plain),
                        Cell::span(why, Style::Dim),
                    ]);
                }
                continue;
            };
            let mut row = vec![
                name.clone(),
                Cell::new(line.name(), Style::Plain),
                avg_cell(r.avg10),
                avg_cell(r.avg60),
                avg_cell(r.avg300),
                Cell::new(seconds6(r.total), Style::Plain),
            ];
            if let Some(before) = before {
                row.push(match Rate::between(before, now, resource, line) {
                    Some(rate) => {
                        Cell::new(rate.to_string(), Style::for_hundredths(rate.hundredths()))
                    }
                    None => Cell::new("-", Style::Dim),
                });
            }
            t.row(row);
        }
    }
    let mut lines = vec![style::Line::new(target.title(), Style::Bold)];
    lines.extend(t.lines());
    lines
}

/// `unavailable (unsupported): /proc/pressure/irq does not exist: ...`.
pub fn unavailable(e: &ReadError) -> String {
    format!("unavailable ({}): {}", e.reason(), chain(e))
}

/// Writes the JSON object of one target's reading, and a newline. With
/// `before`, adds `rates`: the stall since then.
pub fn json_object(
    out: &mut Vec<u8>,
    target: &Target,
    now: &Reading,
    before: Option<&Reading>,
    time: Utc,
) {
    out.extend_from_slice(b"{\"time\":");
    json::string(out, &time.rfc3339());
    out.extend_from_slice(b",\"target\":");
    json_target(out, target);
    out.extend_from_slice(b",\"pressure\":{");
    let mut errors = Vec::new();
    let mut first = true;
    for resource in Resource::ALL {
        let Some(result) = &now.results[resource.index()] else {
            continue;
        };
        comma(out, &mut first);
        json::string(out, resource.name());
        out.push(b':');
        match result {
            Ok(p) => json::pressure(out, p),
            Err(e) => {
                out.extend_from_slice(b"null");
                errors.push((resource, e));
            }
        }
    }
    out.push(b'}');
    if let Some(before) = before {
        out.extend_from_slice(b",\"rates\":{");
        let mut first = true;
        for resource in Resource::ALL {
            if now.results[resource.index()].is_none() {
                continue;
            }
            comma(out, &mut first);
            json::string(out, resource.name());
            out.push(b':');
            if now.pressure(resource).is_none() {
                out.extend_from_slice(b"null");
                continue;
            }
            out.push(b'{');
            for (i, line) in Line::ALL.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::string(out, line.name());
                out.push(b':');
                match Rate::between(before, now, resource, line) {
                    Some(rate) => {
                        let _ = std::io::Write::write_fmt(
                            out,
                            format_args!(
                                "{{\"stall_us\":{},\"elapsed_us\":{},\"percent\":{}}}",
                                rate.stall_us, rate.elapsed_us, rate
                            ),
                        );
                    }
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.push(b'}');
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"errors\":{");
    for (i, (resource, e)) in errors.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::string(out, resource.name());
        out.extend_from_slice(b":{\"reason\":");
        json::string(out, e.reason());
        out.extend_from_slice(b",\"message\":");
        json::string(out, &chain(*e));
        out.push(b'}');
    }
    out.extend_from_slice(b"}}\n");
}

fn comma(out: &mut Vec<u8>, first: &mut bool) {
    if !*first {
        out.push(b',');
    }
    *first = false;
}

fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json::string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// `{"kind":…,"path":…,"cgroup":…,"pids":[…],"kubernetes":…}`.
pub fn json_target(out: &mut Vec<u8>, target: &Target) {
    out.extend_from_slice(b"{\"kind\":");
    json::string(out, target.kind_name());
    out.extend_from_slice(b",\"path\":");
    json::string(out, &target.path.to_string_lossy());
    out.extend_from_slice(b",\"cgroup\":");
    opt_string(out, target.cgroup.as_deref());
    out.extend_from_slice(b",\"pids\":[");
    for (i, pid) in target.pids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(pid.to_string().as_bytes());
    }
    out.extend_from_slice(b"],\"kubernetes\":");
    match &target.kube {
        None => out.extend_from_slice(b"null"),
        Some(k) => {
            out.extend_from_slice(b"{\"qos\":");
            opt_string(out, k.qos.map(|q| q.name()));
            out.extend_from_slice(b",\"pod_uid\":");
            opt_string(out, k.pod_uid.as_deref());
            out.extend_from_slice(b",\"container_id\":");
            opt_string(out, k.container_id.as_deref());
            out.push(b'}');
        }
    }
    out.push(b'}');
}

/// One logfmt line: `time=… target=… cpu.some.avg10=1.00 … cpu.some.rate=2.50 … irq=unavailable irq.reason=unsupported`.
pub fn logfmt(target: &Target, now: &Reading, before: Option<&Reading>, time: Utc) -> String {
    let mut s = format!(
        "time={} target={}",
        time.rfc3339(),
        quote(&target.path.to_string_lossy())
    );
    for resource in Resource::ALL {
        let Some(result) = &now.results[resource.index()] else {
            continue;
        };
        let p = match result {
            Ok(p) => p,
            Err(e) => {
                let _ = write!(
                    s,
                    " {resource}=unavailable {resource}.reason={}",
                    e.reason()
                );
                continue;
            }
        };
        for line in Line::ALL {
            let Some(Record {
                avg10,
                avg60,
                avg300,
                total,
            }) = p.get(line)
            else {
                continue;
            };
            let _ = write!(
                s,
                " {resource}.{line}.avg10={avg10} {resource}.{line}.avg60={avg60} \
                 {resource}.{line}.avg300={avg300} {resource}.{line}.total={total}"
            );
            if let Some(before) = before {
                match Rate::between(before, now, resource, line) {
                    Some(rate) => {
                        let _ = write!(s, " {resource}.{line}.rate={rate}");
                    }
                    None => {
                        let _ = write!(s, " {resource}.{line}.rate=");
                    }
                }
            }
        }
    }
    s
}

/// A logfmt value, quoted when it must be.
fn quote(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c == ' ' || c == '"' || c == '=' || c.is_control()) {
        return v.to_owned();
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Files;
    use crate::target::Env;

    fn copy_of_a_cgroup() -> (tempfile::TempDir, Target) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("cpu.pressure"),
            "some avg10=48.17 avg60=28.99 avg300=21.46 total=367315389\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("memory.pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=12\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=3\n",
        )
        .expect("write");
        let env = Env::new("/proc".into(), Some("/nonexistent".into()));
        let target = crate::target::resolve_path(&env, dir.path()).expect("target");
        (dir, target)
    }

    #[test]
    fn table_of_a_saved_copy() {
        let (dir, target) = copy_of_a_cgroup();
        let reading = Files::new(dir.path(), false, false).read();
        let lines: Vec<String> = table(&target, &reading, None)
            .iter()
            .map(|l| l.render(false, None))
            .collect();
        assert_eq!(lines[0], dir.path().display().to_string());
        assert_eq!(lines[1], "RESOURCE  LINE  AVG10  AVG60  AVG300    TOTAL(s)");
        assert_eq!(lines[2], "cpu       some  48.17  28.99   21.46  367.315389");
        assert_eq!(lines[4], "memory    some   0.00   0.00    0.00    0.000012");
        assert!(
            lines[6].starts_with("io        -     unavailable (unsupported): "),
            "{}",
            lines[6]
        );
        assert!(
            lines[7].starts_with("irq       -     unavailable (unsupported): "),
            "{}",
            lines[7]
        );
        assert_eq!(lines.len(), 8);
    }

    #[test]
    fn json_of_a_saved_copy() {
        let (dir, target) = copy_of_a_cgroup();
        let reading = Files::new(dir.path(), false, false).read();
        let mut out = Vec::new();
        json_object(&mut out, &target, &reading, Some(&reading), Utc::now());
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.ends_with("}}\n"), "{text}");
        assert!(text.contains(r#""pressure":{"cpu":{"some":{"avg10":48.17,"avg60":28.99,"avg300":21.46,"total":367315389},"#), "{text}");
        assert!(text.contains(r#""io":null,"irq":null}"#), "{text}");
        assert!(
            text.contains(r#""rates":{"cpu":{"some":null,"full":null}"#)
                || text.contains(r#""rates":{"cpu":{"some":{"stall_us":0"#),
            "{text}"
        );
        assert!(
            text.contains(r#""errors":{"io":{"reason":"unsupported","message":"#),
            "{text}"
        );
    }

    #[test]
    fn logfmt_quotes_what_it_must() {
        assert_eq!(quote("/sys/fs/cgroup/a"), "/sys/fs/cgroup/a");
        assert_eq!(quote("/a b"), "\"/a b\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }
}
