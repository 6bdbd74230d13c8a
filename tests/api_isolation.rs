//! Tenant isolation: every operation of the OpenAPI document is issued,
//! in random order, by tenant alpha's admin against tenant beta's ids
//! (beta in the path, or alpha's path with beta's resource ids). None
//! may answer anything but a 404 for beta's path, none may reveal beta's
//! data, and beta's state must be unchanged afterwards.

use aura_api::Role;
use aura_api::testkit::{Client, Db, TestServer};
use aura_engine::identity::KeyPair;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A small deterministic generator; the seed is printed for replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn populate(c: &Client, t: &str, secret: &str) -> Value {
    c.create_namespace(t, "ns-x").await.unwrap();
    c.create_user(t, &format!("user-{secret}")).await.unwrap();
    c.create_group(t, &format!("group-{secret}")).await.unwrap();
    let k = c.create_key(t, "admin", &[Role::Auditor]).await.unwrap();
    let reg: Value = c
        .post(
            &format!("/v1/tenants/{t}/agents"),
            &json!({"id": format!("agent-{secret}"), "org_unit": "ou",
                    "public_key": KeyPair::from_seed([9; 32]).public().to_base64()}),
        )
        .await
        .unwrap();
    let tool = format!("tool-{secret}");
    let r = c
        .raw(
            Method::PUT,
            &format!("/v1/tenants/{t}/tools/{tool}"),
            Some(&json!({"risk": "L1", "classification": "internal", "target": "cloud"})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let b: Value = c
        .post(
            &format!("/v1/tenants/{t}/policy-bundles"),
            &json!({"policies": aura_engine::sim::SIM_BUNDLE}),
        )
        .await
        .unwrap();
    let m: Value = c
        .post(
            &format!("/v1/tenants/{t}/missions"),
            &json!({"id": format!("mission-{secret}"), "namespace": "ns-x",
                    "agent": format!("agent-{secret}"),
                    "definition": {"objective": format!("objective {secret}"), "tools": [tool],
                                   "authority": "L1", "timeout": 600000},
                    "context": {"inputs": {}, "classification": "internal"}}),
        )
        .await
        .unwrap();
    json!({
        "namespace": "ns-x",
        "user": format!("user-{secret}"),
        "group": format!("group-{secret}"),
        "key": k.id,
        "agent": format!("agent-{secret}"),
        "serial": reg["credential"]["claims"]["serial"],
        "tool": tool,
        "version": b["version"],
        "other": b["version"],
        "mission": m["id"],
    })
}

async fn fingerprint(s: &TestServer, beta: &Client) -> (Value, Value, Value, Value) {
    let audit: Value = beta
        .get("/v1/tenants/beta/audit/entries?limit=1")
        .await
        .unwrap();
    let users: Value = beta.get("/v1/tenants/beta/users").await.unwrap();
    let groups: Value = beta.get("/v1/tenants/beta/groups").await.unwrap();
    let keys: Value = beta.get("/v1/tenants/beta/api-keys").await.unwrap();
    let _ = s;
    (audit["total"].clone(), users, groups, keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_operation_reaches_another_tenants_data() {
    let s = TestServer::start(Db::Sqlite).await;
    let alpha = s.tenant_admin("alpha").await;
    let beta = s.tenant_admin("beta").await;
    populate(&alpha, "alpha", "a1pha").await;
    let ids = populate(&beta, "beta", "bet4").await;
    let before = fingerprint(&s, &beta).await;
    let beta_tenant: Value = beta.get("/v1/tenants/beta").await.unwrap();
    let secrets = [
        "objective bet4".to_owned(),
        "user-bet4@example.com".to_owned(),
        "Tenant beta".to_owned(),
        beta_tenant["public_key"].as_str().unwrap().to_owned(),
    ];

    let doc: Value = serde_json::from_str(&aura_api::http::openapi::document()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.contains("{tenant}") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            ops.push((path.clone(), method.to_uppercase()));
        }
    }
    assert!(
        ops.len() > 40,
        "every tenant operation is exercised: {}",
        ops.len()
    );

    let seed = std::env::var("AURA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| aura_api::time::now_millis() as u64 | 1);
    println!("seed {seed} (AURA_TEST_SEED to replay)");
    let mut rng = Rng(seed);
    let bodies = [
        json!({}),
        json!({"id": "x", "display_name": "x"}),
        json!({"reason": "r", "approve": true}),
        json!({"version": ids["version"], "basis_points": 100}),
        json!({"steps": [{"tool": ids["tool"], "arguments": {}}]}),
    ];
    for round in 0..3 {
        for i in (1..ops.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            ops.swap(i, j);
        }
        for (template, method) in &ops {
            // Round 0: beta's path. Later rounds: alpha's path, beta's ids.
            let tenant = if round == 0 { "beta" } else { "alpha" };
            let mut path = template.replace("{tenant}", tenant);
            for (name, value) in ids.as_object().unwrap() {
                let v = match value {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                path = path.replace(&format!("{{{name}}}"), &v);
            }
            let body = &bodies[(rng.next() % bodies.len() as u64) as usize];
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let send_body = (method == Method::POST || method == Method::PUT).then_some(body);
            let etag = [("if-match", "*")];
            let r = alpha.raw(method.clone(), &path, send_body, &etag).await;
            let text = r.body.to_string();
            // What beta holds that no request names: it must never show.
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{method} {path} revealed `{secret}`: {text}"
                );
            }
            if !r.status.is_success() {
                assert_eq!(
                    r.headers["content-type"], "application/problem+json",
                    "{method} {path}: every error is a problem"
                );
            }
            if round == 0 {
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}: {text}");
                assert_eq!(r.body["detail"], "tenant `beta` does not exist");
            }
        }
    }
    assert_eq!(fingerprint(&s, &beta).await, before, "beta is unchanged");
    s.stop().await;
}
