//! Tenant signing keys are sealed under the cluster's key-encryption key:
//! no seed is readable on a node's disk (log, snapshots, SQL store) or on
//! the cluster link, whether a member catches up through a snapshot or
//! through log entries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aura_api::testkit::{self, Db, TestServer, eventually};
use aura_engine::identity::Kek;
use aura_engine::ids::TenantId;
use aura_raft::node::Role;
use aura_raft::{Bootstrap, ClusterSecret, Node};
use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP relay to `to` that keeps a copy of every byte it carries, both
/// ways: what a listener on the cluster network would capture.
async fn recording_relay(to: String) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(&to).await else {
                continue;
            };
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            tokio::spawn(copy(ri, wo, kept.clone()));
            tokio::spawn(copy(ro, wi, kept.clone()));
        }
    });
    (addr, seen)
}

async fn copy(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    seen: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        seen.lock().unwrap().extend_from_slice(&buf[..n]);
    }
}

/// Every way a seed could be written down.
fn encodings(seed: &[u8; 32]) -> Vec<Vec<u8>> {
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        seed.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(seed)
            .into_bytes(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(seed)
            .into_bytes(),
    ]
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The tenant's seed, opened from its sealed form as a member does.
fn seed_of(node: &Node, tenant: &str) -> [u8; 32] {
    let tenant: TenantId = tenant.parse().unwrap();
    let sealed = node
        .read_local(|s| s.tenant(&tenant).and_then(|t| t.sealed_key().cloned()))
        .expect("the tenant's key is sealed");
    *sealed
        .open(Some(node.kek()), &tenant)
        .expect("the node's KEK opens it")
        .seed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tenant_seed_is_readable_on_disk_or_on_the_cluster_link() {
    // Snapshots every few entries, so that the leader purges its log and a
    // member joining later catches up through a snapshot.
    let held: Arc<Mutex<Option<(ClusterSecret, Kek)>>> = Arc::default();
    let keep = held.clone();
    let nodes = TestServer::start_cluster_with(2, Db::Sqlite, testkit::api_config(), |cfg| {
        cfg.snapshot_every = 5;
        *keep.lock().unwrap() = Some((cfg.secret.clone(), cfg.kek.clone()));
    })
    .await;
    let (secret, kek) = held.lock().unwrap().clone().unwrap();
    let leader = nodes
        .iter()
        .find(|n| n.node.progress().role == Role::Leader)
        .unwrap();
    let acme = leader.tenant_admin("acme").await;
    for i in 0..8 {
        acme.create_namespace("acme", &format!("ns{i}"))
            .await
            .unwrap();
    }
    eventually("the leader to purge its log behind a snapshot", || async {
        leader.node.status().purged.is_some_and(|p| p > 1)
    })
    .await;

    // A third member joins behind a relay that records the link.
    let port = aura_raft::testkit::free_port();
    let (relay, wire) = recording_relay(format!("127.0.0.1:{port}")).await;
    let mut cfg = aura_raft::testkit::node_config(
        3,
        &nodes[0].dir,
        &secret,
        Bootstrap::Join(leader.node.local_addr().to_string()),
        port,
    );
    cfg.kek = kek;
    cfg.advertise = relay;
    let learner = Node::start(cfg).await.expect("the learner starts");
    let acme_id: TenantId = "acme".parse().unwrap();
    eventually("the learner to install a snapshot with acme", || async {
        learner.read_local(|s| s.tenant(&acme_id).is_some())
    })
    .await;
    // A tenant created now reaches the learner as log entries.
    leader.tenant_admin("beta").await;
    let beta_id: TenantId = "beta".parse().unwrap();
    eventually("the learner to apply beta's creation", || async {
        learner.read_local(|s| s.tenant(&beta_id).is_some())
    })
    .await;
    assert!(learner.status().snapshot.is_some(), "caught up by snapshot");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let wire = wire.lock().unwrap().clone();
    let disk = testkit::files_under(&nodes[0].dir);
    assert!(disk.len() > 6, "both members' files are read");
    for tenant in ["acme", "beta", "aura.platform"] {
        let seed = seed_of(&learner, tenant);
        assert_eq!(seed, seed_of(&leader.node, tenant), "one key everywhere");
        // What the link did carry: the tenant's sealed key.
        let t: TenantId = tenant.parse().unwrap();
        let public = learner
            .read_local(|s| s.tenant(&t).map(|t| t.public_key().to_base64()))
            .unwrap();
        if tenant != "aura.platform" {
            assert!(holds(&wire, public.as_bytes()), "{tenant} crossed the link");
        }
        for form in encodings(&seed) {
            assert!(!holds(&wire, &form), "{tenant}'s seed crossed the link");
            for (path, bytes) in &disk {
                assert!(!holds(bytes, &form), "{path} holds {tenant}'s seed");
            }
        }
    }
    learner.shutdown().await;
    for n in nodes.into_iter().rev() {
        n.stop().await;
    }
}
