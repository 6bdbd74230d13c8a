//! API overhead: create-mission requests per second and latency on the
//! embedded server (SQLite, one-node engine, authentication,
//! idempotency, policy decision on the plan), against a bare axum handler
//! that parses the same JSON and answers 201, on the same machine in the
//! same run. `cargo bench -p aura-api --bench api_overhead`
//! (`AURA_BENCH_REQUESTS`, `AURA_BENCH_CLIENTS` to change the load).

use std::time::{Duration, Instant};

use aura_api::testkit::{Db, TestServer};
use aura_engine::identity::KeyPair;
use axum::routing::post;
use serde_json::{Value, json};

struct Run {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(
    url: String,
    key: Option<String>,
    body: impl Fn(usize) -> Value + Send + Sync + 'static,
    requests: usize,
    clients: usize,
) -> Run {
    let body = std::sync::Arc::new(body);
    let http = reqwest::Client::new();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, key, next, body) = (
            http.clone(),
            url.clone(),
            key.clone(),
            next.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let mut req = http.post(&url).json(&body(i));
                if let Some(k) = &key {
                    req = req.bearer_auth(k);
                }
                let t = Instant::now();
                let r = req.send().await.expect("request");
                assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
                let _ = r.bytes().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    let elapsed = start.elapsed();
    all.sort();
    Run {
        per_second: requests as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}

fn mission(i: usize) -> Value {
    json!({
        "namespace": "bench",
        "agent": "bench-bot",
        "definition": {"objective": format!("bench {i}"), "tools": ["erp.post"], "authority": "L1", "timeout": 3_600_000},
        "context": {"inputs": {"i": i}, "classification": "internal"},
        "plan": [{"tool": "erp.post", "arguments": {"amount": 10}}]
    })
}

fn main() {
    let requests: usize = std::env::var("AURA_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let clients: usize = std::env::var("AURA_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        // Bare axum: the same JSON in, a JSON answer out.
        let bare = axum::Router::new().route(
            "/missions",
            post(|axum::Json(v): axum::Json<Value>| async move {
                (axum::http::StatusCode::CREATED, axum::Json(json!({"id": "m", "objective": v["definition"]["objective"]})))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let bare_url = format!("http://{}/missions", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, bare).await });

        let s = TestServer::start(Db::Sqlite).await;
        let created = s.platform().create_tenant("bench").await.expect("tenant");
        let admin = s.client(&created.admin_key.key);
        admin.create_namespace("bench", "bench").await.expect("namespace");
        let _: Value = admin
            .post("/v1/tenants/bench/agents", &json!({"id": "bench-bot", "org_unit": "ou", "public_key": KeyPair::from_seed([1; 32]).public().to_base64()}))
            .await
            .expect("agent");
        let _ = admin
            .raw(reqwest::Method::PUT, "/v1/tenants/bench/tools/erp.post", Some(&json!({"risk": "L1", "classification": "confidential", "target": "on-prem"})), &[])
            .await;
        let b: Value = admin
            .post("/v1/tenants/bench/policy-bundles", &json!({"policies": aura_engine::sim::SIM_BUNDLE}))
            .await
            .expect("bundle");
        let _ = admin
            .raw(reqwest::Method::PUT, "/v1/tenants/bench/namespaces/bench/policy/stable", Some(&json!({"version": b["version"]})), &[("if-match", "*")])
            .await;
        let aura_url = format!("{}/v1/tenants/bench/missions", s.base);

        // Warm both, then measure side by side.
        load(bare_url.clone(), None, mission, 200, clients).await;
        load(aura_url.clone(), Some(created.admin_key.key.clone()), mission, 200, clients).await;
        let bare_run = load(bare_url, None, mission, requests, clients).await;
        let aura_run = load(aura_url, Some(created.admin_key.key.clone()), mission, requests, clients).await;
        println!("create-mission, {requests} requests, {clients} concurrent clients");
        for (name, r) in [("bare axum handler", &bare_run), ("AURA create mission", &aura_run)] {
            println!("  {name:<22} {:>9.0} req/s   p50 {:>8.2} ms   p99 {:>8.2} ms", r.per_second, r.p50.as_secs_f64() * 1e3, r.p99.as_secs_f64() * 1e3);
        }
        println!(
            "  AURA / bare: throughput {:.3}x, p50 {:.1}x, p99 {:.1}x",
            aura_run.per_second / bare_run.per_second,
            aura_run.p50.as_secs_f64() / bare_run.p50.as_secs_f64(),
            aura_run.p99.as_secs_f64() / bare_run.p99.as_secs_f64()
        );
        s.stop().await;
    });
}
