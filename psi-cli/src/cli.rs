//! Command-line flags: the clap definition, whose doc comments are the help
//! text, the man page and the completions.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use psi_core::cgroup::logs::{CONTAINER_LOGS, POD_LOGS};

/// Read, watch, rank, check and wait on Linux pressure stall information (PSI).
///
/// The kernel counts how long tasks stall waiting for CPU, memory, IO and
/// IRQ, system-wide in /proc/pressure and per cgroup v2 directory in
/// {cpu,memory,io,irq}.pressure. `psi` reads those files on a node or in a
/// pod, without Prometheus.
///
/// A TARGET is a cgroup directory: absolute, or relative to the cgroup v2
/// mount (found in /proc/self/mountinfo). Any directory holding pressure
/// files is read the same way, so a copy saved for a post-mortem works too.
/// Without a TARGET (nor --pid, --pid-flag) the system-wide /proc/pressure is
/// read.
#[derive(Debug, Parser)]
#[command(
    name = "psi",
    version,
    propagate_version = true,
    after_help = "Examples:\n  \
        psi read                                   # the whole system\n  \
        psi read system.slice --format json        # a cgroup, relative to the cgroup v2 mount\n  \
        psi watch --pid 4242                       # live, the cgroup of process 4242\n  \
        psi top kubepods.slice --sort memory       # the pods under most memory pressure\n  \
        psi check --max cpu.some.avg10=40 memory.full.rate=5%\n  \
        psi wait app.slice --trigger 'memory some 500ms 2s' --timeout 60s\n\n\
        Exit codes: 0 success; 1 a check rule is breached; 2 a usage, read or kernel error;\n\
        124 psi wait timed out; 130 watch or top interrupted (Ctrl-C, SIGTERM, SIGHUP)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Colour the output: `auto` colours only when stdout is a terminal and
    /// NO_COLOR is unset or empty (and TERM is not `dumb`).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// The proc file system: system-wide pressure is read from
    /// `<PROC_ROOT>/pressure`, pids are looked up under it.
    #[arg(
        long,
        global = true,
        env = "PSI_PROC_ROOT",
        default_value = "/proc",
        value_name = "DIR"
    )]
    pub proc_root: PathBuf,

    /// The cgroup v2 mount that relative TARGETs and pids' cgroups are taken
    /// under. Default: found in `<PROC_ROOT>/self/mountinfo`.
    #[arg(long, global = true, env = "PSI_CGROUP_ROOT", value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read pressure once: the kernel's averages and totals.
    #[command(after_help = "Examples:\n  \
        psi read                                        # /proc/pressure\n  \
        psi read /sys/fs/cgroup/unified/system.slice    # an absolute cgroup directory\n  \
        psi read system.slice user.slice                # relative to the cgroup v2 mount\n  \
        psi read --pid 4242 --format json | jq '.pressure.cpu.some.avg10'\n  \
        psi read --pid-flag my-app --format prometheus  # the container whose /etc/pid_flag is my-app\n  \
        psi read ./saved-node-42                        # pressure files copied for a post-mortem\n\n\
        Exit codes: 0 read; 2 a file could not be read (other than one the kernel does not\n\
        have: each is named on stderr, after all that could be read is printed), or a usage error.")]
    Read(ReadArgs),

    /// Watch pressure live: the kernel's averages and the stall rate over
    /// each interval, computed exactly from `total`.
    ///
    /// On a terminal the view refreshes in place (q or Ctrl-C quits and
    /// restores the terminal); otherwise one line per target and tick is
    /// printed, in logfmt (`cpu.some.rate=12.34`), or JSON with --format json.
    #[command(after_help = "Examples:\n  \
        psi watch                                  # the system, every second\n  \
        psi watch system.slice user.slice -i 2s\n  \
        psi watch --pid 4242 --count 10 > log      # ten lines, then exit\n  \
        psi watch --format json | jq -c '.rates.cpu.some.percent'\n\n\
        Exit codes: 0 after --count ticks or q; 2 an error; 130 interrupted.")]
    Watch(WatchArgs),

    /// Rank the cgroups under ROOT by stall rate over the interval, like
    /// `top` for pressure.
    ///
    /// The rates are the share of the last interval in which some task (or,
    /// with --line full, every task) of the cgroup stalled, computed exactly
    /// from `total`. Kubernetes pod and container identity is shown where
    /// the cgroup path carries one. On a terminal: c, m, i sort by cpu,
    /// memory, io; q or Ctrl-C quits.
    #[command(after_help = "Examples:\n  \
        psi top                                    # every cgroup, ranked by cpu\n  \
        psi top kubepods.slice --sort memory --limit 10\n  \
        psi top --count 1 -i 1s                    # one ranking, then exit (batch mode)\n\n\
        Exit codes: 0 after --count ticks or q; 2 an error; 130 interrupted.")]
    Top(TopArgs),

    /// Check pressure against thresholds: exit 0 when every rule holds, 1
    /// when one is breached, 2 when a target cannot be read.
    ///
    /// A rule is `<resource>.<some|full>.<field>=<max>`, with resource cpu,
    /// memory, io or irq and field avg10, avg60, avg300 (the kernel's
    /// averages, in percent), rate (the stall rate measured over --interval,
    /// in percent) or total (cumulative stall time, a duration with its unit
    /// such as 90s or 150000us). A rule holds while the value is at most max.
    /// Every rule is checked on every target.
    #[command(after_help = "Examples:\n  \
        psi check --max cpu.some.avg10=40\n  \
        psi check app.slice --max memory.full.avg60=5 io.some.rate=20%\n  \
        psi check --pid-flag my-app --max memory.some.rate=10% --interval 2s\n  \
        psi check --max cpu.some.avg10=80 || echo 'node too busy, not starting the batch job'\n\n\
        As a Kubernetes exec probe (a container reading its own cgroup at /sys/fs/cgroup):\n  \
        livenessProbe:\n    \
          exec:\n      \
            command: [psi, check, /sys/fs/cgroup, --max, memory.full.avg10=20]\n\n\
        Exit codes: 0 every rule holds; 1 a rule is breached; 2 a read or usage error.")]
    Check(CheckArgs),

    /// Block until a kernel PSI trigger fires: tasks stalled for at least
    /// STALL within a WINDOW.
    ///
    /// Without CAP_SYS_RESOURCE the kernel (6.4 and later) accepts only
    /// windows that are multiples of 2s, on cgroup files and on the
    /// system-wide /proc/pressure files alike (before 6.4 it accepted none
    /// on /proc/pressure). The kernel signals at most once per window, so
    /// expect about one window of latency.
    #[command(after_help = "Examples:\n  \
        psi wait app.slice --trigger 'memory some 500ms 2s'\n  \
        psi wait --pid 4242 --trigger 'cpu some 1s 2s' --timeout 30s && echo 'cpu starved'\n\n\
        Exit codes: 0 a trigger fired; 124 --timeout passed first; 2 a usage or kernel error\n\
        (the cgroup is gone, the kernel refused the trigger).")]
    Wait(WaitArgs),

    /// Print a shell completion script to stdout.
    #[command(
        hide = true,
        after_help = "Examples:\n  \
        psi completions bash > /etc/bash_completion.d/psi\n  \
        psi completions zsh > \"${fpath[1]}/_psi\"\n  \
        psi completions fish > ~/.config/fish/completions/psi.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff) to stdout, or write one page per command
    /// into --dir.
    #[command(
        hide = true,
        after_help = "Examples:\n  \
        psi man | man -l -\n  \
        psi man --dir /usr/local/share/man/man1"
    )]
    Man {
        /// Write psi.1, psi-read.1, ... into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Where to read: cgroup directories, pids, pid_flags, or the system.
#[derive(Debug, Clone, Args)]
pub struct Targets {
    /// Cgroup directories, absolute or relative to the cgroup v2 mount (a
    /// path starting with ./ or ../ is relative to the current directory).
    #[arg(value_name = "TARGET")]
    pub paths: Vec<PathBuf>,

    /// The cgroup of this process (repeatable).
    #[arg(long, value_name = "N")]
    pub pid: Vec<u32>,

    /// The cgroup of the container whose pid_flag file (--pid-flag-path,
    /// inside its root) holds VALUE (repeatable).
    #[arg(long, value_name = "VALUE")]
    pub pid_flag: Vec<String>,

    #[command(flatten)]
    pub flag_path: FlagPath,

    /// The system-wide /proc/pressure, beside other targets (it is the
    /// default when none is given).
    #[arg(long)]
    pub system: bool,
}

/// `psi read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// What to read.
    #[command(flatten)]
    pub targets: Targets,

    /// Output format: an aligned table; JSON, one object per target and
    /// line; or the Prometheus text exposition the exporter serves.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `psi watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// What to watch.
    #[command(flatten)]
    pub targets: Targets,

    /// Time between two reads; the rate is measured over it.
    #[arg(long, short, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,

    /// Exit after this many updates (default: run until q or Ctrl-C).
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,

    /// Output format: a live table on a terminal, otherwise one logfmt line
    /// per target and tick; or JSON, one object per target and tick.
    #[arg(long, short, value_enum, default_value_t = WatchFormat::Table)]
    pub format: WatchFormat,
}

