//! Command-line flags and environment variables.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use psi_core::cgroup::logs::{CONTAINER_LOGS, POD_LOGS};
use psi_core::node::Levels;
use psi_core::trigger::Trigger;

/// Serve Linux pressure stall information (PSI) as Prometheus metrics.
///
/// A drop-in for the Go "CgroupV2 PSI Sidecar": in a Kubernetes pod with
/// `shareProcessNamespace: true` it finds the monitored container by its
/// pid_flag (the process whose `/etc/pid_flag` equals this container's
/// `/etc/pid_flag_sc`) and exports that container's cgroup pressure. With
/// `--cgroup` it exports one cgroup; with `--system`, or when there is no
/// `/etc/pid_flag_sc`, the system-wide `/proc/pressure`. With `--mode node`
/// (a DaemonSet) it exports every selected cgroup of the node instead,
/// labelled with its cgroup path, QoS class, pod UID and container ID, and
/// the namespace, pod and container names of the kubelet's log directories.
///
/// Endpoints: `/` (homepage), `/health` (probes), `/psi` (JSON), `/metrics`.
#[derive(Debug, Parser)]
#[command(
    name = "psi-exporter",
    version,
    after_help = "Examples:\n  \
        psi-exporter                                  # sidecar in a pod, or the system on a laptop\n  \
        PORT=9100 psi-exporter --system               # system-wide pressure on :9100\n  \
        psi-exporter --cgroup /sys/fs/cgroup/unified/system.slice --listen 127.0.0.1:9101\n  \
        psi-exporter --no-legacy-metrics              # only the psi_* families\n  \
        psi-exporter --mode node --cgroup-root /host/sys/fs/cgroup --level pod,container"
)]
pub struct Cli {
    /// Port to serve on, when --listen gives none. The Go sidecar's `PORT`.
    #[arg(long, env = "PORT", default_value_t = 2333)]
    pub port: u16,

    /// Address to listen on: an IP (`0.0.0.0`, `::`) served on --port, or an
    /// `IP:PORT` that overrides --port. Default: every address, IPv6 and IPv4.
    #[arg(long, env = "PSI_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// This container's own pid_flag: a file, or a ConfigMap directory holding it.
    #[arg(long, env = "PSI_PID_FLAG_FILE", default_value = "/etc/pid_flag_sc")]
    pub pid_flag_file: PathBuf,

    /// Where the monitored container keeps its pid_flag, inside its own root.
    #[arg(long, env = "PSI_PID_FLAG_PATH", default_value = "/etc/pid_flag")]
    pub pid_flag_path: PathBuf,

    /// The proc file system to scan for the monitored container.
    #[arg(long, env = "PSI_PROC_ROOT", default_value = "/proc")]
    pub proc_root: PathBuf,

    /// The cgroup v2 mount that `/proc/<pid>/cgroup` paths (and a relative
    /// --cgroup) are joined onto. Default: found in /proc/self/mountinfo.
    #[arg(long, env = "PSI_CGROUP_ROOT")]
    pub cgroup_root: Option<PathBuf>,

    /// Export this cgroup directory and skip pid_flag discovery. A relative
    /// path is taken under the cgroup v2 mount, or under the current
    /// directory when it starts with ./ or ../ or exists only there.
    #[arg(long, env = "PSI_CGROUP", conflicts_with = "system")]
    pub cgroup: Option<PathBuf>,

    /// Export the system-wide `/proc/pressure` files and skip discovery.
    #[arg(long, env = "PSI_SYSTEM")]
    pub system: bool,

    /// Leave out the Go sidecar's `cgroup_monitor_sc_monitored_*_psi` gauges.
    #[arg(long, env = "PSI_NO_LEGACY_METRICS")]
    pub no_legacy_metrics: bool,

    /// Leave out the `psi_<resource>_{waiting,stalled}_seconds_total` counters.
    #[arg(long, env = "PSI_NO_STANDARD_METRICS")]
    pub no_standard_metrics: bool,

    /// Leave out the `psi_<resource>_{waiting,stalled}_ratio` averages.
    #[arg(long, env = "PSI_NO_AVERAGES")]
    pub no_averages: bool,

    /// Leave out the `psi_cpu_throttled_*` counters from `cpu.stat`.
    #[arg(long, env = "PSI_NO_THROTTLING")]
    pub no_throttling: bool,

