//! psi-exporter: Linux pressure stall information as Prometheus metrics.
//!
//! A thin binary over `psi_core`: [`cli`] reads the flags, [`target`] follows
//! what is monitored, [`app`] writes each endpoint's body, [`http`] serves them.

mod app;
mod auth;
mod cli;
mod conn;
mod http;
mod node;
mod stats;
mod target;
mod triggers;
mod web;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use psi_core::cgroup;
use psi_core::discover;
use psi_core::expose::Families;
use psi_core::node::Levels;
use psi_core::report::Chain;
use psi_core::target::Target;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_subscriber::filter::LevelFilter;

use crate::app::{App, Source};
use crate::cli::{Cli, LogLevel, ModeChoice};
use crate::http::Limits;
use crate::node::NodeSource;
use crate::target::{Mode, Tracker};
use crate::triggers::Triggers;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_level);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // Printed once, through the log: stderr is where both go.
        Err(e) => {
            tracing::error!("{e:#}");
            // A configuration the operator must fix, as a usage error is.
            if e.downcast_ref::<web::ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn init_logging(level: LogLevel) {
    let level = match level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        // stderr may be a full disk or a pipe whose reader is gone: a line
        // that cannot be written is lost. tracing-subscriber would report
        // it with `eprintln!`, which panics on that same stderr.
        .log_internal_errors(false)
        .init();
}

/// The cgroup v2 mount: `--cgroup-root`, else the one this process sees.
/// Each caller says what it needed the mount for.
fn cgroup_mount(cli: &Cli) -> Result<PathBuf, cgroup::MountError> {
    match &cli.cgroup_root {
        Some(root) => Ok(root.clone()),
        None => cgroup::find_mount(&cli.proc_root).map(|m| m.point),
    }
}

/// Chooses what to export: `--cgroup`, `--system`, discovery when our own
/// pid_flag exists, else the system (so a laptop shows something real).
/// `found` is the cgroup v2 mount, or why there is none.
fn mode(cli: &Cli, found: &Result<PathBuf, cgroup::MountError>) -> anyhow::Result<Mode> {
    if let Some(dir) = &cli.cgroup {
        let mount = match found {
            Ok(m) => Some(m.as_path()),
            Err(e) if !dir.is_absolute() => {
                return Err(anyhow::anyhow!(
                    "--cgroup {} is relative, which needs the cgroup v2 mount: {}: give an absolute path, or name the mount with --cgroup-root",
                    dir.display(),
                    Chain(e)
                ));
            }
            Err(_) => None,
        };
        let target = Target::resolve(dir, mount).map_err(|e| {
            // Without a cgroup v2 mount no path is a live cgroup: say why.
            let unmounted = match found {
                Err(why) => format!(" ({}: is cgroup2 mounted where this runs?)", Chain(why)),
                Ok(_) => String::new(),
            };
            anyhow::anyhow!(
                "--cgroup {}: {}: give a cgroup v2 directory such as /sys/fs/cgroup/system.slice{unmounted}",
                dir.display(),
                Chain(&e)
            )
        })?;
        tracing::info!(cgroup = %target.dir.display(), kind = %target.kind, "exporting one cgroup");
        return Ok(Mode::Cgroup(target));
    }
    if cli.system {
        tracing::info!("exporting the system-wide pressure (--system)");
        return Ok(Mode::System(cli.proc_root.clone()));
    }
    if !cli.pid_flag_file.exists() {
        tracing::info!(
            pid_flag_file = %cli.pid_flag_file.display(),
            "no pid_flag file: exporting the system-wide {}/pressure; in a pod, mount the flag there or pass --cgroup",
            cli.proc_root.display()
        );
        return Ok(Mode::System(cli.proc_root.clone()));
    }
    let config = discover::Config {
        proc_root: cli.proc_root.clone(),
        own_flag: cli.pid_flag_file.clone(),
        flag_path: cli.pid_flag_path.clone(),
        cgroup_mount: cli.cgroup_root.clone(),
    };
    // Fail early on a flag we cannot read: every search would fail the same way.
    let flag = discover::read_flag_at(&config.own_flag)?;
    if let Err(e) = found {
        tracing::warn!(
            error = %Chain(e),
            "no cgroup v2 mount: the monitored container is read through its own /sys/fs/cgroup only, and one without it cannot be resolved; mount cgroup2, or name its mount with --cgroup-root"
        );
    }
    tracing::info!(
        pid_flag_file = %config.own_flag.display(),
        pid_flag_path = %config.flag_path.display(),
        flag = %flag,
        "discovering the monitored container by its pid_flag"
    );
    Ok(Mode::Discover(config))
}

fn families(cli: &Cli) -> Families {
    match cli.mode {
        ModeChoice::Sidecar => Families {
            standard: !cli.no_standard_metrics,
            averages: !cli.no_averages,
            legacy: !cli.no_legacy_metrics,
            throttling: !cli.no_throttling,
            availability: true,
        },
        // Many cgroups: the counters, and the averages only when asked.
        ModeChoice::Node => Families {
            standard: !cli.no_standard_metrics,
            averages: cli.averages && !cli.no_averages,
            legacy: false,
            throttling: false,
            availability: false,
        },
    }
}

/// The sidecar's target, searched for once before the first scrape.
fn sidecar(cli: &Cli) -> anyhow::Result<Source> {
    // Looked for once: the mode and the tracker both name cgroups by it.
    let mount = cgroup_mount(cli);
    let mut target = Tracker::new(
        mode(cli, &mount)?,
        mount.ok(),
        cli.rediscover_interval,
        !cli.no_throttling,
    );
    target.refresh();
    Ok(Source::Sidecar(Box::new(target)))
}

/// Node mode: every selected cgroup under the cgroup mount. `soft` is the
/// limit on open files, `connections` how many of them the connections may
/// take.
fn node(cli: &Cli, soft: u64, connections: usize) -> anyhow::Result<Source> {
    anyhow::ensure!(
        cli.cgroup.is_none() && !cli.system && cli.triggers.is_empty(),
        "--cgroup, --system and --trigger are for one target: leave them out with --mode node"
    );
    let mount = cgroup_mount(cli).map_err(|e| {
        anyhow::anyhow!(
            "nothing to walk: {}: pass --cgroup-root, the cgroup v2 mount (in a DaemonSet, the host's /sys/fs/cgroup as a read-only hostPath, such as /host/sys/fs/cgroup)",
            Chain(&e)
        )
    })?;
    anyhow::ensure!(
        mount.is_dir(),
        "--cgroup-root {} is not a directory: give the cgroup v2 mount (in a DaemonSet, the host's, such as /host/sys/fs/cgroup)",
        mount.display()
    );
    let levels = cli
        .level
        .iter()
        .copied()
        .reduce(|a, b| a | b)
        .unwrap_or(Levels::POD);
    // What is left for the listener, the connections and the logs.
    let reserve = connections + 64;
    let budget = usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .saturating_sub(reserve);
    tracing::info!(
        soft,
        open_budget = budget,
        "descriptor budget for kept-open files"
    );
    let config = psi_core::node::Config {
        levels,
        max_depth: cli.max_depth,
        pod_logs: Some(cli.pod_logs_dir.clone()),
        container_logs: Some(cli.container_logs_dir.clone()),
        keep_sandbox: cli.keep_sandbox,
        open_budget: budget,
        ..psi_core::node::Config::new(mount.clone(), levels)
    };
    let (include, exclude) = (cli.include.clone(), cli.exclude.clone());
    let node = psi_core::node::Node::new(config).with_filter(move |cgroup| {
        include.as_ref().is_none_or(|r| r.is_match(cgroup))
            && !exclude.as_ref().is_some_and(|r| r.is_match(cgroup))
    });
    let mut source = NodeSource::new(node, cli.rescan_interval);
    let found = source.node().len();
    tracing::info!(mount = %mount.display(), cgroups = found, "exporting the node's cgroups");
    Ok(Source::Node(Box::new(source)))
}

/// Descriptors the exporter keeps for itself beside its connections and
/// kept-open files: stdio, the runtime, the listener, a file being opened,
/// read and closed, a directory being walked, discovery's handles.
const OWN_FDS: u64 = 32;

/// Connections served at once: `--max-connections`, fewer when the limit
/// on open files cannot hold that many beside [`OWN_FDS`]. Each connection
/// is a descriptor; were they allowed to take the last ones, a scrape could
/// not open the files it reads (`EMFILE`), and would answer without them.
fn connections(asked: usize, soft: u64) -> usize {
    let room = usize::try_from(soft.saturating_sub(OWN_FDS)).unwrap_or(usize::MAX);
    if room < asked {
        tracing::warn!(
            max_connections = asked,
            open_files = soft,
            serving = room.max(1),
            "the open-file limit cannot hold --max-connections beside the files a scrape reads: fewer connections are served at once (raise ulimit -n)"
        );
    }
    asked.min(room).max(1)
}

/// The limits on open files: soft and hard.
fn nofile() -> (u64, u64) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    (
        limit.current.unwrap_or(u64::MAX),
        limit.maximum.unwrap_or(u64::MAX),
    )
}