/// `psi top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// The cgroup whose descendants are ranked: absolute or relative to the
    /// cgroup v2 mount. Default: the whole hierarchy.
    #[arg(value_name = "ROOT")]
    pub root: Option<PathBuf>,

    /// Time between two reads; the rates are measured over it.
    #[arg(long, short, default_value = "2s", value_parser = parse_interval)]
    pub interval: Duration,

    /// The resource to rank by.
    #[arg(long, short, value_enum, default_value_t = SortBy::Cpu)]
    pub sort: SortBy,

    /// Rank and show `some` (at least one task stalled) or `full` (every
    /// non-idle task stalled at once).
    #[arg(long, value_enum, default_value_t = LineChoice::Some)]
    pub line: LineChoice,

    /// Show at most N cgroups (default: what fits on the terminal; 20 when
    /// not on a terminal).
    #[arg(long, short, value_name = "N")]
    pub limit: Option<usize>,

    /// Exit after this many rankings (default: run until q or Ctrl-C).
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,

    /// The kubelet's pod log directory, whose entries name pods
    /// (`<namespace>_<pod>_<uid>`); used when present.
    #[arg(long, env = "PSI_POD_LOGS_DIR", default_value = POD_LOGS, value_name = "DIR")]
    pub pod_logs_dir: PathBuf,

    /// The kubelet's container log directory, whose symlinks name containers
    /// (`<pod>_<namespace>_<container>-<id>.log`); used when present.
    #[arg(long, env = "PSI_CONTAINER_LOGS_DIR", default_value = CONTAINER_LOGS, value_name = "DIR")]
    pub container_logs_dir: PathBuf,
}

