//! What the gateway shares between API nodes: rate limits and the replay
//! cache hold across two nodes of one cluster sharing a real Redis
//! (127.0.0.1:6379, or AURA_TEST_REDIS_URL), and per node without it.

use std::time::Duration;

use aura_api::gateway::limits::Limits;
use aura_api::testkit;
use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Db, Raw, TestServer};
use aura_engine::identity::ExecutionToken;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn redis_url() -> String {
    std::env::var("AURA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn send(s: &TestServer, envelope: &impl serde::Serialize) -> Raw {
    let body = serde_json::to_value(envelope).unwrap();
    s.anonymous()
        .raw(Method::POST, "/v1/gateway/tool-calls", Some(&body), &[])
        .await
}

/// Two API nodes over a two-node cluster, three calls per agent per
/// minute, Redis or not; a tenant named afresh (Redis outlives tests).
async fn two_nodes(
    redis: bool,
) -> (
    Vec<TestServer>,
    GovernedTenant,
    ExecutionToken,
    RecordingTool,
) {
    let mut config = testkit::api_config();
    config.gateway.limits = Limits {
        per_agent: Some("3/min".parse().unwrap()),
        ..Limits::default()
    };
    if redis {
        config.gateway.redis_url = Some(redis_url());
    }
    let nodes = TestServer::start_cluster(2, Db::Sqlite, config).await;
    let tool = RecordingTool::start().await;
    let tenant = format!("t{}", aura_api::random::hex(6));
    let g = GovernedTenant::create(&nodes[0], &tenant, &tool.url).await;
    let token = g.running_mission(&nodes[0], "m1", json!({})).await;
    // The second node verifies calls against its own applied state.
    let target = nodes[0].node.progress().applied;
    for _ in 0..500 {
        if nodes[1].node.progress().applied >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (nodes, g, token, tool)
}

async fn stop(nodes: Vec<TestServer>) {
    let mut nodes = nodes;
    while let Some(n) = nodes.pop() {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_across_nodes_sharing_redis() {
    let (nodes, g, token, tool) = two_nodes(true).await;
    let mut step = 0;
    let mut call = |node: usize| {
        step += 1;
        (
            node,
            g.agent
                .sign(&token, g.call("m1", step, json!({"amount": 1}))),
        )
    };
    let calls = [call(0), call(1), call(0), call(1), call(0)];
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for (node, envelope) in &calls {
        let r = send(&nodes[*node], envelope).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(r.body["type"], "urn:aura:problem:rate-limited");
            assert_eq!(r.body["code"], "agent");
            retry_after = Some(r.headers["retry-after"].to_str().unwrap().to_owned());
        }
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429], "3 per minute in all");
    let secs: u64 = retry_after.unwrap().parse().unwrap();
    assert!((1..=20).contains(&secs), "one call per 20 s: {secs}");
    assert_eq!(tool.calls().len(), 3);

    // A signed request replayed to the other node is refused there.
    let fresh = g.agent.sign(&token, g.call("m1", 99, json!({"amount": 1})));
    let first = send(&nodes[0], &fresh).await;
    assert_eq!(first.status, StatusCode::TOO_MANY_REQUESTS, "still limited");
    let replayed = send(&nodes[1], &fresh).await;
    assert_eq!(
        replayed.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        replayed.body
    );
    assert_eq!(replayed.body["code"], "replayed-nonce");
    stop(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_each_node_limits_on_its_own() {
    let (nodes, g, token, tool) = two_nodes(false).await;
    let mut statuses = Vec::new();
    for (i, node) in [0, 0, 0, 0, 1, 1, 1, 1].into_iter().enumerate() {
        let envelope = g
            .agent
            .sign(&token, g.call("m1", i as u32, json!({"amount": 1})));
        statuses.push(send(&nodes[node], &envelope).await.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 200, 200, 200, 429]);
    assert_eq!(tool.calls().len(), 6);
    stop(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_does_not_answer_stops_the_server_from_starting() {
    let mut config = testkit::api_config();
    // Nothing listens on port 1.
    config.gateway.redis_url = Some("redis://:secret@127.0.0.1:1".into());
    let dir = tempfile::tempdir().unwrap();
    let node = aura_raft::testkit::single_node(dir.path()).await;
    let store = aura_api::store::Store::open(&aura_api::store::Store::sqlite_url(dir.path()))
        .await
        .unwrap();
    let err = aura_api::AppState::connect(node.clone(), store, config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("AURA_REDIS_URL"), "{err}");
    assert!(!err.contains("secret"), "the password is not shown: {err}");
    node.shutdown().await;
}