/// Raises the soft limit on open files to the hard one (a node has more
/// cgroups than the usual 1,024), and returns both.
fn raise_nofile() -> (u64, u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (soft, hard) = nofile();
    if soft < hard {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return (hard, hard),
            Err(e) => tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit"),
        }
    }
    (soft, hard)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let addr = cli.listen_addr().map_err(anyhow::Error::msg)?;
    // Loaded first: a bad file stops the exporter before anything starts.
    let stats = Arc::new(stats::Stats::default());
    let web = match &cli.web_config_file {
        Some(path) => {
            let live = web::Live::load(path, stats.clone())?;
            let web = live.current();
            tracing::info!(file = %path.display(), tls = web.tls.is_some(), basic_auth = !web.users.is_empty(), "web config loaded");
            live
        }
        None => web::Live::plain(stats.clone()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    // Caught from here on: a SIGTERM while the target is searched for or
    // the tree walked is kept, and stops the server as soon as it is up
    // (exit 0), rather than killing the process.
    let signals = {
        let _entered = runtime.enter();
        Signals::install()
    };
    let (soft, hard) = match cli.mode {
        ModeChoice::Sidecar => nofile(),
        ModeChoice::Node => raise_nofile(),
    };
    tracing::debug!(soft, hard, "limits on open files");
    // The probe port's own places come out of the same descriptors.
    let probe_places = if cli.health_listen.is_some() {
        http::HEALTH_CONNECTIONS as u64
    } else {
        0
    };
    let connections = connections(
        cli.max_connections.max(1),
        soft.saturating_sub(probe_places),
    );
    let source = match cli.mode {
        ModeChoice::Sidecar => sidecar(&cli)?,
        ModeChoice::Node => node(&cli, soft, connections)?,
    };
    let triggers =
        Triggers::start(cli.triggers.clone()).context("failed to start the trigger thread")?;
    let app = App::new(source, families(&cli), triggers, stats);
    let app = Arc::new(Mutex::new(app));
    let limits = Limits {
        max_connections: connections,
        timeouts: crate::conn::Timeouts {
            header: cli.header_timeout,
            write: cli.write_timeout,
            idle: cli.idle_timeout,
        },
        grace: Duration::from_millis(500),
    };
    runtime.block_on(async move {
        let main = bind(addr).await?;
        let local = main.local_addr().context("failed to read the bound address")?;
        let health = match cli.health_listen {
            Some(addr) => {
                let l = bind(addr).await?;
                let local = l.local_addr().context("failed to read the bound address")?;
                tracing::info!(addr = %local, "serving /health alone, in plain HTTP (--health-listen)");
                Some(l)
            }
            None => None,
        };
        let scheme = if web.current().tls.is_some() { "https" } else { "http" };
        tracing::info!(addr = %local, scheme, version = env!("CARGO_PKG_VERSION"), "serving /metrics, /psi, /health and /");
        let listeners = http::Listeners { main, health };
        http::serve(listeners, app, web, limits, signals.recv()).await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Binds `addr`; the default `[::]` falls back to `0.0.0.0` on hosts without IPv6.
async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() => {
            tracing::debug!(error = %e, "IPv6 unavailable; listening on IPv4 only");
            let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port());
            TcpListener::bind(v4).await.with_context(|| {
                format!("failed to listen on {v4}: is the port in use? set PORT or --listen")
            })
        }
        Err(e) => Err(e).with_context(|| {
            format!("failed to listen on {addr}: is the port in use? set PORT or --listen")
        }),
    }
}

/// SIGTERM (Kubernetes stopping the pod) and SIGINT (Ctrl-C), caught from
/// [`install`](Signals::install) on.
struct Signals(Option<(Signal, Signal)>);

impl Signals {
    /// Catches both signals; must run inside the runtime that will await
    /// them. Without handlers (an error logged), only SIGKILL stops us.
    fn install() -> Signals {
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Signals(Some((term, int))),
            _ => {
                tracing::error!("cannot install signal handlers; stop with SIGKILL");
                Signals(None)
            }
        }
    }

    /// Resolves on the first of the two, including one that came before
    /// this was awaited.
    async fn recv(self) {
        let Some((mut term, mut int)) = self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_the_exporter_its_own_descriptors() {
        // (asked, soft limit, served)
        for (asked, soft, served) in [
            (256, 1 << 20, 256),
            (256, 1024, 256),
            (256, 64, 32),
            (10, 64, 10),
            (256, 20, 1),
            (256, u64::MAX, 256),
        ] {
            assert_eq!(connections(asked, soft), served, "{asked} at {soft}");
        }
    }
}