/// `psi check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// What to check.
    #[command(flatten)]
    pub targets: Targets,

    /// Rules, `<resource>.<some|full>.<avg10|avg60|avg300|rate|total>=<max>[%]`
    /// (one or more; put TARGETs before --max, or after `--`).
    #[arg(long, required = true, num_args = 1.., value_name = "RULE", value_parser = crate::rule::Rule::parse)]
    pub max: Vec<crate::rule::Rule>,

    /// The time over which `rate` rules are measured (two reads this far apart).
    #[arg(long, short, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,

    /// Print nothing; only the exit code tells.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Where containers keep their pid_flag: one flag for every command that
/// finds a container by it.
#[derive(Debug, Clone, Args)]
pub struct FlagPath {
    /// Where containers keep their pid_flag, inside their own root.
    #[arg(
        long,
        env = "PSI_PID_FLAG_PATH",
        default_value = "/etc/pid_flag",
        value_name = "PATH"
    )]
    pub pid_flag_path: PathBuf,
}

/// `psi wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The cgroup directory to put the trigger on, absolute or relative to
    /// the cgroup v2 mount. Default: the system-wide /proc/pressure.
    #[arg(value_name = "TARGET", conflicts_with_all = ["pid", "pid_flag"])]
    pub path: Option<PathBuf>,

    /// The cgroup of this process.
    #[arg(long, value_name = "N", conflicts_with = "pid_flag")]
    pub pid: Option<u32>,

    /// The cgroup of the container whose pid_flag holds VALUE.
    #[arg(long, value_name = "VALUE")]
    pub pid_flag: Option<String>,

    #[command(flatten)]
    pub flag_path: FlagPath,

    /// `<resource> <some|full> <stall> <window>`, such as `memory some 150ms 2s`:
    /// fire when tasks stall for STALL within WINDOW (at most 10s; a multiple
    /// of 2s without CAP_SYS_RESOURCE). Repeatable: the first to fire wins.
    #[arg(long, short, required = true, value_name = "TRIGGER", value_parser = parse_trigger)]
    pub trigger: Vec<psi_core::trigger::Trigger>,

    /// Give up after this long and exit 124 (default: wait forever).
    #[arg(long, value_parser = psi_core::duration::parse)]
    pub timeout: Option<Duration>,
}

