//! Command-line interface. Each subcommand lives in its own module.

mod audit;
mod policy;
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
    /// Work with policy bundles.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Run a deterministic simulated workload through the governance engine
    /// and check it: invariants after every command, replay to the same
    /// state digest, snapshot round trip, and a verified audit export.
    Simulate(simulate::SimulateArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Audit(cmd) => audit::run(cmd),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Simulate(args) => simulate::run(args),
    }
}
