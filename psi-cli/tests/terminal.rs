//! `psi watch` and `psi top` in a real terminal (tmux): they refresh in
//! place, show the stressed cgroup first, colour only where they should,
//! and give the terminal back on q and on Ctrl-C. Needs root, a cgroup v2
//! mount and tmux; in CI these must run.

mod support;

use std::time::Duration;

use psi_testkit::cgroup;
use support::{PSI, Pair, Tmux};

const WAIT: Duration = Duration::from_secs(30);

/// The last word of each line of `screen` that begins (after spaces) with a
/// number: the rows of a table.
fn rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|l| {
            l.trim_start()
                .starts_with(|c: char| c.is_ascii_digit() || c == '-')
        })
        .collect()
}

/// Checks that the shell got its terminal back: main screen, cursor shown,
/// line editing and echo on.
fn assert_restored(tmux: &Tmux, exit: &str) {
    let screen = tmux
        .wait_for(WAIT, |s| s.contains(&format!("EXIT={exit}")))
        .unwrap_or_else(|| panic!("the command exits with {exit}:\n{}", tmux.screen()));
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "0",
        "back on the main screen:\n{screen}"
    );
    assert_eq!(tmux.display("#{cursor_flag}"), "1", "the cursor is shown");
    tmux.run("stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo -e -icanon -e -echo | tr '\\n' ' '; echo STTY");
    // The typed command line ends in STTY too: the answer is the line without grep.
    let answer = |s: &str| -> Option<String> {
        s.lines()
            .find(|l| l.ends_with("STTY") && !l.contains("grep"))
            .map(str::to_owned)
    };
    let screen = tmux
        .wait_for(WAIT, |s| answer(s).is_some())
        .expect("stty ran");
    let line = answer(&screen).expect("the stty line");
    assert_eq!(
        line.trim(),
        "icanon echo STTY",
        "line editing and echo restored"
    );
}

#[test]
fn watch_refreshes_in_place_and_ctrl_c_restores_the_terminal() {
    let Some(root) = cgroup::root() else { return };
    let Some(tmux) = Tmux::start("watch", 200, 50) else {
        return;
    };
    let pair = Pair::new(&root, "tty-watch");
    let (busy, idle) = (
        pair.busy.path().display().to_string(),
        pair.idle.path().display().to_string(),
    );
    tmux.run(&format!(
        "{PSI} watch {busy} {idle} --interval 1s; echo EXIT=$?"
    ));

    // Wait for a screen with rates for both targets.
    let screen = tmux
        .wait_for(WAIT, |s| {
            s.lines()
                .filter(|l| l.starts_with("RESOURCE") && l.ends_with("RATE"))
                .count()
                == 2
        })
        .unwrap_or_else(|| panic!("a live view with rates:\n{}", tmux.screen()));
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "1",
        "the view uses the alternate screen"
    );
    assert_eq!(tmux.display("#{cursor_flag}"), "0", "the cursor is hidden");
    assert!(screen.starts_with("psi watch  every 1s"), "{screen}");
    // Blocks in the order given; within each, cpu some's last column is the rate.
    let busy_at = screen.find(&busy).expect("the busy block");
    let idle_at = screen.find(&format!("{idle}\n")).expect("the idle block");
    assert!(busy_at < idle_at);
    let cpu_some_rate = |block: &str| -> f64 {
        let row = block
            .lines()
            .find(|l| l.starts_with("cpu       some"))
            .expect("a cpu some row");
        row.split_whitespace()
            .last()
            .expect("rate")
            .parse()
            .expect("a number")
    };
    assert!(cpu_some_rate(&screen[busy_at..idle_at]) > 0.0, "{screen}");
    assert_eq!(cpu_some_rate(&screen[idle_at..]), 0.0, "{screen}");

    // It refreshes in place: the clock in the first line moves on, and the
    // screen never scrolls (the title stays on the first line).
    let first = screen.lines().next().unwrap_or_default().to_owned();
    let later = tmux
        .wait_for(WAIT, |s| {
            s.lines()
                .next()
                .is_some_and(|l| l.starts_with("psi watch") && l != first)
        })
        .expect("the screen is redrawn");
    assert_eq!(later.matches("RESOURCE").count(), 2, "{later}");

    tmux.keys("C-c");
    assert_restored(&tmux, "130");
}

#[test]
fn top_shows_the_stressed_cgroup_first_and_q_quits() {
    let Some(root) = cgroup::root() else { return };
    let Some(tmux) = Tmux::start("top", 200, 40) else {
        return;
    };
    let pair = Pair::new(&root, "tty-top");
    let parent = pair.parent.path().display().to_string();
    tmux.run(&format!("{PSI} top {parent} --interval 1s; echo EXIT=$?"));
    let screen = tmux
        .wait_for(WAIT, |s| s.contains("CGROUP") && rows(s).len() == 2)
        .unwrap_or_else(|| panic!("a ranking:\n{}", tmux.screen()));
    assert!(screen.starts_with("psi top  "), "{screen}");
    let ranked = rows(&screen);
    assert!(
        ranked[0].ends_with(&pair.name(&pair.busy)),
        "busy first:\n{screen}"
    );
    assert!(ranked[1].ends_with(&pair.name(&pair.idle)), "{screen}");
    assert!(
        ranked[1].trim_start().starts_with("0.00  0.00  0.00"),
        "{screen}"
    );

    // Sorting by memory: the header says so at the next redraw.
    tmux.keys("m");
    tmux.wait_for(WAIT, |s| {
        s.contains("sort memory some") && s.contains("MEMORY AVG10")
    })
    .unwrap_or_else(|| panic!("sorted by memory:\n{}", tmux.screen()));
    tmux.keys("q");
    assert_restored(&tmux, "0");
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let Some(root) = cgroup::root() else { return };
    let Some(tmux) = Tmux::start("color", 200, 40) else {
        return;
    };
    let pair = Pair::new(&root, "tty-color");
    let busy = pair.busy.path().display().to_string();
    tmux.run(&format!("{PSI} read {busy}; echo DONE1"));
    tmux.wait_for(WAIT, |s| s.lines().any(|l| l == "DONE1"))
        .expect("read ran");
    let coloured = tmux.screen_with_escapes();
    assert!(
        coloured.contains("\x1b[1m"),
        "bold title on a terminal:\n{coloured:?}"
    );
    tmux.run("clear");
    tmux.run(&format!("NO_COLOR=1 {PSI} read {busy}; echo DONE2"));
    tmux.wait_for(WAIT, |s| s.lines().any(|l| l == "DONE2"))
        .expect("read ran");
    let plain = tmux.screen_with_escapes();
    let table =
        &plain[plain.rfind("RESOURCE").expect("the table")..plain.rfind("DONE2").expect("done")];
    assert!(!table.contains('\x1b'), "NO_COLOR: no escapes:\n{plain:?}");
}
