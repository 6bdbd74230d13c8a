//! Writes through a follower's API: the answer comes once the follower has
//! applied the write, so the next read on the same node sees it (the
//! handlers build their answers from the node's own state).

use std::time::Duration;

use aura_api::ApiConfig;
use aura_api::testkit::{Db, TestServer};
use aura_raft::node::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The cluster's leader, or one of its followers.
fn member(nodes: &[TestServer], leader: bool) -> &TestServer {
    nodes
        .iter()
        .find(|n| (n.node.progress().role == Role::Leader) == leader)
        .expect("a member in that role")
}

/// Tenant `acme`, created through `node`: its admin's key.
async fn acme_admin_key(node: &TestServer) -> String {
    node.platform()
        .create_tenant("acme")
        .await
        .expect("tenant created")
        .admin_key
        .key
}

async fn stop_all(mut nodes: Vec<TestServer>) {
    while let Some(n) = nodes.pop() {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_a_follower_is_visible_there_at_once() {
    let nodes = TestServer::start_cluster(3, Db::Sqlite, ApiConfig::default()).await;
    let follower = member(&nodes, false);
    let admin = follower.client(&acme_admin_key(follower).await);
    for i in 0..20 {
        let id = format!("ns{i}");
        admin
            .create_namespace("acme", &id)
            .await
            .expect("namespace created through the follower");
        let shown: Value = admin
            .get(&format!("/v1/tenants/acme/namespaces/{id}"))
            .await
            .unwrap_or_else(|e| panic!("namespace {id} not visible on the follower: {e:?}"));
        assert_eq!(shown["id"], id.as_str());
    }
    stop_all(nodes).await;
}

/// A follower that forwarded a write but does not receive the log back
/// (it hears nothing from the leader: a one-way partition) answers that
/// the write is committed, rather than build its answer from a state
/// without it: a created namespace or mission would read as missing,
/// and a client would create it again. Once healed, the write is there,
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_cannot_apply_its_forwarded_write_says_it_is_committed() {
    let nodes = TestServer::start_cluster(3, Db::Sqlite, ApiConfig::default()).await;
    let (leader, follower) = (member(&nodes, true), member(&nodes, false));
    let key = acme_admin_key(follower).await;
    let admin = follower.client(&key);

    follower.node.faults().deafen(leader.node.id());
    let r = admin
        .raw(
            Method::POST,
            "/v1/tenants/acme/namespaces",
            Some(&json!({"id": "late", "display_name": "Late"})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert_eq!(
        r.headers["content-type"], "application/problem+json",
        "{:?}",
        r.headers
    );
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("committed") && detail.contains("do not repeat"),
        "{detail}"
    );
    // Committed: the leader has it already.
    let on_leader = leader.client(&key);
    on_leader
        .get::<Value>("/v1/tenants/acme/namespaces/late")
        .await
        .expect("the write is on the leader");

    follower.node.faults().heal_all();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = admin
            .raw(Method::GET, "/v1/tenants/acme/namespaces", None, &[])
            .await;
        let ids: Vec<&str> = r
            .body
            .as_array()
            .map(|a| a.iter().filter_map(|n| n["id"].as_str()).collect())
            .unwrap_or_default();
        if ids.contains(&"late") {
            assert_eq!(ids.iter().filter(|i| **i == "late").count(), 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the follower never caught up: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_all(nodes).await;
}