impl WaitArgs {
    /// The general target form of this command's single target.
    pub fn targets(&self) -> Targets {
        Targets {
            paths: self.path.iter().cloned().collect(),
            pid: self.pid.into_iter().collect(),
            pid_flag: self.pid_flag.iter().cloned().collect(),
            flag_path: self.flag_path.clone(),
            system: false,
        }
    }
}

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always, even through a pipe (an explicit flag wins over NO_COLOR).
    Always,
    /// Never.
    Never,
}

/// `psi read --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns, one row per resource and line.
    Table,
    /// One JSON object per target (see the README for the schema).
    Json,
    /// The Prometheus text exposition format, as psi-exporter serves it.
    Prometheus,
}

/// `psi watch --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchFormat {
    /// A live table on a terminal; one logfmt line per target and tick otherwise.
    Table,
    /// One JSON object per target and tick.
    Json,
}

/// `psi top --sort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortBy {
    /// CPU.
    Cpu,
    /// Memory.
    Memory,
    /// IO.
    Io,
}

impl SortBy {
    /// The resource sorted by.
    pub fn resource(self) -> psi_core::Resource {
        match self {
            SortBy::Cpu => psi_core::Resource::Cpu,
            SortBy::Memory => psi_core::Resource::Memory,
            SortBy::Io => psi_core::Resource::Io,
        }
    }
}

/// `psi top --line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LineChoice {
    /// At least one task stalled.
    Some,
    /// Every non-idle task stalled at once.
    Full,
}

impl LineChoice {
    /// The kernel's line.
    pub fn line(self) -> psi_core::Line {
        match self {
            LineChoice::Some => psi_core::Line::Some,
            LineChoice::Full => psi_core::Line::Full,
        }
    }
}

fn parse_trigger(s: &str) -> Result<psi_core::trigger::Trigger, String> {
    s.parse()
        .map_err(|e: psi_core::trigger::TriggerError| e.to_string())
}

/// A duration above zero, in psi's one grammar ([`psi_core::duration`]).
fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = psi_core::duration::parse(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("the interval must be above zero".to_owned());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn intervals_are_above_zero() {
        assert_eq!(parse_interval("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("1h").is_err());
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("psi").chain(args.iter().copied()))
    }

    #[test]
    fn check_takes_several_rules_after_max() {
        let cli = parse(&[
            "check",
            "/x",
            "--max",
            "cpu.some.avg10=40",
            "memory.full.rate=5%",
        ])
        .expect("valid");
        let Command::Check(args) = cli.command else {
            panic!("check")
        };
        assert_eq!(args.max.len(), 2);
        assert_eq!(args.targets.paths, [PathBuf::from("/x")]);
        assert!(parse(&["check", "/x"]).is_err(), "--max is required");
    }

    #[test]
    fn wait_takes_one_target() {
        assert!(parse(&["wait", "/x", "--pid", "1", "-t", "cpu some 1s 2s"]).is_err());
        assert!(parse(&["wait", "/x", "-t", "cpu some 1s 2s", "--timeout", "3s"]).is_ok());
        let e = parse(&["wait", "/x", "-t", "cpu some 3s 2s"]).expect_err("stall > window");
        assert!(e.to_string().contains("at most the window"), "{e}");
    }
}