    /// A kernel PSI trigger on the target, counted in `psi_trigger_events_total`:
    /// `RESOURCE some|full STALL WINDOW`, e.g. `cpu some 500ms 2s`. Repeat for
    /// more. Without CAP_SYS_RESOURCE the window must be a multiple of 2s.
    #[arg(long = "trigger", env = "PSI_TRIGGERS", value_name = "SPEC", value_delimiter = ',', value_parser = parse_trigger)]
    pub triggers: Vec<Trigger>,

    /// Least time between two searches for a monitored container that is not
    /// (or no longer) found; searches happen at scrape time.
    #[arg(long, env = "PSI_REDISCOVER_INTERVAL", default_value = "1s", value_parser = psi_core::duration::parse)]
    pub rediscover_interval: Duration,

    /// Connections open at once. At the cap, a new connection takes the
    /// place of the one idle the longest (then of one still sending its
    /// headers); it is closed unanswered only when every connection is
    /// answering a request.
    #[arg(long, env = "PSI_MAX_CONNECTIONS", default_value_t = 256)]
    pub max_connections: usize,

    /// Time a client has to send a request's headers, from its first byte
    /// (from the accept, for a connection's first request).
    #[arg(long, env = "PSI_HEADER_TIMEOUT", default_value = "5s", value_parser = psi_core::duration::parse)]
    pub header_timeout: Duration,

    /// Time a client has to take a whole response.
    #[arg(long, env = "PSI_WRITE_TIMEOUT", default_value = "30s", value_parser = psi_core::duration::parse)]
    pub write_timeout: Duration,

    /// Time a kept-alive connection may wait for its next request: longer
    /// than any scrape interval, so Prometheus keeps its connection.
    #[arg(long, env = "PSI_IDLE_TIMEOUT", default_value = "10m", value_parser = psi_core::duration::parse)]
    pub idle_timeout: Duration,

    /// The web configuration file of Prometheus exporters (exporter-toolkit's
    /// `--web.config.file` format): TLS, client certificates, bcrypt basic
    /// auth, response headers. Reloaded when it or a file it names changes,
    /// and on SIGHUP.
    #[arg(long, env = "PSI_WEB_CONFIG_FILE", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Also serve `/health` alone, in plain HTTP and without authentication,
    /// on this address (`PORT` or `IP:PORT`): for kubelet probes when
    /// --web-config-file asks for TLS or basic auth.
    #[arg(long, env = "PSI_HEALTH_LISTEN", value_name = "ADDR", value_parser = parse_health_listen)]
    pub health_listen: Option<SocketAddr>,

    /// Log level, to stderr.
    #[arg(long, env = "PSI_LOG_LEVEL", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// `sidecar`: one target (--cgroup, --system, or the container found by
    /// its pid_flag). `node`: every selected cgroup under --cgroup-root, as a
    /// DaemonSet exports a node's pods and containers.
    #[arg(long, env = "PSI_MODE", value_enum, default_value_t = ModeChoice::Sidecar)]
    pub mode: ModeChoice,

    /// Node mode: which cgroups are exported, a comma list of `node` (the
    /// root), `qos` (kubepods and the QoS cgroups), `pod`, `container`, or
    /// `all` (every cgroup, to --max-depth). Levels are a choice of cgroups,
    /// never a sum: a pod's pressure already counts its containers'.
    #[arg(long, env = "PSI_LEVEL", value_delimiter = ',', default_value = "pod", value_parser = parse_level)]
    pub level: Vec<Levels>,

    /// Node mode: how deep below --cgroup-root cgroups are looked for.
    #[arg(long, env = "PSI_MAX_DEPTH", default_value_t = 8)]
    pub max_depth: usize,

    /// Node mode: export only the cgroups whose `cgroup` label (such as
    /// /kubepods.slice/...) matches this regular expression (anywhere in it;
    /// anchor it with ^ and $).
    #[arg(long, env = "PSI_INCLUDE", value_name = "REGEX")]
    pub include: Option<regex::Regex>,

    /// Node mode: leave out the cgroups whose `cgroup` label matches this
    /// regular expression (applied after --include).
    #[arg(long, env = "PSI_EXCLUDE", value_name = "REGEX")]
    pub exclude: Option<regex::Regex>,

    /// Node mode: export the kernel's averages too (`psi_*_ratio{window}`).
    /// Off by default: Prometheus computes rates from the counters, and the
    /// averages are three series more per line and cgroup.
    #[arg(long, env = "PSI_AVERAGES")]
    pub averages: bool,

    /// Node mode: the kubelet's pod log directory, whose entries
    /// (`<namespace>_<pod>_<uid>/<container>/`) name pods; used when present.
    #[arg(long, env = "PSI_POD_LOGS_DIR", default_value = POD_LOGS, value_name = "DIR")]
    pub pod_logs_dir: PathBuf,

