//! Governed tool calls: calls per second and latency through the Tool
//! Gateway (DualToken, schema, policy, dispatch committed, the call, the
//! result committed) against a local no-op HTTP tool, on one node and on a
//! three-node loopback cluster, compared in the same run with calling the
//! same tool directly and with one append + fdatasync on this disk.
//! `cargo bench -p aura-api --bench gateway` (`AURA_BENCH_CALLS`,
//! `AURA_BENCH_CLIENTS` change the load).

mod support;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aura_api::testkit;
use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Db, TestServer};
use aura_engine::identity::ExecutionToken;
use serde_json::{Value, json};

struct Run {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn summarize(mut lat: Vec<Duration>, elapsed: Duration) -> Run {
    lat.sort();
    Run {
        per_second: lat.len() as f64 / elapsed.as_secs_f64(),
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
    }
}

/// `calls` requests from `clients` concurrent clients; `request(i)` gives
/// the URL and body of call `i` (built before its timer starts).
async fn load(
    calls: usize,
    clients: usize,
    request: impl Fn(usize) -> (String, Value) + Send + Sync + 'static,
) -> Run {
    let request = Arc::new(request);
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, next, request) = (http.clone(), next.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    break;
                }
                let (url, body) = request(i);
                let t = Instant::now();
                let r = http.post(&url).json(&body).send().await.expect("request");
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                assert_eq!(status, 200, "{text}");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    summarize(all, start.elapsed())
}

/// One small append + fdatasync, the unit the goals are stated in.
fn fdatasync_p50(dir: &std::path::Path) -> Duration {
    let mut f = std::fs::File::create(dir.join("sync-probe")).expect("probe file");
    let mut lat = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        f.write_all(&[7u8; 256]).expect("write");
        f.sync_data().expect("fdatasync");
        lat.push(t.elapsed());
    }
    summarize(lat, Duration::from_secs(1)).p50
}

/// Signed calls of `erp.post` spread over the missions (one token each),
/// sent round-robin to `bases`; call `i` is step `offset + i` of the run,
/// so no two calls of the whole benchmark share a step.
fn governed(
    g: &GovernedTenant,
    tokens: &[(String, ExecutionToken)],
    bases: &[String],
    offset: usize,
) -> impl Fn(usize) -> (String, Value) + Send + Sync + 'static {
    let (g, tokens, bases) = (g.clone(), tokens.to_vec(), bases.to_vec());
    move |i| {
        let i = i + offset;
        let (mission, token) = &tokens[i % tokens.len()];
        let step = (i / tokens.len()) as u32;
        let envelope = g
            .agent
            .sign(token, g.call(mission, step, json!({"amount": 1})));
        (
            format!("{}/v1/gateway/tool-calls", bases[i % bases.len()]),
            serde_json::to_value(envelope).expect("envelope"),
        )
    }
}

async fn setup(
    nodes: &[TestServer],
    tool: &RecordingTool,
    tenant: &str,
    missions: usize,
) -> (GovernedTenant, Vec<(String, ExecutionToken)>) {
    let g = GovernedTenant::create(&nodes[0], tenant, &tool.url).await;
    let mut tokens = Vec::new();
    for m in 0..missions {
        let id = format!("m{m}");
        let token = g.running_mission(&nodes[0], &id, json!({})).await;
        tokens.push((id, token));
    }
    // Followers verify calls against their own applied state.
    let target = nodes[0].node.progress().applied;
    while nodes.iter().any(|n| n.node.progress().applied < target) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (g, tokens)
}

fn main() {
    let calls = support::env_usize("AURA_BENCH_CALLS", 2000);
    let clients = support::env_usize("AURA_BENCH_CLIENTS", 32);
    let rt = support::runtime();
    rt.block_on(async move {
        let tool = support::noop_tool().await;
        let probe = tempfile::tempdir().expect("temp dir");
        let sync = fdatasync_p50(probe.path());

        // Every client calls from loopback: one source, which the
        // per-source limit would hold to its rate.
        let mut config = testkit::api_config();
        config.gateway.limits.per_source = None;
        let one = TestServer::start_cluster(1, Db::Sqlite, config.clone()).await;
        let three = TestServer::start_cluster(3, Db::Sqlite, config).await;
        let (g1, t1) = setup(&one, &tool, "one", clients).await;
        let (g3, t3) = setup(&three, &tool, "three", clients).await;
        let b1: Vec<String> = one.iter().map(|n| n.base.clone()).collect();
        let b3: Vec<String> = three.iter().map(|n| n.base.clone()).collect();
        let direct = {
            let url = tool.url.clone();
            move |i: usize| (url.clone(), json!({"tool": "erp.post", "step": i, "arguments": {"amount": 1}}))
        };

        // Warm every path, then measure side by side.
        let warm = 200;
        load(warm, clients, direct.clone()).await;
        load(warm, clients, governed(&g1, &t1, &b1, 0)).await;
        load(warm, clients, governed(&g3, &t3, &b3, 0)).await;
        let solo = calls / 4;
        let rows = vec![
            ("direct call, 1 client", load(solo, 1, direct.clone()).await),
            ("governed, 1 node, 1 client", load(solo, 1, governed(&g1, &t1, &b1, warm)).await),
            ("governed, 3 nodes, 1 client", load(solo, 1, governed(&g3, &t3, &b3, warm)).await),
            ("direct call, many clients", load(calls, clients, direct).await),
            (
                "governed, 1 node, many clients",
                load(calls, clients, governed(&g1, &t1, &b1, warm + solo)).await,
            ),
            (
                "governed, 3 nodes, many clients",
                load(calls, clients, governed(&g3, &t3, &b3, warm + solo)).await,
            ),
        ];
        println!(
            "governed tool calls vs direct calls of a local no-op tool; {calls} calls, {clients} clients for the many-client rows; one append+fdatasync p50 {:.0} µs",
            sync.as_secs_f64() * 1e6
        );
        for (name, r) in &rows {
            println!(
                "  {name:<33} {:>8.0} calls/s   p50 {:>8.2} ms ({:>5.1}x fdatasync)   p99 {:>8.2} ms",
                r.per_second,
                r.p50.as_secs_f64() * 1e3,
                r.p50.as_secs_f64() / sync.as_secs_f64(),
                r.p99.as_secs_f64() * 1e3
            );
        }
        // What no implementation of the call path can go below on one
        // node: a governed call is two HTTP exchanges (agent to gateway,
        // gateway to tool), each at least a direct call, and two durable
        // commits one after the other (the request before the tool is
        // called, the result before the answer), each at least one
        // append+fdatasync.
        let floor = 2 * rows[0].1.p50 + 2 * sync;
        println!(
            "  floor of one governed call on 1 node: 2 direct-call p50 + 2 fdatasync p50 = {:.2} ms ({:.1}x fdatasync)",
            floor.as_secs_f64() * 1e3,
            floor.as_secs_f64() / sync.as_secs_f64()
        );
        let ratio = |a: usize, b: usize| rows[a].1.per_second / rows[b].1.per_second;
        println!(
            "  governed / direct throughput: 1 node {:.3}x, 3 nodes {:.3}x; 1-client p50: 1 node {:.1}x, 3 nodes {:.1}x of direct",
            ratio(4, 3),
            ratio(5, 3),
            rows[1].1.p50.as_secs_f64() / rows[0].1.p50.as_secs_f64(),
            rows[2].1.p50.as_secs_f64() / rows[0].1.p50.as_secs_f64(),
        );
        for n in three.into_iter().rev() {
            n.stop().await;
        }
        for n in one {
            n.stop().await;
        }
    });
}
