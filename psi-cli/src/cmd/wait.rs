//! `psi wait`: block on kernel PSI triggers, a thin front on `psi_core::trigger`.

use std::io::{IsTerminal as _, Write as _};

use anyhow::bail;
use psi_core::duration::Human;
use psi_core::report::Chain;
use psi_core::trigger::{EventKind, Monitor, Refusal, Trigger, TriggerError};

use crate::cli::WaitArgs;
use crate::exit::Exit;
use crate::target::{self, Env};
use crate::view;

/// Runs `psi wait`.
pub fn run(args: &WaitArgs, env: &Env) -> anyhow::Result<Exit> {
    let targets = target::resolve(&args.targets(), env)?;
    let [target] = targets.as_slice() else {
        bail!("psi wait takes one target, not {}", targets.len());
    };
    let mut monitor = Monitor::new();
    for trigger in &args.trigger {
        monitor
            .add_in(&target.dir, target.kind, *trigger)
            .map_err(|e| explain(&e))?;
    }
    if std::io::stderr().is_terminal() {
        let list: Vec<String> = args.trigger.iter().map(Trigger::to_string).collect();
        crate::ui::say!(
            "psi: waiting for {} on {}",
            list.join(" or "),
            view::title(target)
        );
    }
    let events = monitor.wait(args.timeout).map_err(|e| explain(&e))?;
    let mut stdout = std::io::stdout().lock();
    // A trigger that fired wins over one whose cgroup went in the same poll.
    let first = events
        .iter()
        .find(|e| e.kind == EventKind::Fired)
        .or(events.first());
    if let Some(event) = first {
        match event.kind {
            EventKind::Fired => {
                let trigger = event.trigger;
                writeln!(stdout, "fired: {trigger} on {}", view::title(target))?;
                return Ok(Exit::Success);
            }
            EventKind::Gone => {
                bail!(
                    "the cgroup is gone: {} was removed while waiting",
                    target.dir.display()
                );
            }
            kind => bail!(
                "the kernel reported {kind:?} on {} instead of a trigger firing",
                target.dir.display()
            ),
        }
    }
    if let Some(t) = args.timeout {
        crate::ui::say!("psi: timed out after {} without a trigger firing", Human(t));
    }
    Ok(Exit::Timeout)
}

/// The trigger error, with a working trigger suggested where the kernel
/// refused the window, and said plainly where the cgroup went away.
fn explain(e: &TriggerError) -> anyhow::Error {
    if let TriggerError::Io { path, trigger, .. } = e
        && e.cgroup_gone()
    {
        let dir = path.parent().unwrap_or(path);
        return anyhow::anyhow!(
            "the cgroup is gone: {} was removed while trigger {trigger} was being registered",
            dir.display()
        );
    }
    let text = Chain(e).to_string();
    if let TriggerError::Refused {
        trigger,
        why: Refusal::UnprivilegedWindow,
        ..
    } = e
    {
        let suggestion: Trigger = trigger.unprivileged();
        return anyhow::anyhow!("{text}; try --trigger '{suggestion}'");
    }
    anyhow::anyhow!(text)
}
