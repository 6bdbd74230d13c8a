//! Command-line interface. Each subcommand lives in its own module.

mod audit;
mod cluster;
mod kek;
mod mission;
mod platform;
mod policy;
mod serve;
mod simulate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "aura",
    version,
    about = "AURA: agent execution governance runtime",
    long_about = "AURA gives every agent a cryptographic identity, moves every task \
                  through an 8-state mission machine and records every step in a \
                  tamper-evident audit chain."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with audit chains.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Work with missions' records.
    #[command(subcommand)]
    Mission(mission::MissionCommand),
    /// Work with policy bundles.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Run a deterministic simulated workload through the governance engine
    /// and check it: invariants after every command, replay to the same
    /// state digest, snapshot round trip, and a verified audit export.
    Simulate(simulate::SimulateArgs),
    /// Start a node. With no options: a one-node cluster in ./aura-data.
    Serve(Box<serve::ServeArgs>),
    /// Inspect and change a running cluster.
    Cluster(cluster::ClusterArgs),
    /// List, rotate and revoke the platform's keys (through the API).
    PlatformKey(platform::PlatformKeyArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Audit(cmd) => audit::run(cmd),
        Command::Mission(cmd) => mission::run(cmd),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Simulate(args) => simulate::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Cluster(args) => cluster::run(args),
        Command::PlatformKey(args) => platform::run(args),
    }
}

/// Logs to stderr; `AURA_LOG` takes a tracing filter (default: AURA at
/// `info`, openraft's own chatter at `warn`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AURA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
