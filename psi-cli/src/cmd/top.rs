//! `psi top`: the cgroups under a root, ranked by stall rate over the interval.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::bail;
use psi_core::cgroup::kube::Identity;
use psi_core::cgroup::logs::Names;
use psi_core::cgroup::{self, Kind};
use psi_core::duration::Human;
use psi_core::rate::Rate;
use psi_core::read::{PressureSet, Reading};
use psi_core::{Line, Resource};

use crate::cli::{LineChoice, SortBy, TopArgs};
use crate::exit::Exit;
use crate::target::{self, Env};
use crate::ui::clock::Utc;
use crate::ui::style::{Align, Cell, Style, Table, Text};
use crate::ui::term::{self, Screen, Ticker, Waiter, Wake};

/// The resources `top` reads.
const RESOURCES: [Resource; 3] = [Resource::Cpu, Resource::Memory, Resource::Io];

/// Rows shown when not on a terminal and no --limit is given.
const BATCH_LIMIT: usize = 20;

/// One cgroup at one tick.
#[derive(Debug)]
struct Row {
    /// Its directory.
    path: PathBuf,
    /// Its path under the root, for display.
    name: String,
    kube: Option<Identity>,
    /// `namespace/pod` and the container's name, from the log directories.
    label: Option<(String, Option<String>)>,
    reading: Reading,
    /// Cpu, memory, io rates of the chosen line since the previous tick.
    rates: [Option<Rate>; 3],
}

/// Runs `psi top`.
pub fn run(args: &TopArgs, env: &Env, color: bool) -> anyhow::Result<Exit> {
    let root = match &args.root {
        Some(p) => {
            let t = target::resolve_path(env, p)?;
            if t.kind == Kind::System {
                bail!(
                    "{} is not a cgroup directory: psi top ranks the cgroups under a cgroup",
                    t.dir.display()
                );
            }
            t.dir
        }
        None => env.cgroup_mount()?,
    };
    let live = std::io::stdout().is_terminal();
    let mut events = Waiter::new(live)?;
    let mut sort = args.sort;
    let line = args.line.line();
    let names = Names::read(&args.pod_logs_dir, &args.container_logs_dir);
    let mut rows = sample(&root, &[], line, &names);
    // The first sample has no rates: nothing is ranked until one interval passed.
    let mut measured = false;
    let mut screen = if live { Some(Screen::enter()?) } else { None };
    let started = Instant::now();
    let draw = |screen: &mut Screen, rows: Option<&[Row]>, sort: SortBy| {
        screen.draw(&frame(args, &root, rows, sort, color, started))
    };
    if let Some(s) = &mut screen {
        draw(s, None, sort)?;
    }
    let mut ticker = Ticker::new(args.interval);
    let mut ticks = 0;
    loop {
        match ticker.wait(&mut events)? {
            Wake::Tick => {}
            Wake::Key(b'q' | b'Q') => return Ok(Exit::Success),
            Wake::Interrupt => return Ok(Exit::Interrupted),
            Wake::Key(key) => {
                sort = match key {
                    b'c' | b'C' => SortBy::Cpu,
                    b'm' | b'M' => SortBy::Memory,
                    b'i' | b'I' => SortBy::Io,
                    _ => sort,
                };
                rank(&mut rows, sort, line);
                if let Some(s) = &mut screen {
                    draw(s, measured.then_some(rows.as_slice()), sort)?;
                }
                continue;
            }
            Wake::Resize => {
                if let Some(s) = &mut screen {
                    draw(s, measured.then_some(rows.as_slice()), sort)?;
                }
                continue;
            }
        }
        // The names change as pods come and go: read again at each tick.
        let names = Names::read(&args.pod_logs_dir, &args.container_logs_dir);
        rows = sample(&root, &rows, line, &names);
        measured = true;
        rank(&mut rows, sort, line);
        match &mut screen {
            Some(s) => draw(s, Some(&rows), sort)?,
            None => {
                let limit = args.limit.unwrap_or(BATCH_LIMIT);
                let mut out = String::new();
                if ticks > 0 {
                    out.push('\n');
                }
                for l in batch(args, &root, &rows, sort, limit) {
                    out.push_str(&l.render(color, None));
                    out.push('\n');
                }
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(out.as_bytes())?;
                stdout.flush()?;
            }
        }
        ticks += 1;
        if args.count.is_some_and(|n| ticks >= n) {
            return Ok(Exit::Success);
        }
    }
}

