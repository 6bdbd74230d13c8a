//! Rotating a tenant's signing key over the API: who may, what the
//! listing shows, what a bad request changes (nothing), and what the
//! gateway accepts afterwards: credentials and tokens of a key retired on
//! schedule still pass, those of a key retired as compromised do not.

use aura_api::Role;
use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Db, Raw, TestServer};
use aura_engine::audit::{VerifyOptions, verify_export};
use aura_engine::identity::PublicKey;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn rotate(c: &aura_api::testkit::Client, tenant: &str, body: Value) -> Raw {
    c.raw(
        Method::POST,
        &format!("/v1/tenants/{tenant}/signing-keys"),
        Some(&body),
        &[],
    )
    .await
}

async fn send(s: &TestServer, envelope: &impl serde::Serialize) -> Raw {
    let body = serde_json::to_value(envelope).unwrap();
    s.anonymous()
        .raw(Method::POST, "/v1/gateway/tool-calls", Some(&body), &[])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_rotate_everyone_lists_and_bad_requests_change_nothing() {
    let s = TestServer::start(Db::Sqlite).await;
    let admin = s.tenant_admin("acme").await;
    let tenant: Value = admin.get("/v1/tenants/acme").await.unwrap();
    let first = tenant["public_key"].as_str().unwrap().to_owned();
    admin.create_user("acme", "ann").await.unwrap();
    let auditor = s.client(
        &admin
            .create_key("acme", "ann", &[Role::Auditor])
            .await
            .unwrap()
            .key,
    );

    // Refused, and nothing changes: not an admin, a malformed body.
    let r = rotate(&auditor, "acme", json!({"retirement": "scheduled"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = rotate(&admin, "acme", json!({"retirement": "sometimes"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    let r = rotate(&admin, "acme", json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let keys: Vec<Value> = auditor.get("/v1/tenants/acme/signing-keys").await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["public_key"], first.as_str());
    assert_eq!(keys[0]["current"], true);

    let r = rotate(&admin, "acme", json!({"retirement": "scheduled"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let second = r.body["public_key"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(r.body["current"], true);
    let keys: Vec<Value> = auditor.get("/v1/tenants/acme/signing-keys").await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["public_key"], first.as_str());
    assert_eq!(
        (
            &keys[0]["current"],
            &keys[0]["honoured"],
            &keys[0]["retirement"]
        ),
        (&json!(false), &json!(true), &json!("scheduled"))
    );
    assert!(keys[0]["last_checkpoint"].as_u64().unwrap() > 0);
    assert_eq!(keys[1]["public_key"], second.as_str());
    let tenant: Value = admin.get("/v1/tenants/acme").await.unwrap();
    assert_eq!(tenant["public_key"], second.as_str());
    assert_eq!(tenant["key_id"], keys[1]["key_id"]);
    // No private half of any key is ever shown.
    assert!(
        keys.iter()
            .all(|k| k.as_object().unwrap().keys().all(|f| !f.contains("seed")))
    );

    // The rotation is in the chain, by the admin, and the export (signed
    // to its end by the old key's handover) verifies from the first key.
    let entries: Value = auditor
        .get("/v1/tenants/acme/audit/entries?limit=1000")
        .await
        .unwrap();
    let rotation = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entry"]["kind"] == "tenant.signing_key_rotate")
        .expect("the rotation is audited");
    assert_eq!(rotation["entry"]["actor"], json!({"user": "admin"}));
    assert_eq!(rotation["payload"][0]["public_key"], second.as_str());
    let export = auditor
        .raw(Method::GET, "/v1/tenants/acme/audit/export", None, &[])
        .await;
    let text = export.body.as_str().unwrap().to_owned();
    let options = VerifyOptions {
        trusted_key: Some(PublicKey::from_base64(&first).unwrap()),
        ..VerifyOptions::default()
    };
    let report = verify_export(&mut text.as_bytes(), &options, &mut |_| {}).unwrap();
    assert_eq!(report.keys.len(), 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_rotation_keeps_old_credentials_and_a_compromised_one_refuses_them() {
    let tool = RecordingTool::start().await;
    let s = TestServer::start(Db::Sqlite).await;
    let g = GovernedTenant::create(&s, "acme", &tool.url).await;
    let token = g.running_mission(&s, "m1", json!({})).await;
    assert!(token.key_id.is_some(), "tokens name their key");
    assert_eq!(g.agent.credential.key_id, token.key_id);

    // On schedule: what the old key signed still passes the gateway.
    let r = rotate(&g.admin, "acme", json!({"retirement": "scheduled"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ok = send(
        &s,
        &g.agent.sign(&token, g.call("m1", 0, json!({"amount": 5}))),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);

    // A token issued now names the new key.
    let newer = g.running_mission(&s, "m2", json!({})).await;
    assert_eq!(newer.key_id.unwrap().to_string(), r.body["key_id"]);
    assert_ne!(newer.key_id, token.key_id);

    // Compromised: what the retired key (the second) signed is refused at
    // once, with its own code; what the first key signed still passes.
    let r = rotate(&g.admin, "acme", json!({"retirement": "compromised"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let refused = send(
        &s,
        &g.agent.sign(&newer, g.call("m2", 0, json!({"amount": 5}))),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert_eq!(refused.body["code"], "key-compromised");
    let still = send(
        &s,
        &g.agent.sign(&token, g.call("m1", 1, json!({"amount": 6}))),
    )
    .await;
    assert_eq!(still.status, StatusCode::OK, "{}", still.body);
    assert_eq!(
        tool.calls().len(),
        2,
        "the refused call never reached the tool"
    );
    s.stop().await;
}
