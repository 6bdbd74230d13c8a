//! `aura cluster`: inspect and change a running cluster through any
//! node's cluster listener.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use aura_raft::network::{CallError, Faults, PeerClient};
use aura_raft::node::{AddLearner, ClusterStatus};
use aura_raft::{ClusterError, ClusterSecret, MembershipChange};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Cluster listener of any member.
    #[arg(
        long,
        env = "AURA_CLUSTER_NODE",
        default_value = "127.0.0.1:7411",
        global = true
    )]
    node: String,
    /// The cluster secret file.
    #[arg(
        long,
        env = "AURA_CLUSTER_SECRET_FILE",
        default_value = "aura-data/cluster.secret",
        global = true
    )]
    secret_file: PathBuf,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Members, roles, regions, leader, log indexes and lag.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a node as a learner: it receives the log but does not vote.
    AddLearner {
        id: u64,
        /// Its cluster listener, HOST:PORT.
        addr: String,
        #[arg(long, default_value = "local")]
        region: String,
    },
    /// Make a learner a voter.
    Promote { id: u64 },
    /// Remove a member.
    Remove { id: u64 },
    /// Hand leadership to another voter.
    TransferLeader { id: u64 },
}

/// The operator's requests are signed like a peer's, under node id 0.
const OPERATOR: u64 = 0;

pub fn run(args: ClusterArgs) -> anyhow::Result<ExitCode> {
    let secret = ClusterSecret::read(&args.secret_file)?;
    let client = PeerClient::new(OPERATOR, secret, Faults::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match args.command {
            ClusterCommand::Status { json } => status(&client, &args.node, json).await,
            ClusterCommand::AddLearner { id, addr, region } => {
                change(
                    &client,
                    &args.node,
                    MembershipChange::AddLearner(AddLearner { id, addr, region }),
                )
                .await
            }
            ClusterCommand::Promote { id } => {
                change(&client, &args.node, MembershipChange::Promote(id)).await
            }
            ClusterCommand::Remove { id } => {
                change(&client, &args.node, MembershipChange::Remove(id)).await
            }
            ClusterCommand::TransferLeader { id } => {
                change(&client, &args.node, MembershipChange::TransferLeader(id)).await
            }
        }
    })
}

fn explain(addr: &str, e: CallError) -> anyhow::Error {
    match e {
        // Its refusal is signed under its own secret, which ours cannot
        // check: refused, or forged, the request did not go through.
        CallError::Status { status: 401, .. } | CallError::Unauthenticated { status: 401, .. } => {
            anyhow::anyhow!(
                "{addr} refused the request: the secret file does not hold this cluster's secret"
            )
        }
        e => anyhow::anyhow!(e),
    }
}

async fn fetch_status(client: &PeerClient, addr: &str) -> anyhow::Result<ClusterStatus> {
    let bytes = client
        .get_bytes(addr, "/cluster/status", Duration::from_secs(10))
        .await
        .map_err(|e| explain(addr, e))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{addr} sent a status this aura cannot read"))
}

async fn status(client: &PeerClient, addr: &str, json: bool) -> anyhow::Result<ExitCode> {
    let mut status = fetch_status(client, addr).await?;
    // Replication progress is only known to the leader.
    if let Some(leader) = status.leader_addr.clone()
        && status.leader != Some(status.node)
        && let Ok(ls) = fetch_status(client, &leader).await
    {
        for m in &mut status.members {
            if let Some(lm) = ls.members.iter().find(|x| x.id == m.id) {
                m.matched = lm.matched;
                m.lag = lm.lag;
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    match status.leader {
        Some(l) => println!(
            "leader: node {l} ({}), term {}",
            status.leader_addr.as_deref().unwrap_or("address unknown"),
            status.term
        ),
        None => println!("leader: none known (term {})", status.term),
    }
    let idx = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    println!(
        "answered by node {} ({:?}, region {}): last log {}, committed {}, applied {}, snapshot {}, purged {}",
        status.node,
        status.role,
        status.region,
        idx(status.last_log_index),
        idx(status.committed),
        idx(status.applied),
        idx(status.snapshot),
        idx(status.purged)
    );
    println!("state digest: {}", status.state_digest);
    match status.log_format {
        0 => println!("log format: not reported (an older version)"),
        f => println!("log format written: {f}"),
    }
    println!(
        "{:<4} {:<8} {:<14} {:<22} {:>8} {:>6}",
        "ID", "ROLE", "REGION", "ADDRESS", "MATCHED", "LAG"
    );
    for m in &status.members {
        let role = if Some(m.id) == status.leader {
            "leader"
        } else if m.voter {
            "voter"
        } else {
            "learner"
        };
        println!(
            "{:<4} {:<8} {:<14} {:<22} {:>8} {:>6}",
            m.id,
            role,
            m.region,
            m.addr,
            idx(m.matched),
            idx(m.lag)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn change(
    client: &PeerClient,
    addr: &str,
    change: MembershipChange,
) -> anyhow::Result<ExitCode> {
    let what = format!("{change:?}");
    let r: Result<(), ClusterError> = client
        .post_json(
            None,
            addr,
            "/cluster/membership",
            &change,
            Duration::from_secs(120),
        )
        .await
        .map_err(|e| explain(addr, e))?;
    match r {
        Ok(()) => {
            println!("done: {what}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: the cluster refused {what}: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
