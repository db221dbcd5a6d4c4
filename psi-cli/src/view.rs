//! What `read` and `watch` print about a target: a title, a table, a JSON
//! object, a logfmt line.

use std::fmt::Write as _;

use psi_core::json::{self, Object};
use psi_core::read::{ReadError, Reading};
use psi_core::report::Chain;
use psi_core::target::Target;
use psi_core::{Line, Record, Resource};

use crate::ui::clock::Utc;
use crate::ui::style::{Align, Cell, Style, Table, Text};

/// The target as people read it: the directory, and where it came from.
pub fn title(target: &Target) -> String {
    let mut t = target.dir.display().to_string();
    if target.kind.is_whole_system() {
        t = format!("system ({t})");
    }
    if !target.pids.is_empty() {
        let pids: Vec<String> = target.pids.iter().map(u32::to_string).collect();
        t.push_str(&format!("  pid {}", pids.join(",")));
    }
    if let Some(k) = &target.kube {
        t.push_str(&format!("  {}", k.describe()));
    }
    t
}

/// `total` microseconds as seconds with six decimals, exactly: `367.315389`.
pub fn seconds6(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// Why a line a file lacks is not shown as numbers, or `None` to leave it out.
fn missing_line(target: &Target, resource: Resource, line: Line) -> Option<&'static str> {
    match (resource, line) {
        (Resource::Irq, Line::Some) => None,
        _ if !target.kind.measures(resource, line) => {
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
pub fn table(target: &Target, now: &Reading, before: Option<&Reading>) -> Vec<Text> {
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
    for (resource, result) in now.results() {
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
                row.push(match now.rate_since(before, resource, line) {
                    Some(rate) => {
                        Cell::new(rate.to_string(), Style::for_hundredths(rate.hundredths()))
                    }
                    None => Cell::new("-", Style::Dim),
                });
            }
            t.row(row);
        }
    }
    let mut lines = vec![Text::new(title(target), Style::Bold)];
    lines.extend(t.lines());
    lines
}

/// `unavailable (unsupported): /proc/pressure/irq does not exist: ...`.
pub fn unavailable(e: &ReadError) -> String {
    format!("unavailable ({}): {}", e.reason(), Chain(e))
}

/// Writes the JSON envelope of one target's reading ([`psi_core::json`]),
/// with `time` first, and a newline. With `before`, adds `rates`: the stall
/// since then.
pub fn json_object(
    out: &mut Vec<u8>,
    target: &Target,
    now: &Reading,
    before: Option<&Reading>,
    time: Utc,
) {
    let mut obj = Object::new(out);
    obj.string("time", Some(&time.rfc3339()));
    json::target(&mut obj, Some(target));
    json::reading(&mut obj, Some(now));
    if let Some(before) = before {
        let mut rates = Object::new(obj.key("rates"));
        for (resource, result) in now.results() {
            let out = rates.key(resource.name());
            if result.is_err() {
                out.extend_from_slice(b"null");
                continue;
            }
            let mut lines = Object::new(out);
            for line in Line::ALL {
                let out = lines.key(line.name());
                match now.rate_since(before, resource, line) {
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
            lines.end();
        }
        rates.end();
    }
    obj.end();
    out.push(b'\n');
}

/// One logfmt line: `time=… target=… cpu.some.avg10=1.00 … cpu.some.rate=2.50 … irq=unavailable irq.reason=unsupported`.
pub fn logfmt(target: &Target, now: &Reading, before: Option<&Reading>, time: Utc) -> String {
    let mut s = format!(
        "time={} target={}",
        time.rfc3339(),
        quote(&target.dir.to_string_lossy())
    );
    for (resource, result) in now.results() {
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
                match now.rate_since(before, resource, line) {
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
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Env;

    fn copy_of_a_cgroup() -> (tempfile::TempDir, Target) {
        let dir = psi_testkit::files::dir(&[
            (
                "cpu.pressure",
                "some avg10=48.17 avg60=28.99 avg300=21.46 total=367315389\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
            ),
            (
                "memory.pressure",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=12\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=3\n",
            ),
        ]);
        let env = Env::new("/proc".into(), Some("/nonexistent".into()));
        let target = crate::target::resolve_path(&env, dir.path()).expect("target");
        (dir, target)
    }

    #[test]
    fn table_of_a_saved_copy() {
        let (dir, target) = copy_of_a_cgroup();
        let reading = target.pressure_set().read_all();
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
        let (_dir, target) = copy_of_a_cgroup();
        let reading = target.pressure_set().read_all();
        let mut out = Vec::new();
        json_object(&mut out, &target, &reading, Some(&reading), Utc::now());
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.ends_with("}}\n"), "{text}");
        assert!(text.contains(r#""pressure":{"cpu":{"some":{"avg10":48.17,"avg60":28.99,"avg300":21.46,"total":367315389},"#), "{text}");
        assert!(text.contains(r#""io":null,"irq":null}"#), "{text}");
        // The same reading twice: no time passed between the two, so no rate.
        assert!(
            text.contains(r#""rates":{"cpu":{"some":null,"full":null}"#),
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
        assert_eq!(quote("a\rb\tc\u{1}"), "\"a\\rb\\tc\\u{0001}\"");
    }
}
