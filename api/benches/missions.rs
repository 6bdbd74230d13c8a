//! Full missions per second: created over the API, planned by the scripted
//! reasoner, permitted by policy, queued, claimed, three tool steps through
//! the gateway against a local no-op tool, each reported, and sealed (all
//! eight states), on one node and on a three-node loopback cluster in the
//! same run. `cargo bench -p aura-api --bench missions`
//! (`AURA_BENCH_MISSIONS`, `AURA_BENCH_CLIENTS` change the load,
//! `AURA_BENCH_EXECUTOR_CONCURRENCY` the missions each node runs at once,
//! `AURA_BENCH_ONLY=1` or `3` runs one cluster size alone).
//!
//! Next to each rate it gives the process's CPU time per mission (every
//! node, the creating clients and the tool share the process) and the
//! rate that CPU cost allows on this machine's cores: when the two are
//! close, the run was bound by CPU, not by waiting. It also gives the
//! share of that CPU each replica repeats for the same commands (applying
//! them, writing its log, snapshotting), which on shared cores no number
//! of nodes spreads out.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aura_api::runtime::executor::ExecutorConfig;
use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Db, TestServer};
use aura_api::{ApiConfig, testkit};
use aura_engine::ids::TenantId;
use aura_engine::mission::{MissionState, OutcomeKind};
use aura_engine::time::Millis;
use aura_raft::cpu_clock::process_nanos;
use serde_json::json;

const TOOLS: [&str; 3] = ["erp.post", "erp.read", "erp.mail"];

fn config(concurrency: usize) -> ApiConfig {
    ApiConfig {
        executor: Some(ExecutorConfig {
            worker: "bench".parse().expect("worker id"),
            lease: Millis::from_secs(30),
            concurrency,
        }),
        ..testkit::api_config()
    }
}

async fn setup(nodes: &[TestServer], tool: &RecordingTool, tenant: &str) -> GovernedTenant {
    let g = GovernedTenant::create(&nodes[0], tenant, &tool.url).await;
    for name in &TOOLS[1..] {
        let spec = json!({
            "risk": "L1", "classification": "confidential", "target": "on-prem",
            "invocation": {"endpoint": tool.url, "input_schema": {"type": "object"}, "timeout_ms": 5000}
        });
        let r = g
            .admin
            .raw(
                reqwest::Method::PUT,
                &format!("/v1/tenants/{tenant}/tools/{name}"),
                Some(&spec),
                &[],
            )
            .await;
        assert_eq!(r.status, reqwest::StatusCode::OK, "{:?}", r.body);
    }
    g
}

/// Log entries the first node has applied so far, the commands in them
/// (an executor commits some together), how many it refused, the
/// snapshots it built, their bytes and the bytes written for them, and
/// the log appends and fdatasyncs of all the nodes.
fn applied(nodes: &[TestServer]) -> [u64; 8] {
    let stats = nodes[0].node.applied_stats();
    let snapshots = nodes[0].node.snapshot_stats();
    let [e, c, r, b, s, w] = [
        &stats.entries,
        &stats.commands,
        &stats.refused,
        &snapshots.built,
        &snapshots.bytes,
        &snapshots.written,
    ]
    .map(|n| n.load(Ordering::Relaxed));
    let log = |f: fn(&aura_raft::log_writer::WriterStats) -> &AtomicU64| {
        nodes
            .iter()
            .map(|n| f(n.node.log().stats()).load(Ordering::Relaxed))
            .sum::<u64>()
    };
    [e, c, r, b, s, w, log(|l| &l.appends), log(|l| &l.syncs)]
}

/// The CPU nanoseconds all the nodes have spent so far on what each
/// replica repeats: applying, their logs' writers, their snapshots.
fn repeated_cpu(nodes: &[TestServer]) -> [u64; 3] {
    let all = |f: fn(&aura_raft::Node) -> &AtomicU64| {
        nodes
            .iter()
            .map(|n| f(&n.node).load(Ordering::Relaxed))
            .sum::<u64>()
    };
    [
        all(|n| &n.applied_stats().cpu_nanos),
        all(|n| &n.log().stats().cpu_nanos),
        all(|n| &n.snapshot_stats().cpu_nanos),
    ]
}

/// What one run measured.
struct Measured {
    /// Missions per second.
    rate: f64,
    /// CPU time of the whole process per mission, in milliseconds.
    cpu_ms: f64,
    /// Per mission: entries, commands, refusals, snapshots, snapshot
    /// bytes built and written, log appends and fdatasyncs.
    per_mission: [f64; 8],
    /// CPU milliseconds per mission each replica spent applying, writing
    /// its log and snapshotting (the mean over the nodes).
    repeated_ms: [f64; 3],
}

