//! Full missions per second: created over the API, planned by the scripted
//! reasoner, permitted by policy, queued, claimed, three tool steps through
//! the gateway against a local no-op tool, each reported, and sealed (all
//! eight states), on one node and on a three-node loopback cluster in the
//! same run. `cargo bench -p aura-api --bench missions`
//! (`AURA_BENCH_MISSIONS`, `AURA_BENCH_CLIENTS` change the load,
//! `AURA_BENCH_EXECUTOR_CONCURRENCY` the missions each node runs at once).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aura_api::ApiConfig;
use aura_api::runtime::executor::ExecutorConfig;
use aura_api::runtime::reasoner::Secrets;
use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Db, TestServer};
use aura_engine::ids::TenantId;
use aura_engine::mission::{MissionState, OutcomeKind};
use aura_engine::time::Millis;
use serde_json::json;

const TOOLS: [&str; 3] = ["erp.post", "erp.read", "erp.mail"];

fn config(concurrency: usize) -> ApiConfig {
    ApiConfig {
        executor: Some(ExecutorConfig {
            worker: "bench".parse().expect("worker id"),
            lease: Millis::from_secs(30),
            concurrency,
            secrets: Secrets::new(std::env::temp_dir()),
        }),
        ..ApiConfig::default()
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
    let log = |f: fn(&aura_raft::log_writer::WriterStats) -> &std::sync::atomic::AtomicU64| {
        nodes
            .iter()
            .map(|n| f(n.node.log().stats()).load(Ordering::Relaxed))
            .sum::<u64>()
    };
    [e, c, r, b, s, w, log(|l| &l.appends), log(|l| &l.syncs)]
}

/// Creates `missions` missions from `clients` clients, round-robin over
/// the nodes, and waits until all are closed; missions per second, and
/// the entries, commands, refusals and snapshot bytes per mission
/// meanwhile.
async fn run(
    nodes: &[TestServer],
    g: &GovernedTenant,
    missions: usize,
    clients: usize,
) -> (f64, [f64; 8]) {
    let tenant: TenantId = g.tenant.parse().expect("tenant id");
    let before = applied(nodes);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
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
    let after = applied(nodes);
    let per = |i: usize| (after[i] - before[i]) as f64 / missions as f64;
    (rate, [0, 1, 2, 3, 4, 5, 6, 7].map(per))
}

fn main() {
    let missions = support::env_usize("AURA_BENCH_MISSIONS", 200);
    let clients = support::env_usize("AURA_BENCH_CLIENTS", 16);
    let concurrency = support::env_usize("AURA_BENCH_EXECUTOR_CONCURRENCY", 32);
    let rt = support::runtime();
    rt.block_on(async move {
        let tool = support::noop_tool().await;
        let one = TestServer::start_cluster(1, Db::Sqlite, config(concurrency)).await;
        let three = TestServer::start_cluster(3, Db::Sqlite, config(concurrency)).await;
        let g1 = setup(&one, &tool, "bench").await;
        let g3 = setup(&three, &tool, "bench").await;
        let r1 = run(&one, &g1, missions, clients).await;
        let r3 = run(&three, &g3, missions, clients).await;
        println!(
            "full missions (8 states, 3 gateway tool steps, scripted reasoner, auto-PERMIT); {missions} missions, {clients} creating clients, executor concurrency {concurrency}"
        );
        let ((r1, [e1, c1, x1, n1, s1, w1, a1, y1]), (r3, [e3, c3, x3, n3, s3, w3, a3, y3])) =
            (r1, r3);
        let m = missions as f64;
        println!(
            "  1 node   {r1:>8.1} missions/s   {e1:.1} entries/mission ({c1:.1} commands, {x1:.2} refused); {:.0} snapshots, {:.1} KiB/mission built, {:.1} written; {y1:.2} fdatasyncs/mission ({a1:.2} log appends)",
            n1 * m,
            s1 / 1024.0,
            w1 / 1024.0
        );
        println!(
            "  3 nodes  {r3:>8.1} missions/s   {e3:.1} entries/mission ({c3:.1} commands, {x3:.2} refused); {:.0} snapshots, {:.1} KiB/mission built, {:.1} written; {y3:.2} fdatasyncs/mission on 3 logs ({a3:.2} log appends)   ({:.2}x of 1 node)",
            n3 * m,
            s3 / 1024.0,
            w3 / 1024.0,
            r3 / r1
        );
        println!("  tool calls seen: {}", tool.calls().len());
        for n in three.into_iter().rev() {
            n.stop().await;
        }
        for n in one {
            n.stop().await;
        }
    });
}
