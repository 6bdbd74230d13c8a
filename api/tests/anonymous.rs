//! What an anonymous caller can do to a tenant: not grow its audit chain
//! with forged gateway calls, not learn which tenants exist, and not try
//! API keys without limit. Floods come from 127.0.0.2, legitimate callers
//! from 127.0.0.1: two sources on one machine.

use std::net::IpAddr;
use std::time::Duration;

use aura_api::Role;
use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Db, TestServer};
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn from(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(addr.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn audit_len(g: &GovernedTenant) -> u64 {
    let r: Value = g
        .admin
        .get("/v1/tenants/acme/audit/entries?limit=1")
        .await
        .unwrap();
    r["total"].as_u64().unwrap()
}

/// 10,000 forged calls add at most one audit entry per tenant and kind of
/// refusal per minute (docs/gateway.md), most are turned away by the
/// per-source limit before their signature is looked at, and the tenant's
/// agent keeps calling its tool throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_calls_is_bounded_in_the_record_and_does_not_stop_real_calls() {
    let tool = RecordingTool::start().await;
    let s = TestServer::start(Db::Sqlite).await;
    let g = GovernedTenant::create(&s, "acme", &tool.url).await;
    let token = g.running_mission(&s, "m1", json!({})).await;
    let mut forged =
        serde_json::to_value(g.agent.sign(&token, g.call("m1", 0, json!({"amount": 1})))).unwrap();
    forged["credential"]["claims"]["org_unit"] = json!("board");
    let mut nowhere = forged.clone();
    nowhere["call"]["tenant"] = json!("nobody");
    let before = audit_len(&g).await;

    let url = format!("{}/v1/gateway/tool-calls", s.base);
    let attacker = from("127.0.0.2");
    let flood = futures_util::stream::iter(0..10_000)
        .map(|i| {
            let (attacker, url) = (attacker.clone(), url.clone());
            let body = if i % 2 == 0 {
                forged.clone()
            } else {
                nowhere.clone()
            };
            async move {
                attacker
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<StatusCode>>();
    let real = async {
        let mut ok = 0;
        for step in 0..20u32 {
            let envelope = g
                .agent
                .sign(&token, g.call("m1", step, json!({"amount": 1})));
            let r = from("127.0.0.1")
                .post(&url)
                .json(&envelope)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
            ok += 1;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        ok
    };
    let (statuses, ok) = tokio::join!(flood, real);
    assert_eq!(ok, 20, "every real call went through during the flood");
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(limited + refused, 10_000, "only 429 and 401");
    assert!(
        limited > 5_000,
        "the source limit turned most away: {limited}"
    );

    // The real calls' own entries, and at most one refusal.
    let after = audit_len(&g).await;
    let r: Value = g
        .admin
        .get(&format!(
            "/v1/tenants/acme/audit/entries?from={before}&limit=1000"
        ))
        .await
        .unwrap();
    let refusals = r["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["kind"] == "tool_call.refused")
        .count();
    eprintln!(
        "flood: {limited} answered 429, {refused} answered 401; {refusals} refusal and {} entries in all recorded",
        after - before
    );
    assert!(refusals <= 1, "{refusals} refusals recorded");
    assert!(
        after - before < 100,
        "{} entries for 20 calls",
        after - before
    );
    assert_eq!(tool.calls().len(), 20);
    s.stop().await;
}

/// Wrong keys from one source: 401 until the limit, then 429 with
/// Retry-After for every key from that source, the right one too, while
/// other sources are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_limited_per_source() {
    let s = TestServer::start(Db::Sqlite).await;
    let admin = s.tenant_admin("acme").await;
    let good = admin
        .create_key("acme", "admin", &[Role::Auditor])
        .await
        .unwrap()
        .key;
    let url = format!("{}/v1/tenants/acme", s.base);
    let guesser = from("127.0.0.2");
    let try_key = |client: &reqwest::Client, key: &str| client.get(&url).bearer_auth(key).send();
    let wrong = format!("{}x", &good[..good.len() - 1]);
    let mut statuses = Vec::new();
    for _ in 0..31 {
        statuses.push(try_key(&guesser, &wrong).await.unwrap().status());
    }
    assert!(
        statuses[..30]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(statuses[30], StatusCode::TOO_MANY_REQUESTS);
    let r = try_key(&guesser, &good).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "blocked before the lookup"
    );
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["type"], "urn:aura:problem:rate-limited");
    // Another source is not held back.
    let r = try_key(&from("127.0.0.1"), &good).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    s.stop().await;
}