/// Creates `missions` missions from `clients` clients, round-robin over
/// the nodes, and waits until all are closed; missions per second, CPU
/// per mission, and the entries, commands, refusals and snapshot bytes
/// per mission meanwhile.
async fn run(
    nodes: &[TestServer],
    g: &GovernedTenant,
    missions: usize,
    clients: usize,
) -> Measured {
    let tenant: TenantId = g.tenant.parse().expect("tenant id");
    let (before, repeated_before) = (applied(nodes), repeated_cpu(nodes));
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let cpu_before = process_nanos();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, admin) = (next.clone(), g.admin.clone());
        let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
        let key = admin.key().expect("an admin key").to_owned();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= missions {
                    break;
                }
                // The id is the server's, as an integrator gets by default
                // (it begins with the creation time, which is what keeps
                // snapshots' packs of closed missions stable).
                let body = json!({
                    "namespace": "prod", "agent": "bot",
                    "definition": {"objective": "post, read back and mail", "tools": TOOLS,
                                   "authority": "L1", "timeout": 600_000},
                    "context": {"inputs": {"amount": 1}, "classification": "confidential",
                                "labels": {"aura.executor": "builtin"}}
                });
                let r = http
                    .post(format!(
                        "{}/v1/tenants/{}/missions",
                        bases[i % bases.len()],
                        "bench"
                    ))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .expect("request");
                assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    loop {
        let (closed, failed) = nodes[0].node.read_local(|s| {
            let t = s.tenant(&tenant).expect("tenant");
            let closed = t
                .missions()
                .values()
                .filter(|m| m.state() == MissionState::Closed)
                .count();
            let failed = t
                .missions()
                .values()
                .filter(|m| {
                    m.outcome()
                        .is_some_and(|o| o.outcome().kind != OutcomeKind::Succeeded)
                })
                .count();
            (closed, failed)
        });
        assert_eq!(failed, 0, "every benchmark mission succeeds");
        if closed == missions {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = missions as f64 / start.elapsed().as_secs_f64();
    let ms_per_mission = |nanos: u64| nanos as f64 / 1e6 / missions as f64;
    let cpu_ms = ms_per_mission(process_nanos() - cpu_before);
    let after = applied(nodes);
    let per = |i: usize| (after[i] - before[i]) as f64 / missions as f64;
    let repeated = repeated_cpu(nodes);
    let per_replica_ms =
        |i: usize| ms_per_mission(repeated[i] - repeated_before[i]) / nodes.len() as f64;
    Measured {
        rate,
        cpu_ms,
        per_mission: [0, 1, 2, 3, 4, 5, 6, 7].map(per),
        repeated_ms: [0, 1, 2].map(per_replica_ms),
    }
}

/// The cluster sizes to measure: both, unless `AURA_BENCH_ONLY` names
/// one (a phase alone is what a profiler or valgrind should see).
fn phases() -> Vec<u64> {
    match std::env::var("AURA_BENCH_ONLY").ok().as_deref() {
        None => vec![1, 3],
        Some("1") => vec![1],
        Some("3") => vec![3],
        Some(other) => {
            eprintln!("AURA_BENCH_ONLY must be 1 or 3 (nodes), not `{other}`");
            std::process::exit(2);
        }
    }
}

fn main() {
    let missions = support::env_usize("AURA_BENCH_MISSIONS", 200);
    let clients = support::env_usize("AURA_BENCH_CLIENTS", 16);
    let concurrency = support::env_usize("AURA_BENCH_EXECUTOR_CONCURRENCY", 32);
    let phases = phases();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let rt = support::runtime();
    rt.block_on(async move {
        let tool = support::noop_tool().await;
        println!(
            "full missions (8 states, 3 gateway tool steps, scripted reasoner, auto-PERMIT); {missions} missions, {clients} creating clients, executor concurrency {concurrency}"
        );
        let m = missions as f64;
        let mut one_node = None;
        for n in phases {
            let nodes = TestServer::start_cluster(n, Db::Sqlite, config(concurrency)).await;
            let g = setup(&nodes, &tool, "bench").await;
            let Measured {
                rate,
                cpu_ms,
                per_mission: [e, c, x, snaps, built, written, appends, syncs],
                repeated_ms: [apply, log, snapshot],
            } = run(&nodes, &g, missions, clients).await;
            let (label, logs) = if n == 1 {
                ("1 node ", "")
            } else {
                ("3 nodes", " on 3 logs")
            };
            let ratio = one_node
                .filter(|_| n > 1)
                .map(|r1| format!("   ({:.2}x of 1 node)", rate / r1))
                .unwrap_or_default();
            println!(
                "  {label}  {rate:>8.1} missions/s   {e:.1} entries/mission ({c:.1} commands, {x:.2} refused); {:.0} snapshots, {:.1} KiB/mission built, {:.1} written; {syncs:.2} fdatasyncs/mission{logs} ({appends:.2} log appends){ratio}",
                snaps * m,
                built / 1024.0,
                written / 1024.0,
            );
            let repeated = apply + log + snapshot;
            println!(
                "             {cpu_ms:.2} ms CPU/mission, for at most {:.0} missions/s on {cores} cores; each replica repeats {repeated:.2} ms of it (apply {apply:.2}, log {log:.2}, snapshots {snapshot:.2}): {:.2} ms on {n}",
                1000.0 * cores as f64 / cpu_ms,
                repeated * n as f64,
            );
            if n == 1 {
                one_node = Some(rate);
            }
            for node in nodes.into_iter().rev() {
                node.stop().await;
            }
        }
        println!("  tool calls seen: {}", tool.calls().len());
    });
}
