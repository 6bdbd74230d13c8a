//! The platform's keys: in a directory of their own, rotated and revoked
//! over the API with every change in the platform's audit chain, and the
//! SQL platform keys of an older version adopted at bootstrap.

use aura_api::testkit::{Client, Db, TestServer};
use reqwest::{Method, StatusCode};
use sea_orm::{ActiveModelTrait, IntoActiveModel};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_key_rotates_and_is_revoked_on_the_record() {
    let s = TestServer::start(Db::Sqlite).await;
    let platform = s.platform();
    let keys: Vec<Value> = platform.get("/v1/platform/keys").await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["minted_by"], "platform");
    let first = keys[0]["id"].as_str().unwrap().to_owned();

    // The last working key is never revoked.
    let r = platform
        .raw(
            Method::DELETE,
            &format!("/v1/platform/keys/{first}"),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["code"], "last_platform_key");

    // An expiry in the past changes nothing.
    let r = platform
        .raw(
            Method::POST,
            "/v1/platform/keys/rotate",
            Some(&json!({"expires_at": 1})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = platform
        .raw(
            Method::POST,
            "/v1/platform/keys/rotate",
            Some(&json!({})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let next = Client::connect(&s.base, r.body["key"].as_str().unwrap());
    let r = platform.raw(Method::GET, "/v1/tenants", None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["detail"], "the API key has been revoked");
    next.create_tenant("acme").await.unwrap();

    // Tenant keys have no say over the platform's, and the platform's
    // own tenant is neither listed nor creatable.
    let created = next.create_tenant("globex").await.unwrap();
    let tenant_admin = s.client(&created.admin_key.key);
    let r = tenant_admin
        .raw(Method::GET, "/v1/platform/keys", None, &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let tenants: Vec<Value> = next.get("/v1/tenants").await.unwrap();
    let ids: Vec<&Value> = tenants.iter().map(|t| &t["id"]).collect();
    assert_eq!(ids, [&json!("acme"), &json!("globex")]);
    let r = next
        .raw(
            Method::POST,
            "/v1/tenants",
            Some(&json!({"id": "aura.platform", "display_name": "x"})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);

    let entries: Value = next.get("/v1/platform/audit/entries").await.unwrap();
    let revoke = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entry"]["kind"] == "directory.key_revoke")
        .unwrap();
    assert_eq!(revoke["entry"]["actor"], json!({"user": "operator"}));
    assert_eq!(revoke["payload"][0]["key"], first);
    s.stop().await;
}

/// A deployment whose platform key an older version kept in SQL: the
/// bootstrap records it in the platform's directory, so it keeps working,
/// and writes no new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_platform_key_of_an_older_version_is_adopted_at_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let node = aura_raft::Node::start(aura_raft::testkit::node_config(
        1,
        dir.path(),
        &aura_raft::ClusterSecret::random(),
        aura_raft::Bootstrap::Form(Default::default()),
        0,
    ))
    .await
    .unwrap();
    aura_raft::testkit::formats_agreed(std::slice::from_ref(&node)).await;
    let store = aura_api::store::Store::open(&aura_api::store::Store::sqlite_url(dir.path()))
        .await
        .unwrap();
    let legacy = aura_api::app::keys::secret::mint();
    let row = aura_api::store::keys::StoredKey {
        id: legacy.id.to_string(),
        tenant: None,
        user_id: None,
        name: "bootstrap platform admin".into(),
        roles: "platform_admin".into(),
        secret_hash: legacy.secret_hash.to_hex(),
        created_at: 0,
        expires_at: None,
        revoked_at: None,
    };
    row.into_active_model().insert(store.db()).await.unwrap();
    let state = aura_api::AppState::connect(node.clone(), store, aura_api::testkit::api_config())
        .await
        .unwrap();
    let key_file = dir.path().join("bootstrap-admin.key");
    let wrote = aura_api::bootstrap::ensure_platform_key(&state.app, &key_file)
        .await
        .unwrap();
    assert!(
        !wrote && !key_file.exists(),
        "no new key when an old one works"
    );
    let held = state.app.read_local(|s| {
        s.key_tenant(&legacy.id).map(|t| {
            (
                t.id().to_string(),
                t.directory().keys()[&legacy.id].user.to_string(),
            )
        })
    });
    assert_eq!(held, Some(("aura.platform".into(), "operator".into())));
    // Bootstrapping again changes nothing.
    assert!(
        !aura_api::bootstrap::ensure_platform_key(&state.app, &key_file)
            .await
            .unwrap()
    );
    node.shutdown().await;
}
