//! Shared by the CLI's tests: the built binary, a stressed and an idle
//! cgroup, promtool, and a real terminal (tmux) to drive the live views.

#![allow(dead_code)] // Each test file uses its own subset.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use psi_testkit::cgroup::TestCgroup;
use psi_testkit::ci::tool;
use psi_testkit::process::eventually;

/// The built `psi`.
pub const PSI: &str = env!("CARGO_BIN_EXE_psi");

/// `psi` with these arguments, colour off unless asked for.
pub fn psi(args: &[&str]) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(PSI);
    cmd.args(args).env_remove("NO_COLOR");
    cmd
}

/// A cgroup under stress (four busy loops on this 2-CPU machine) beside an
/// empty one, both under a parent of their own so that `psi top` on the
/// parent sees just these two whatever else runs on the machine.
pub struct Pair {
    // Fields drop in declaration order: the children before their parent.
    pub busy: TestCgroup,
    pub idle: TestCgroup,
    pub parent: TestCgroup,
}

impl Pair {
    pub fn new(root: &Path, name: &str) -> Pair {
        let parent = TestCgroup::new(root, name).expect("parent cgroup");
        let mut busy = TestCgroup::new(parent.path(), "busy").expect("busy cgroup");
        let idle = TestCgroup::new(parent.path(), "idle").expect("idle cgroup");
        busy.burn(4).expect("busy loops");
        Pair { busy, idle, parent }
    }

    /// The busy and the idle cgroup's paths, as arguments to `psi`.
    pub fn paths(&self) -> (&str, &str) {
        (arg(&self.busy), arg(&self.idle))
    }

    /// A child's name as `psi top` shows it under the parent.
    pub fn name(&self, cg: &TestCgroup) -> String {
        cg.path()
            .strip_prefix(self.parent.path())
            .expect("a child")
            .display()
            .to_string()
    }
}

/// A cgroup's path as an argument to `psi`.
fn arg(cg: &TestCgroup) -> &str {
    cg.path().to_str().expect("a UTF-8 cgroup path")
}

/// A tmux server of our own, with one `sh` in a window of a fixed size.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// `None` (or a panic in CI) when tmux is not installed.
    pub fn start(name: &str, width: u16, height: u16) -> Option<Tmux> {
        let tmux = tool("tmux", "tmux")?;
        let socket = format!("psi-cli-{name}-{}", std::process::id());
        let status = Command::new(tmux)
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "main",
            ])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["-e", "PS1=$ ", "sh"])
            .env_remove("NO_COLOR")
            .env("TERM", "xterm-256color")
            .status()
            .expect("start tmux");
        assert!(status.success(), "tmux new-session");
        Some(Tmux { socket })
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types a command line and presses Enter.
    pub fn run(&self, line: &str) {
        self.tmux(&["send-keys", "-t", "main", "-l", line]);
        self.tmux(&["send-keys", "-t", "main", "Enter"]);
    }

    /// Presses keys by tmux's names: `C-c`, `q`.
    pub fn keys(&self, keys: &str) {
        self.tmux(&["send-keys", "-t", "main", keys]);
    }

    /// What the pane shows, as text.
    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "main"])
    }

    /// What the pane shows, with its colours as escape sequences.
    pub fn screen_with_escapes(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-e", "-t", "main"])
    }

    /// A tmux format about the pane: `#{alternate_on}`, `#{cursor_flag}`.
    pub fn display(&self, format: &str) -> String {
        self.tmux(&["display-message", "-p", "-t", "main", format])
            .trim()
            .to_owned()
    }

    /// Waits up to `limit` for the screen to satisfy `ready`, returning it.
    pub fn wait_for(&self, limit: Duration, ready: impl Fn(&str) -> bool) -> Option<String> {
        eventually(limit, || Some(self.screen()).filter(|s| ready(s)))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Ends this test's own server (and the shell it started), nothing else.
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}
