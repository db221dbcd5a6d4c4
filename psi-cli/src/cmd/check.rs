//! `psi check`: thresholds to exit codes, for probes and shell guards.

use std::io::Write as _;

use psi_core::read::{PressureSet, Reading};
use psi_core::target::Target;

use crate::cli::CheckArgs;
use crate::exit::Exit;
use crate::rule::{Rule, Verdict};
use crate::target::{self, Env};
use crate::ui::style::{Style, Text};
use crate::view;

/// Runs `psi check`.
pub fn run(args: &CheckArgs, env: &Env, color: bool) -> anyhow::Result<Exit> {
    let targets = target::resolve(&args.targets, env)?;
    let mut files: Vec<PressureSet> = targets.iter().map(Target::pressure_set).collect();
    let first: Vec<Reading> = files.iter_mut().map(PressureSet::read_all).collect();
    let second: Option<Vec<Reading>> = if args.max.iter().any(Rule::needs_rate) {
        std::thread::sleep(args.interval);
        Some(files.iter_mut().map(PressureSet::read_all).collect())
    } else {
        None
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let (mut breached, mut failed) = (false, false);
    for (i, t) in targets.iter().enumerate() {
        let now = second.as_ref().and_then(|s| s.get(i)).unwrap_or(&first[i]);
        let before = second.as_ref().map(|_| &first[i]);
        for rule in &args.max {
            match judge(rule, t, now, before) {
                Ok((verdict, text)) => {
                    breached |= verdict == Verdict::Breached;
                    out.push(text);
                }
                Err(why) => {
                    failed = true;
                    errors.push(format!("cannot check {rule} on {}: {why}", view::title(t)));
                }
            }
        }
    }
    if !args.quiet {
        let mut stdout = std::io::stdout().lock();
        for line in &out {
            writeln!(stdout, "{}", line.render(color, None))?;
        }
    }
    for e in &errors {
        crate::ui::say!("psi: {e}");
    }
    Ok(if failed {
        Exit::Error
    } else if breached {
        Exit::Breached
    } else {
        Exit::Success
    })
}

/// Checks one rule on one target: the verdict and its line, or why it
/// could not be checked.
fn judge(
    rule: &Rule,
    target: &Target,
    now: &Reading,
    before: Option<&Reading>,
) -> Result<(Verdict, Text), String> {
    let pressure = match now.result(rule.resource) {
        Some(Ok(p)) => p,
        Some(Err(e)) => return Err(view::unavailable(e)),
        None => return Err("not read".to_owned()),
    };
    let Some(record) = pressure.get(rule.line) else {
        if !target.kind.measures(rule.resource, rule.line) {
            return Err(format!(
                "{} {} is not measured system-wide (the kernel prints zeros); check a cgroup, \
                 or {}.some",
                rule.resource, rule.line, rule.resource
            ));
        }
        return Err(format!(
            "this kernel does not report {} {}",
            rule.resource, rule.line
        ));
    };
    let rate = before.and_then(|b| now.rate_since(b, rule.resource, rule.line));
    if rule.needs_rate() && rate.is_none() {
        return Err(
            "total went backwards between the two reads (the cgroup was made again)".to_owned(),
        );
    }
    let measured = rule
        .measure(record, rate)
        .ok_or_else(|| "no rate".to_owned())?;
    let verdict = rule.judge(measured);
    let mut text = Text::default();
    match verdict {
        Verdict::Holds => {
            text.push("ok      ", Style::Good);
            text.push(
                format!("{rule} = {measured} <= {}", rule.max_text()),
                Style::Plain,
            );
        }
        Verdict::Breached => {
            text.push("BREACH  ", Style::Bad);
            text.push(
                format!(
                    "{rule} = {measured} > {} by {}",
                    rule.max_text(),
                    rule.excess_text(measured)
                ),
                Style::Plain,
            );
        }
    }
    if let Some(r) = rate.filter(|_| rule.needs_rate()) {
        text.push(format!(" (over {} ms)", r.elapsed_us / 1000), Style::Dim);
    }
    text.push(format!("  {}", view::title(target)), Style::Dim);
    Ok((verdict, text))
}
