//! A tenant's secrets: write-only over the API, sealed in the replicated
//! state and on disk, recorded in the audit chain by name and version
//! only, and usable by the tenant's own configurations alone.

use aura_api::Role;
use aura_api::testkit::{self, Client, Db, Raw, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const VALUE: &str = "sk-live-0123456789abcdef-secret-value";

async fn put(c: &Client, tenant: &str, name: &str, body: &Value) -> Raw {
    c.raw(
        Method::PUT,
        &format!("/v1/tenants/{tenant}/secrets/{name}"),
        Some(body),
        &[],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_write_only_versioned_and_audited_by_name() {
    let s = TestServer::start(Db::Sqlite).await;
    let admin = s.tenant_admin("acme").await;
    let mut seen = Vec::new();

    let r = put(&admin, "acme", "model-key", &json!({"value": VALUE})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "model-key");
    assert_eq!(r.body["version"], 1);
    seen.push(r.body.to_string());
    let r = put(
        &admin,
        "acme",
        "model-key",
        &json!({"value": format!("{VALUE}-2")}),
    )
    .await;
    assert_eq!(r.body["version"], 2, "{}", r.body);
    seen.push(r.body.to_string());
    let list: Value = admin.get("/v1/tenants/acme/secrets").await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["version"], 2);
    assert_eq!(
        list[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["name", "version", "updated_at"]
    );
    seen.push(list.to_string());

    // Bad input changes nothing.
    for (name, body, status) in [
        (
            "..hidden",
            json!({"value": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("ok", json!({"value": ""}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            "ok",
            json!({"value": "x".repeat(8193)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "ok",
            json!({"value": "x", "shown": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = put(&admin, "acme", name, &body).await;
        assert_eq!(r.status, status, "{name}: {}", r.body);
        seen.push(r.body.to_string());
    }
    let r = admin
        .raw(Method::DELETE, "/v1/tenants/acme/secrets/absent", None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let list: Value = admin.get("/v1/tenants/acme/secrets").await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Only admins see or change secrets.
    let auditor = s.client(
        &admin
            .create_key("acme", "admin", &[Role::Auditor, Role::Operator])
            .await
            .unwrap()
            .key,
    );
    let r = put(&auditor, "acme", "mine", &json!({"value": "x"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = auditor
        .raw(Method::GET, "/v1/tenants/acme/secrets", None, &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = admin
        .raw(
            Method::DELETE,
            "/v1/tenants/acme/secrets/model-key",
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // The record: a put per version and the delete, by name and version.
    let audit: Value = auditor
        .get("/v1/tenants/acme/audit/entries?limit=1000")
        .await
        .unwrap();
    let secret_entries: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["kind"].as_str().unwrap().starts_with("secret."))
        .collect();
    let kinds: Vec<&str> = secret_entries
        .iter()
        .map(|e| e["entry"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["secret.put", "secret.put", "secret.delete"]);
    assert_eq!(
        secret_entries[1]["payload"],
        json!([{"event": "secret_put", "name": "model-key", "version": 2}])
    );
    seen.push(audit.to_string());
    let export = auditor
        .raw(Method::GET, "/v1/tenants/acme/audit/export", None, &[])
        .await;
    seen.push(export.body.to_string());

    for text in &seen {
        assert!(!text.contains(VALUE), "a response holds the value: {text}");
    }
    // Nor is it anywhere on disk: the log, snapshots, the SQL store.
    let all = testkit::files_under(&s.dir);
    assert!(all.len() > 3, "the node's files are read");
    for (path, bytes) in &all {
        assert!(
            !bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
            "{path} holds the value"
        );
    }
    s.stop().await;
}
