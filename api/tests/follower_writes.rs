//! Writes through a follower's API: the answer comes once the follower has
//! applied the write, so the next read on the same node sees it (the
//! handlers build their answers from the node's own state).

use aura_api::ApiConfig;
use aura_api::testkit::{Db, TestServer};
use aura_raft::node::Role;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_a_follower_is_visible_there_at_once() {
    let nodes = TestServer::start_cluster(3, Db::Sqlite, ApiConfig::default()).await;
    let follower = nodes
        .iter()
        .find(|n| n.node.progress().role != Role::Leader)
        .expect("a follower");
    let created = follower
        .platform()
        .create_tenant("acme")
        .await
        .expect("tenant created through the follower");
    let admin = follower.client(&created.admin_key.key);
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
    let mut nodes = nodes;
    while let Some(n) = nodes.pop() {
        n.stop().await;
    }
}