    /// Node mode: the kubelet's container log directory, whose symlinks
    /// (`<pod>_<namespace>_<container>-<id>.log`) name containers; used when
    /// present.
    #[arg(long, env = "PSI_CONTAINER_LOGS_DIR", default_value = CONTAINER_LOGS, value_name = "DIR")]
    pub container_logs_dir: PathBuf,

    /// Node mode: keep each pod's sandbox (pause) container at
    /// --level container. It is told by having no log entry while the pod's
    /// other containers have one.
    #[arg(long, env = "PSI_KEEP_SANDBOX")]
    pub keep_sandbox: bool,

    /// Node mode: least time between two walks of the cgroup tree, which
    /// find new cgroups and re-read the names; walks happen at scrape time.
    #[arg(long, env = "PSI_RESCAN_INTERVAL", default_value = "10s", value_parser = psi_core::duration::parse)]
    pub rescan_interval: Duration,
}

/// The exporter's two modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeChoice {
    /// One target: the Go sidecar's drop-in.
    Sidecar,
    /// Every selected cgroup of a node.
    Node,
}

fn parse_level(s: &str) -> Result<Levels, String> {
    Levels::from_name(s.trim())
        .ok_or_else(|| format!("unknown level {s:?}: use node, qos, pod, container or all"))
}

/// How much to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// Start, stop, and the target found or lost.
    Info,
    /// Every request.
    Debug,
    /// Everything.
    Trace,
}

impl Cli {
    /// The socket address to listen on.
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        let Some(listen) = self.listen.as_deref() else {
            return Ok(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                self.port,
            ));
        };
        if let Ok(addr) = listen.parse::<SocketAddr>() {
            return Ok(addr);
        }
        let ip = listen.trim_start_matches('[').trim_end_matches(']');
        ip.parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, self.port))
            .map_err(|_| format!("--listen {listen:?} is neither an IP address nor IP:PORT"))
    }
}

fn parse_health_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.parse::<u16>()
        .map(|port| SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port))
        .map_err(|_| format!("{s:?} is neither a port nor IP:PORT"))
}

fn parse_trigger(s: &str) -> Result<Trigger, String> {
    s.parse()
        .map_err(|e: psi_core::trigger::TriggerError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("psi-exporter").chain(args.iter().copied()))
            .expect("valid arguments")
    }

    #[test]
    fn listen_forms() {
        assert_eq!(
            cli(&["--port", "9"]).listen_addr(),
            Ok("[::]:9".parse().expect("addr"))
        );
        assert_eq!(
            cli(&["--listen", "127.0.0.1", "--port", "9"]).listen_addr(),
            Ok("127.0.0.1:9".parse().expect("addr"))
        );
        assert_eq!(
            cli(&["--listen", "127.0.0.1:7", "--port", "9"]).listen_addr(),
            Ok("127.0.0.1:7".parse().expect("addr"))
        );
        assert_eq!(
            cli(&["--listen", "[::1]"]).listen_addr(),
            Ok("[::1]:2333".parse().expect("addr"))
        );
        assert!(cli(&["--listen", "localhost"]).listen_addr().is_err());
    }

    #[test]
    fn durations_in_psis_grammar() {
        let c = cli(&["--rediscover-interval", "1.5s", "--header-timeout", "3"]);
        assert_eq!(c.rediscover_interval, Duration::from_millis(1500));
        assert_eq!(c.header_timeout, Duration::from_secs(3));
        let bad = Cli::try_parse_from(["psi-exporter", "--header-timeout", "2h"]);
        assert!(bad.is_err());
    }

    #[test]
    fn triggers_repeat_and_split_on_commas() {
        let c = cli(&[
            "--trigger",
            "cpu some 500ms 2s",
            "--trigger",
            "memory full 1s 4s,io some 200ms 2s",
        ]);
        let specs: Vec<String> = c.triggers.iter().map(ToString::to_string).collect();
        assert_eq!(
            specs,
            ["cpu some 500ms 2s", "memory full 1s 4s", "io some 200ms 2s"]
        );
        let bad = Cli::try_parse_from(["psi-exporter", "--trigger", "cpu some 3s 2s"]);
        let msg = bad.expect_err("stall above window").to_string();
        assert!(
            msg.contains("the stall threshold must be at most the window"),
            "{msg}"
        );
    }

    #[test]
    fn cgroup_and_system_conflict() {
        let r = Cli::try_parse_from(["psi-exporter", "--system", "--cgroup", "/x"]);
        assert!(r.is_err());
    }
}
