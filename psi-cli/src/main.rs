//! `psi`: read, watch, rank, check and wait on Linux pressure stall
//! information, on a node or in a pod, without Prometheus.
//!
//! A thin binary over `psi_core`, which reads, resolves, rates and formats:
//! [`cli`] is the clap definition, [`target`] turns arguments into
//! `psi_core` targets with advice in this command's words, [`rule`] holds
//! `psi check`'s thresholds, [`view`] prints readings with [`ui`], and
//! [`cmd`] holds one module per subcommand. Exit codes are in [`exit`].

mod cli;
mod cmd;
mod exit;
mod rule;
mod target;
mod ui;
mod view;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::exit::Exit;
use crate::target::Env;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(exit) => exit.into(),
        // `psi watch | head` closing the pipe is not an error.
        Err(e) if is_broken_pipe(&e) => Exit::Success.into(),
        Err(e) => {
            crate::ui::say!("psi: {e:#}");
            Exit::Error.into()
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    let color = ui::style::use_color(cli.color);
    let env = Env::new(cli.proc_root, cli.cgroup_root);
    match cli.command {
        Command::Read(args) => cmd::read::run(&args, &env, color),
        Command::Watch(args) => cmd::watch::run(&args, &env, color),
        Command::Top(args) => cmd::top::run(&args, &env, color),
        Command::Check(args) => cmd::check::run(&args, &env, color),
        Command::Wait(args) => cmd::wait::run(&args, &env),
        Command::Completions { shell } => cmd::generate::completions(shell),
        Command::Man { dir } => cmd::generate::man(dir.as_deref()),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
