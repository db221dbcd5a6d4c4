//! `psi wait`: block on kernel PSI triggers, a thin front on `psi_core::trigger`.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use anyhow::bail;
use psi_core::trigger::{EventKind, Monitor, Trigger, TriggerError, UNPRIVILEGED_WINDOW_STEP};

use crate::cli::WaitArgs;
use crate::exit::Exit;
use crate::target::{self, Env, Kind};
use crate::view;

/// Runs `psi wait`.
pub fn run(args: &WaitArgs, env: &Env) -> anyhow::Result<Exit> {
    let targets = target::resolve(&args.targets(), env)?;
    let [target] = targets.as_slice() else {
        bail!("psi wait takes one target, not {}", targets.len());
    };
    let mut monitor = Monitor::new();
    for trigger in &args.trigger {
        let file = match target.kind {
            Kind::System => target.path.join(trigger.resource.name()),
            Kind::Cgroup => target.path.join(trigger.resource.cgroup_file()),
        };
        monitor.add(file, *trigger).map_err(|e| explain(&e))?;
    }
    if std::io::stderr().is_terminal() {
        let list: Vec<String> = args.trigger.iter().map(Trigger::to_string).collect();
        eprintln!(
            "psi: waiting for {} on {}",
            list.join(" or "),
            target.title()
        );
    }
    let events = monitor.wait(args.timeout).map_err(|e| explain(&e))?;
    let mut stdout = std::io::stdout().lock();
    for event in &events {
        let Some(trigger) = args.trigger.get(event.id) else {
            continue;
        };
        match event.kind {
            EventKind::Fired => {
                writeln!(stdout, "fired: {trigger} on {}", target.title())?;
                return Ok(Exit::Success);
            }
            EventKind::Gone => {
                bail!(
                    "the cgroup is gone: {} was removed while waiting",
                    target.path.display()
                );
            }
        }
    }
    if let Some(t) = args.timeout {
        eprintln!(
            "psi: timed out after {} without a trigger firing",
            crate::cmd::watch::humantime(t)
        );
    }
    Ok(Exit::Timeout)
}

/// The trigger error, with a working trigger suggested where the kernel
/// refused the window.
fn explain(e: &TriggerError) -> anyhow::Error {
    let text = view::chain(e);
    if let TriggerError::Refused { trigger, why, .. } = e
        && why.contains("multiple of 2s")
    {
        let step = UNPRIVILEGED_WINDOW_STEP.as_micros();
        let window = trigger.window.as_micros().div_ceil(step) * step;
        let suggestion = Trigger {
            window: Duration::from_micros(u64::try_from(window).unwrap_or(u64::MAX)),
            ..*trigger
        };
        return anyhow::anyhow!("{text}; try --trigger '{suggestion}'");
    }
    anyhow::anyhow!(text)
}
