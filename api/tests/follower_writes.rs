//! Writes through a follower's API: the answer comes once the follower has
//! applied the write, so the next read on the same node sees it (the
//! handlers build their answers from the node's own state).

use std::time::Duration;

use aura_api::testkit::agent::GovernedTenant;
use aura_api::testkit::{Client, Db, Raw, TestServer, eventually};
use aura_api::{ApiConfig, testkit};
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
    let nodes = TestServer::start_cluster(3, Db::Sqlite, testkit::api_config()).await;
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
    let nodes = TestServer::start_cluster(3, Db::Sqlite, testkit::api_config()).await;
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
    let namespaces = || async {
        let r = admin
            .raw(Method::GET, "/v1/tenants/acme/namespaces", None, &[])
            .await;
        r.body
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n["id"].as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    eventually("the follower shows `late`", || async {
        namespaces().await.iter().any(|i| i == "late")
    })
    .await;
    assert_eq!(
        namespaces().await.iter().filter(|i| *i == "late").count(),
        1
    );
    stop_all(nodes).await;
}

/// A mission of tenant `acme`'s agent `bot` with no id: the server
/// chooses one.
fn mission_without_id() -> Value {
    json!({
        "namespace": "prod", "agent": "bot",
        "definition": {"objective": "post invoices", "tools": ["erp.post"],
                       "authority": "L2", "timeout": 3_600_000},
        "context": {"inputs": {}, "classification": "confidential"}
    })
}

async fn create_with_key(admin: &Client, key: &str) -> Raw {
    admin
        .raw(
            Method::POST,
            "/v1/tenants/acme/missions",
            Some(&mission_without_id()),
            &[("idempotency-key", key)],
        )
        .await
}

/// The ids of tenant `acme`'s missions, as the leader has them.
async fn missions_on(leader: &TestServer, key: &str) -> Vec<String> {
    let listed: Value = leader
        .client(key)
        .get("/v1/tenants/acme/missions?namespace=prod")
        .await
        .expect("missions listed");
    listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect()
}

/// A create whose outcome a node cannot give (committed, not yet applied
/// there) names the mission it made, and a retry with the same
/// Idempotency-Key gets that answer again instead of creating a second
/// mission under another server-chosen id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_a_write_that_may_have_taken_effect_does_not_run_it_again() {
    let nodes = TestServer::start_cluster(3, Db::Sqlite, testkit::api_config()).await;
    let (leader, follower) = (member(&nodes, true), member(&nodes, false));
    // Set up through the follower, so that it has applied all of it.
    let acme = GovernedTenant::create(follower, "acme", "http://127.0.0.1:9/unused").await;

    follower.node.faults().deafen(leader.node.id());
    let first = create_with_key(&acme.admin, "create-1").await;
    assert_eq!(
        first.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        first.body
    );
    let resource = first.body["resource"]
        .as_str()
        .unwrap_or_else(|| panic!("the problem names the mission: {}", first.body))
        .to_owned();
    follower.node.faults().heal_all();
    eventually("the follower shows the mission", || async {
        acme.admin.get::<Value>(&resource).await.is_ok()
    })
    .await;

    let retry = create_with_key(&acme.admin, "create-1").await;
    assert_eq!(retry.status, first.status, "{:?}", retry.body);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(retry.body["resource"], resource.as_str());
    let ids = missions_on(leader, acme.admin.key().expect("a key")).await;
    assert_eq!(ids.len(), 1, "one mission, not one per attempt: {ids:?}");
    assert!(resource.ends_with(&ids[0]), "{resource} names {}", ids[0]);
    stop_all(nodes).await;
}

/// A request cut off by its timeout while its write was under way leaves
/// its Idempotency-Key answering that the outcome is unknown, rather than
/// claimed until a retry may take it over and run the write again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cut_off_mid_write_keeps_its_key_from_running_again() {
    let config = ApiConfig {
        request_timeout: Duration::from_secs(2),
        ..testkit::api_config()
    };
    let nodes = TestServer::start_cluster(3, Db::Sqlite, config).await;
    let (leader, follower) = (member(&nodes, true), member(&nodes, false));
    let acme = GovernedTenant::create(follower, "acme", "http://127.0.0.1:9/unused").await;

    // The follower waits to apply the create longer than the timeout.
    follower.node.faults().deafen(leader.node.id());
    let first = create_with_key(&acme.admin, "create-1").await;
    assert_eq!(
        first.body["type"], "urn:aura:problem:timeout",
        "{:?}",
        first.body
    );
    follower.node.faults().heal_all();
    let key = acme.admin.key().expect("a key");
    eventually("the follower applies the create", || async {
        !missions_on(follower, key).await.is_empty()
    })
    .await;

    let retry = create_with_key(&acme.admin, "create-1").await;
    assert_eq!(
        retry
            .headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().ok()),
        Some(Some("true")),
        "{:?}",
        retry.body
    );
    let detail = retry.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("may have taken effect"), "{detail}");
    assert_eq!(missions_on(leader, key).await.len(), 1);
    stop_all(nodes).await;
}

