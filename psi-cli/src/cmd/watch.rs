//! `psi watch`: a live view of each target, with the stall rate over every
//! interval.

use std::io::{IsTerminal as _, Write as _};

use psi_core::duration::Human;
use psi_core::read::{PressureSet, Reading};
use psi_core::target::Target;

use crate::cli::{WatchArgs, WatchFormat};
use crate::exit::Exit;
use crate::target::{self, Env};
use crate::ui::clock::Utc;
use crate::ui::style::{Style, Text};
use crate::ui::term::{self, Screen, Ticker, Waiter, Wake};
use crate::view;

/// Runs `psi watch`.
pub fn run(args: &WatchArgs, env: &Env, color: bool) -> anyhow::Result<Exit> {
    let targets = target::resolve(&args.targets, env)?;
    let mut files: Vec<PressureSet> = targets.iter().map(Target::pressure_set).collect();
    let live = args.format == WatchFormat::Table && std::io::stdout().is_terminal();
    let mut events = Waiter::new(live)?;
    let mut cur: Vec<Reading> = files.iter_mut().map(PressureSet::read_all).collect();
    super::require_readable(&targets, &cur)?;
    let mut prev: Option<Vec<Reading>> = None;
    let mut screen = if live { Some(Screen::enter()?) } else { None };
    let draw = |screen: &mut Screen, prev: Option<&Vec<Reading>>, cur: &[Reading]| {
        screen.draw(&frame(args, &targets, prev.map(Vec::as_slice), cur, color))
    };
    if let Some(s) = &mut screen {
        draw(s, None, &cur)?;
    }
    let mut ticker = Ticker::new(args.interval);
    let mut ticks = 0;
    loop {
        match ticker.wait(&mut events)? {
            Wake::Tick => {}
            Wake::Key(b'q' | b'Q') => return Ok(Exit::Success),
            Wake::Interrupt => return Ok(Exit::Interrupted),
            Wake::Resize | Wake::Key(_) => {
                if let Some(s) = &mut screen {
                    draw(s, prev.as_ref(), &cur)?;
                }
                continue;
            }
        }
        let fresh: Vec<Reading> = files.iter_mut().map(PressureSet::read_all).collect();
        let before = std::mem::replace(&mut cur, fresh);
        match &mut screen {
            Some(s) => draw(s, Some(&before), &cur)?,
            None => print_lines(args.format, &targets, &before, &cur)?,
        }
        prev = Some(before);
        ticks += 1;
        if args.count.is_some_and(|n| ticks >= n) {
            return Ok(Exit::Success);
        }
    }
}

/// One logfmt line, or one JSON object, per target.
fn print_lines(
    format: WatchFormat,
    targets: &[Target],
    before: &[Reading],
    now: &[Reading],
) -> std::io::Result<()> {
    let time = Utc::now();
    let mut out = Vec::new();
    for ((t, b), n) in targets.iter().zip(before).zip(now) {
        match format {
            WatchFormat::Json => view::json_object(&mut out, t, n, Some(b), time),
            WatchFormat::Table => {
                out.extend_from_slice(view::logfmt(t, n, Some(b), time).as_bytes());
                out.push(b'\n');
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()
}

/// The live screen.
fn frame(
    args: &WatchArgs,
    targets: &[Target],
    before: Option<&[Reading]>,
    now: &[Reading],
    color: bool,
) -> Vec<String> {
    let width = term::size().map(|s| s.0);
    let interval = Human(args.interval);
    let mut head = Text::new("psi watch", Style::Bold);
    head.push(
        format!(
            "  every {interval}  {}  averages and RATE (stall over the last {interval}) in %  q quits",
            Utc::now().clock()
        ),
        Style::Dim,
    );
    let mut lines = vec![head.render(color, width), String::new()];
    for (i, (t, n)) in targets.iter().zip(now).enumerate() {
        if i > 0 {
            lines.push(String::new());
        }
        let b = before.and_then(|b| b.get(i));
        let table = match b {
            Some(b) => view::table(t, n, Some(b)),
            // The first screen, before any interval has passed.
            None => view::table(t, n, None),
        };
        lines.extend(table.iter().map(|l| l.render(color, width)));
    }
    lines
}