/// Every cgroup under `root` (not `root` itself), read once, with rates
/// against `prev` where the same directory was read before, and pod and
/// container names from the kubelet's log directories where they are.
fn sample(root: &Path, prev: &[Row], line: Line, names: &Names) -> Vec<Row> {
    let prev: HashMap<&Path, &Row> = prev.iter().map(|r| (r.path.as_path(), r)).collect();
    let mut rows = Vec::new();
    for entry in cgroup::walk(root, usize::MAX).into_iter().skip(1) {
        let path = entry.path;
        // Files are opened, read and closed at once: a node has thousands of
        // cgroups, more than the open-file limit if they were all kept open.
        let reading = PressureSet::new(&path, Kind::Cgroup).read_only(&RESOURCES);
        let before = prev.get(path.as_path());
        let rates = RESOURCES.map(|r| before.and_then(|b| reading.rate_since(&b.reading, r, line)));
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let name = rel.display().to_string();
        let kube = Identity::from_path(&path);
        let label = kube.as_ref().and_then(|k| pod_and_container(k, names));
        rows.push(Row {
            path,
            name,
            kube,
            label,
            reading,
            rates,
        });
    }
    rows
}

/// Exact order of two rates, highest first; unknown rates last.
fn by_rate(a: Option<Rate>, b: Option<Rate>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => b.compare(&a),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Highest rate of `sort` first; then the kernel's avg10 of the shown
/// `line`; then by name.
fn rank(rows: &mut [Row], sort: SortBy, line: Line) {
    let i = RESOURCES
        .iter()
        .position(|&r| r == sort.resource())
        .unwrap_or(0);
    let res = sort.resource();
    rows.sort_by(|a, b| {
        by_rate(a.rates[i], b.rates[i])
            .then_with(|| {
                let avg = |r: &Row| r.reading.record(res, line).map(|s| s.avg10);
                avg(b).cmp(&avg(a))
            })
            .then_with(|| a.name.cmp(&b.name))
    });
}

/// `namespace/pod` and the container's name, where the log directories name
/// the cgroup's pod.
fn pod_and_container(k: &Identity, names: &Names) -> Option<(String, Option<String>)> {
    if let Some(c) = k.container_id.as_deref().and_then(|c| names.container(c)) {
        return Some((
            format!("{}/{}", c.namespace, c.pod),
            Some(c.container.clone()),
        ));
    }
    let p = names.pod(k.pod_uid.as_deref()?)?;
    Some((format!("{}/{}", p.namespace, p.pod), None))
}

fn rate_cell(rate: Option<Rate>, bold: bool) -> Cell {
    match rate {
        Some(r) => {
            let style = match Style::for_hundredths(r.hundredths()) {
                Style::Plain if bold => Style::Bold,
                s => s,
            };
            Cell::new(r.to_string(), style)
        }
        None => Cell::new("-", Style::Dim),
    }
}

/// The ranked table, `limit` rows.
fn table(rows: &[Row], sort: SortBy, line: LineChoice, limit: usize) -> Vec<Text> {
    let kube = rows.iter().take(limit).any(|r| r.kube.is_some());
    let suffix = match line {
        LineChoice::Some => "%",
        LineChoice::Full => " FULL%",
    };
    let heads = [
        format!("CPU{suffix}"),
        format!("MEM{suffix}"),
        format!("IO{suffix}"),
    ];
    let avg_head = format!("{} AVG10", sort.resource().name().to_uppercase());
    let mut headers: Vec<(&str, Align)> =
        heads.iter().map(|h| (h.as_str(), Align::Right)).collect();
    headers.push((&avg_head, Align::Right));
    if kube {
        headers.extend([
            ("QOS", Align::Left),
            ("POD", Align::Left),
            ("CONTAINER", Align::Left),
        ]);
    }
    headers.push(("CGROUP", Align::Left));
    let mut t = Table::new(&headers);
    let sorted = RESOURCES
        .iter()
        .position(|&r| r == sort.resource())
        .unwrap_or(0);
    for row in rows.iter().take(limit) {
        let mut cells: Vec<Cell> = row
            .rates
            .iter()
            .enumerate()
            .map(|(i, r)| rate_cell(*r, i == sorted))
            .collect();
        let record = row
            .reading
            .pressure(sort.resource())
            .and_then(|p| p.get(line.line()));
        cells.push(match record {
            Some(r) => Cell::new(
                r.avg10.to_string(),
                Style::for_hundredths(u64::from(r.avg10.hundredths())),
            ),
            None => Cell::new("-", Style::Dim),
        });
        if kube {
            let k = row.kube.as_ref();
            cells.push(Cell::new(
                k.and_then(|k| k.qos).map_or("", |q| q.name()),
                Style::Plain,
            ));
            // Names where the kubelet's log directories give them, else ids.
            let (pod, container) = match &row.label {
                Some((pod, container)) => (Some(pod.as_str()), container.as_deref()),
                None => (None, None),
            };
            cells.push(Cell::new(
                pod.or(k.and_then(|k| k.pod_uid.as_deref())).unwrap_or(""),
                Style::Plain,
            ));
            cells.push(Cell::new(
                container
                    .or(k.and_then(Identity::short_container))
                    .unwrap_or(""),
                Style::Plain,
            ));
        }
        cells.push(Cell::span(row.name.clone(), Style::Plain));
        t.row(cells);
    }
    t.lines()
}

fn summary(args: &TopArgs, root: &Path, rows: Option<&[Row]>, sort: SortBy) -> String {
    let count = match rows.map(<[Row]>::len) {
        None => String::new(),
        Some(1) => "  1 cgroup".to_owned(),
        Some(n) => format!("  {n} cgroups"),
    };
    format!(
        "{}  every {}  sort {} {}{count}",
        root.display(),
        Human(args.interval),
        sort.resource(),
        args.line.line(),
    )
}

/// The live screen.
fn frame(
    args: &TopArgs,
    root: &Path,
    rows: Option<&[Row]>,
    sort: SortBy,
    color: bool,
    started: Instant,
) -> Vec<String> {
    let (width, height) = term::size().map_or((None, 24), |(w, h)| (Some(w), h));
    let mut head = Text::new("psi top", Style::Bold);
    head.push(
        format!(
            "  {}  {}  stall rates in %  c/m/i sort  q quits",
            summary(args, root, rows, sort),
            Utc::now().clock()
        ),
        Style::Dim,
    );
    let mut lines = vec![head.render(color, width), String::new()];
    match rows {
        None => lines.push(format!(
            "measuring the first {} ({:.0?} so far)…",
            Human(args.interval),
            started.elapsed()
        )),
        Some([]) => lines.push(format!("no cgroups under {}", root.display())),
        Some(rows) => {
            let fit = height.saturating_sub(3).max(1);
            let limit = args.limit.map_or(fit, |l| l.min(fit));
            lines.extend(table(rows, sort, args.line, limit).iter_mut().map(|l| {
                if let Some(w) = width {
                    l.fit_last(w);
                }
                l.render(color, width)
            }));
        }
    }
    lines
}

/// One ranking for a file or a pipe.
fn batch(args: &TopArgs, root: &Path, rows: &[Row], sort: SortBy, limit: usize) -> Vec<Text> {
    let mut lines = vec![Text::new(
        format!(
            "# {}  {}",
            Utc::now().rfc3339(),
            summary(args, root, Some(rows), sort)
        ),
        Style::Dim,
    )];
    if rows.is_empty() {
        lines.push(Text::new(
            format!("no cgroups under {}", root.display()),
            Style::Plain,
        ));
    } else {
        lines.extend(table(rows, sort, args.line, limit));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(stall_us: u64, elapsed_us: u64) -> Option<Rate> {
        Some(Rate {
            stall_us,
            elapsed_us,
        })
    }

    #[test]
    fn rates_order_exactly_unknown_last() {
        assert_eq!(
            by_rate(rate(1, 3), rate(333_333, 1_000_000)),
            Ordering::Less
        );
        assert_eq!(by_rate(rate(2, 4), rate(1, 2)), Ordering::Equal);
        assert_eq!(by_rate(None, rate(0, 1)), Ordering::Greater);
    }

    #[test]
    fn ties_break_on_the_avg10_of_the_line_shown() {
        let row = |name: &str, file: &[u8]| Row {
            path: PathBuf::from(name),
            name: name.to_owned(),
            kube: None,
            label: None,
            reading: {
                let mut r = Reading::default();
                let p = psi_core::parse(file).expect("valid");
                r.set(Resource::Cpu, Ok(p), Instant::now());
                r
            },
            rates: [None; 3],
        };
        // `a` waits more (some), `b` stalls more (full).
        let a = b"some avg10=9.00 avg60=0.00 avg300=0.00 total=0\n\
                  full avg10=1.00 avg60=0.00 avg300=0.00 total=0\n";
        let b = b"some avg10=5.00 avg60=0.00 avg300=0.00 total=0\n\
                  full avg10=4.00 avg60=0.00 avg300=0.00 total=0\n";
        let mut rows = vec![row("a", a), row("b", b)];
        rank(&mut rows, SortBy::Cpu, Line::Full);
        assert_eq!(rows[0].name, "b");
        rank(&mut rows, SortBy::Cpu, Line::Some);
        assert_eq!(rows[0].name, "a");
    }
}