/// Reads are linearizable by default: a read through a follower after a
/// write acknowledged by the leader sees that write, waiting for the
/// follower to catch up if it must. `?consistency=stale` answers at once
/// from the follower's own state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_on_any_node_sees_every_acknowledged_write() {
    let nodes = TestServer::start_cluster(3, Db::Sqlite, testkit::api_config()).await;
    let (leader, follower) = (member(&nodes, true), member(&nodes, false));
    let key = acme_admin_key(leader).await;
    let (writer, reader) = (leader.client(&key), follower.client(&key));
    for i in 0..10 {
        let id = format!("ns{i}");
        writer.create_namespace("acme", &id).await.expect("created");
        reader
            .get::<Value>(&format!("/v1/tenants/acme/namespaces/{id}"))
            .await
            .unwrap_or_else(|e| {
                panic!("{id} written on the leader, not read on a follower: {e:?}")
            });
    }

    // The follower hears nothing from the leader: it cannot have the write.
    follower.node.faults().deafen(leader.node.id());
    writer
        .create_namespace("acme", "fresh")
        .await
        .expect("created");
    let path = "/v1/tenants/acme/namespaces/fresh";
    let stale = reader
        .raw(Method::GET, &format!("{path}?consistency=stale"), None, &[])
        .await;
    assert_eq!(
        stale.status,
        StatusCode::NOT_FOUND,
        "a stale read is this node's"
    );
    let healer = {
        let faults = follower.node.faults().clone();
        tokio::spawn(async move {
            // Well inside the election timeout (400 ms at least), so the
            // deaf follower does not start an election meanwhile.
            tokio::time::sleep(Duration::from_millis(250)).await;
            faults.heal_all();
        })
    };
    let started = std::time::Instant::now();
    let read = reader.raw(Method::GET, path, None, &[]).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert_eq!(read.body["id"], "fresh");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "the read waited for the follower to catch up"
    );
    healer.await.expect("healed");
    let bad = reader
        .raw(
            Method::GET,
            &format!("{path}?consistency=eventual"),
            None,
            &[],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{:?}", bad.body);
    stop_all(nodes).await;
}

/// A node whose clock runs fast stamps its commands ahead of the others'.
/// The node that writes an entry refuses one stamped more than the
/// documented bound ahead of its own clock, so such a node cannot move a
/// tenant's clock forward, and nothing of the tenant's expires early.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposer_with_a_fast_clock_cannot_move_a_tenants_clock() {
    use aura_engine::machine::{Command, CommandBody};
    use aura_raft::ClusterError;
    let nodes = TestServer::start_cluster(3, Db::Sqlite, testkit::api_config()).await;
    let admin = Client::connect(&nodes[0].base, &acme_admin_key(&nodes[0]).await);
    let tenant = aura_engine::ids::TenantId::new("acme").unwrap();
    let stamped = |ahead_ms: i64, ns: &str| Command {
        tenant: tenant.clone(),
        at: aura_engine::Timestamp(aura_api::time::now_millis() + ahead_ms),
        actor: aura_engine::Actor::Platform,
        body: CommandBody::CreateNamespace {
            namespace: aura_engine::ids::NamespaceId::new(ns).unwrap(),
            display_name: ns.into(),
        },
        precondition: None,
    };
    for leader in [true, false] {
        let via = member(&nodes, leader);
        let err = via.node.propose(stamped(3_600_000, "ahead")).await;
        assert!(
            matches!(err, Err(ClusterError::ClockAhead { ahead_ms }) if ahead_ms > 3_500_000),
            "{err:?}"
        );
    }
    // Within the bound, a little skew is taken as it is.
    member(&nodes, false)
        .node
        .propose(stamped(1_000, "close"))
        .await
        .unwrap();
    // The tenant's clock is still about now: the next entry is stamped
    // with this node's time, not an hour ahead.
    admin.create_namespace("acme", "ops").await.unwrap();
    let audit: Value = admin
        .get("/v1/tenants/acme/audit/entries?limit=1000")
        .await
        .unwrap();
    let last = audit["entries"].as_array().unwrap().last().unwrap().clone();
    let time = last["entry"]["time"].as_i64().unwrap();
    assert!(
        time < aura_api::time::now_millis() + 5_000,
        "the tenant's clock moved ahead: {last}"
    );
    assert!(
        !audit.to_string().contains("\"ahead\""),
        "nothing was written"
    );
    stop_all(nodes).await;
}
