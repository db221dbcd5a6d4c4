//! Kernel PSI triggers on the target, counted on a thread of their own so
//! that waiting on them never delays a scrape.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use psi_core::cgroup::Kind;
use psi_core::report::Chain;
use psi_core::trigger::{EventKind, Monitor, Trigger};

/// How often the thread looks for a new target while waiting.
const TICK: Duration = Duration::from_millis(500);

/// Where the triggers go: a directory of pressure files, and its kind.
type Place = (PathBuf, Kind);

#[derive(Debug)]
struct Shared {
    specs: Vec<Trigger>,
    fired: Vec<AtomicU64>,
    armed: Vec<AtomicBool>,
    place: Mutex<Option<Place>>,
}

/// The triggers of one target: event counts for `/metrics`, armed on a thread.
#[derive(Debug, Clone)]
pub struct Triggers {
    shared: Arc<Shared>,
}

impl Triggers {
    /// Starts the thread for `specs` (none: no thread).
    pub fn start(specs: Vec<Trigger>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            fired: specs.iter().map(|_| AtomicU64::new(0)).collect(),
            armed: specs.iter().map(|_| AtomicBool::new(false)).collect(),
            specs,
            place: Mutex::new(None),
        });
        if !shared.specs.is_empty() {
            let thread = shared.clone();
            std::thread::Builder::new()
                .name("psi-triggers".into())
                .spawn(move || run(&thread))?;
        }
        Ok(Triggers { shared })
    }

    /// Points the triggers at `place` (re-arming them if it changed), or at nothing.
    pub fn follow(&self, place: Option<Place>) {
        if self.shared.specs.is_empty() {
            return;
        }
        let mut current = self
            .shared
            .place
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *current != place {
            // Not armed until the thread has armed them on the new place.
            for armed in &self.shared.armed {
                armed.store(false, Ordering::Relaxed);
            }
            *current = place;
        }
    }

    /// Each trigger, whether it is armed now, and how often it fired.
    pub fn counts(&self) -> impl Iterator<Item = (&Trigger, bool, u64)> {
        let s = &self.shared;
        s.specs
            .iter()
            .zip(&s.armed)
            .zip(&s.fired)
            .map(|((t, a), f)| (t, a.load(Ordering::Relaxed), f.load(Ordering::Relaxed)))
    }

    /// True when there are triggers to report.
    pub fn is_empty(&self) -> bool {
        self.shared.specs.is_empty()
    }
}

/// How long a trigger the kernel refused waits before it is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// The trigger thread: arms every trigger on the current place, waits, counts.
fn run(shared: &Shared) {
    let mut armed_on: Option<Place> = None;
    let mut monitor = Monitor::new();
    // Each spec's id in the monitor, while armed.
    let mut ids: Vec<Option<usize>> = vec![None; shared.specs.len()];
    let mut last_try: Option<Instant> = None;
    let mut errors: Vec<Option<String>> = vec![None; shared.specs.len()];
    loop {
        let want = shared
            .place
            .lock()
            .map(|p| p.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        if want != armed_on {
            // A new target: drop every trigger (closing them removes them
            // from the kernel) and arm afresh.
            monitor = Monitor::new();
            ids.fill(None);
            last_try = None;
            armed_on = want;
        }
        let missing = ids.iter().any(Option::is_none);
        if let Some(place) = &armed_on
            && missing
            && last_try.is_none_or(|t| t.elapsed() >= RETRY)
        {
            last_try = Some(Instant::now());
            arm(shared, place, &mut monitor, &mut ids, &mut errors);
        }
        {
            // Under the lock `follow` takes, so a new place is never shown as
            // armed with the old place's triggers.
            let place = shared.place.lock().unwrap_or_else(|e| e.into_inner());
            if *place == armed_on {
                for (armed, id) in shared.armed.iter().zip(&ids) {
                    armed.store(id.is_some(), Ordering::Relaxed);
                }
            }
        }
        if monitor.is_empty() {
            std::thread::sleep(TICK);
            continue;
        }
        let events = match monitor.wait(Some(TICK)) {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "waiting on triggers failed");
                std::thread::sleep(TICK);
                continue;
            }
        };
        for event in events {
            let Some(i) = ids.iter().position(|id| *id == Some(event.id)) else {
                continue;
            };
            let spec = &shared.specs[i];
            match event.kind {
                EventKind::Fired => {
                    shared.fired[i].fetch_add(1, Ordering::Relaxed);
                    tracing::info!(trigger = %spec, "pressure trigger fired");
                }
                EventKind::Gone => {
                    ids[i] = None;
                    tracing::info!(trigger = %spec, "the target's cgroup is gone; trigger disarmed");
                }
                // A condition this exporter does not know is not an event to count.
                _ => tracing::debug!(trigger = %spec, kind = ?event.kind, "trigger event ignored"),
            }
        }
    }
}

/// Registers every spec that is not armed yet on `place`.
fn arm(
    shared: &Shared,
    place: &Place,
    monitor: &mut Monitor,
    ids: &mut [Option<usize>],
    errors: &mut [Option<String>],
) {
    for ((spec, id), error) in shared
        .specs
        .iter()
        .zip(ids.iter_mut())
        .zip(errors.iter_mut())
    {
        if id.is_some() {
            continue;
        }
        let added = monitor.add_in(&place.0, place.1, *spec);
        match added {
            Ok(new) => {
                *id = Some(new);
                *error = None;
                tracing::info!(trigger = %spec, "trigger armed");
            }
            Err(e) => {
                // Say a reason once; the retries every 5 s stay quiet.
                let text = Chain(&e).to_string();
                if error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(trigger = %spec, error = %text, "trigger not armed; retrying every 5s");
                }
                *error = Some(text);
            }
        }
    }
}
