//! Commit throughput and latency of the replicated engine, next to the raw
//! floor of the same disk, all in one run:
//!
//! - raw: append + `fdatasync` of log records of the same size, one record
//!   per sync (single) and 64 per sync (batched);
//! - 1 node and 3 nodes (HTTP on loopback): proposals applied by the
//!   engine, one client (sequential) and 64 concurrent clients.
//!
//! `cargo bench -p aura-raft --bench raft` (set `AURA_BENCH_OPS` to change
//! the number of operations per row).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use aura_engine::machine::Command;
use aura_engine::sim::{self, WorkloadShape};
use aura_raft::log_file::{self, Record};
use aura_raft::node::Role;
use aura_raft::testkit;
use aura_raft::types::{AuraRaft, Entry, Proposal};
use aura_raft::{ClusterSecret, Node};
use openraft::entry::RaftEntry;
use openraft::testing::log_id;

const CLIENTS: usize = 64;

struct Row {
    name: String,
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Row {
    fn per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l[((l.len() as f64 * p) as usize).min(l.len() - 1)]
    }
}

fn ops() -> usize {
    std::env::var("AURA_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// Per-tenant command streams, each in its own order, so that concurrent
/// clients (one per tenant) all propose commands the engine accepts.
fn streams(total: usize) -> Vec<Vec<Command>> {
    let cmds = sim::generate(
        3,
        WorkloadShape {
            tenants: CLIENTS as u32,
            missions: (total / 6).max(CLIENTS * 2) as u32,
            ..WorkloadShape::default()
        },
    );
    let mut by_tenant: BTreeMap<String, Vec<Command>> = BTreeMap::new();
    for c in cmds {
        by_tenant.entry(c.tenant.to_string()).or_default().push(c);
    }
    by_tenant.into_values().collect()
}

fn record_bytes(cmd: &Command) -> Vec<u8> {
    let mut out = Vec::new();
    let entry = Entry::new_normal(log_id::<AuraRaft>(1, 1, 1), Proposal::new(cmd.clone()));
    log_file::encode(&Record::Entry(Box::new(entry)), &mut out);
    out
}

fn raw(dir: &Path, name: &str, records: &[Vec<u8>], batch: usize) -> Row {
    let path = dir.join(format!("raw-{batch}.log"));
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let mut latencies = Vec::new();
    let start = Instant::now();
    for chunk in records.chunks(batch) {
        let t = Instant::now();
        let buf: Vec<u8> = chunk.concat();
        f.write_all(&buf).unwrap();
        f.sync_data().unwrap();
        let d = t.elapsed();
        latencies.extend(std::iter::repeat_n(d, chunk.len()));
    }
    Row {
        name: name.into(),
        ops: records.len(),
        elapsed: start.elapsed(),
        latencies,
    }
}

async fn cluster(dir: &Path, n: u64) -> Vec<Node> {
    let nodes = testkit::cluster(dir, n, &ClusterSecret::random(), |c| {
        c.data_dir = dir.join(format!("n{n}-{}", c.id));
        c.snapshot_every = 10_000;
    })
    .await;
    testkit::leader_of(&nodes).await;
    nodes
}

async fn proposals(
    name: &str,
    leader: &Node,
    streams: &[Vec<Command>],
    clients: usize,
    total: usize,
) -> Row {
    let per_client = total / clients;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for s in streams.iter().take(clients) {
        let node = leader.clone();
        let cmds: Vec<Command> = s.iter().take(per_client).cloned().collect();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(cmds.len());
            for c in cmds {
                let t = Instant::now();
                node.propose(c).await.expect("proposal commits");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    Row {
        name: name.into(),
        ops: latencies.len(),
        elapsed: start.elapsed(),
        latencies,
    }
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent; do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let total = ops();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let streams = streams(total);
    let sample: Vec<Vec<u8>> = streams
        .iter()
        .flat_map(|s| s.iter().take(total / CLIENTS))
        .map(record_bytes)
        .collect();
    let mut rows = vec![
        raw(dir.path(), "raw append+fdatasync, 1 per sync", &sample, 1),
        raw(
            dir.path(),
            "raw append+fdatasync, 64 per sync",
            &sample,
            CLIENTS,
        ),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for n in [1u64, 3] {
            let nodes = cluster(dir.path(), n).await;
            let leader = nodes
                .iter()
                .find(|x| x.progress().role == Role::Leader)
                .unwrap()
                .clone();
            // Sequential: one client, in-order per tenant.
            let seq: Vec<Vec<Command>> = vec![
                streams
                    .iter()
                    .flat_map(|s| s.iter().take(total / CLIENTS / 4))
                    .cloned()
                    .collect(),
            ];
            rows.push(
                proposals(
                    &format!("{n} node(s), 1 client"),
                    &leader,
                    &seq,
                    1,
                    seq[0].len(),
                )
                .await,
            );
            let rest: Vec<Vec<Command>> = streams
                .iter()
                .map(|s| s[total / CLIENTS / 4..].to_vec())
                .collect();
            rows.push(
                proposals(
                    &format!("{n} node(s), {CLIENTS} clients"),
                    &leader,
                    &rest,
                    CLIENTS,
                    total,
                )
                .await,
            );
            let syncs = leader
                .log()
                .stats()
                .syncs
                .load(std::sync::atomic::Ordering::Relaxed);
            let appends = leader
                .log()
                .stats()
                .appends
                .load(std::sync::atomic::Ordering::Relaxed);
            eprintln!("{n} node(s): leader log {appends} appends in {syncs} syncs");
            for x in &nodes {
                x.shutdown().await;
            }
        }
    });
    let floor = rows[0].per_sec();
    let batched_floor = rows[1].per_sec();
    println!(
        "{:<38} {:>8} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "row", "ops", "ops/s", "p50", "p99", "÷raw1", "÷raw64"
    );
    for r in &rows {
        println!(
            "{:<38} {:>8} {:>12.0} {:>10.2?} {:>10.2?} {:>10.2} {:>10.3}",
            r.name,
            r.ops,
            r.per_sec(),
            r.pct(0.50),
            r.pct(0.99),
            r.per_sec() / floor,
            r.per_sec() / batched_floor
        );
    }
}
