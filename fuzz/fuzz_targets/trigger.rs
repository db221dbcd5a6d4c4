//! `str::parse::<psi_core::trigger::Trigger>` on any UTF-8: it never panics;
//! it accepts exactly what a slow reading of the documented grammar accepts;
//! every trigger it gives passes `validate`, writes back through `Display`
//! to text that parses to the same trigger, and has a `kernel_line` of
//! `<some|full> <stall µs> <window µs>` that the kernel would take
//! (0 < stall ≤ window ≤ 10 s).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use psi_core::Line;
use psi_core::trigger::{MAX_WINDOW, Trigger};

/// The grammar: four words between whitespace; a resource and a line as the
/// kernel names them; two durations; the kernel's rules on them.
fn reference(spec: &str) -> bool {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let [resource, line, stall, window] = words[..] else {
        return false;
    };
    let (Ok(stall), Ok(window)) = (
        psi_core::duration::parse(stall),
        psi_core::duration::parse(window),
    ) else {
        return false;
    };
    let whole_micros = |d: Duration| d.as_nanos().is_multiple_of(1000);
    ["cpu", "memory", "io", "irq"].contains(&resource)
        && ["some", "full"].contains(&line)
        && !stall.is_zero()
        && stall <= window
        && window <= Duration::from_secs(10)
        && whole_micros(stall)
        && whole_micros(window)
}

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = spec.parse::<Trigger>();
    assert_eq!(parsed.is_ok(), reference(spec), "{parsed:?}");
    let trigger = match parsed {
        Ok(t) => t,
        Err(e) => {
            // The message must render without panicking.
            let _ = e.to_string();
            return;
        }
    };
    assert!(trigger.validate().is_ok(), "{trigger:?} fails validate");
    assert!(trigger.window <= MAX_WINDOW);

    let text = trigger.to_string();
    assert_eq!(
        text.parse::<Trigger>().ok(),
        Some(trigger),
        "written back as {text:?}"
    );

    let kernel = trigger.kernel_line();
    let words: Vec<&str> = kernel.split(' ').collect();
    let [line, stall, window] = words[..] else {
        panic!("kernel line {kernel:?} is not three words");
    };
    let want_line = match trigger.line {
        Line::Some => "some",
        Line::Full => "full",
    };
    assert_eq!(line, want_line, "{kernel:?}");
    let micros = |w: &str| -> u64 {
        assert!(
            !w.is_empty()
                && w.bytes().all(|b| b.is_ascii_digit())
                && (w == "0" || !w.starts_with('0')),
            "{w:?} in {kernel:?} is not a plain decimal"
        );
        w.parse().expect("fits u64")
    };
    let (stall, window) = (micros(stall), micros(window));
    assert_eq!(Duration::from_micros(stall), trigger.stall, "{kernel:?}");
    assert_eq!(Duration::from_micros(window), trigger.window, "{kernel:?}");
    assert!(
        0 < stall && stall <= window && window <= 10_000_000,
        "{kernel:?}"
    );
});
