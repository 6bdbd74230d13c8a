//! The API end to end over HTTP, as an integrator and admins use it:
//! tenant and namespace setup, directory, agent and tool registration,
//! policy upload and release, authority and routing; a mission that
//! PERMITs, one that ESCALATEs and is approved by a quorum, one that is
//! rejected, one that is DENIED; the audit export then verified by
//! `aura audit verify` with the tenant's published key, and each mission
//! rebuilt from it by `aura mission replay`.

use std::process::Command;

use aura_api::Role;
use aura_api::testkit::{Client, Db, TestServer};
use aura_engine::identity::KeyPair;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn put_config(c: &Client, path: &str, body: Value) -> Value {
    let current = c.raw(Method::GET, path, None, &[]).await;
    assert_eq!(current.status, StatusCode::OK, "{path}: {:?}", current.body);
    let etag = current.headers["etag"].to_str().unwrap().to_owned();
    // Without If-Match: 428; with a stale ETag: 412; both change nothing.
    let r = c.raw(Method::PUT, path, Some(&body), &[]).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_REQUIRED, "{path}");
    let r = c
        .raw(Method::PUT, path, Some(&body), &[("if-match", "\"stale\"")])
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{path}");
    let r = c
        .raw(Method::PUT, path, Some(&body), &[("if-match", &etag)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
    assert_ne!(r.headers["etag"], current.headers["etag"]);
    r.body
}

fn mission(id: &str, amount: u64) -> Value {
    json!({
        "id": id,
        "namespace": "payments",
        "agent": "payer-bot",
        "definition": {
            "objective": format!("pay invoice {id}"),
            "tools": ["erp.post"],
            "authority": "L2",
            "timeout": 3_600_000
        },
        "context": {"inputs": {"invoice": id}, "classification": "internal"},
        "plan": [{"tool": "erp.post", "arguments": {"amount": amount}}]
    })
}

fn replay(
    export: &std::path::Path,
    mission: &str,
    digest: &str,
    key: &str,
    output: &std::path::Path,
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aura"))
        .args(["mission", "replay", mission, "--export"])
        .arg(export)
        .args(["--digest", digest, "--key", key, "--output"])
        .arg(output)
        .output()
        .unwrap()
}

async fn decide(c: &Client, id: &str, approve: bool) -> Result<Value, aura_api::testkit::ApiError> {
    c.post(
        &format!("/v1/tenants/acme/missions/{id}/decisions"),
        &json!({"approve": approve, "reason": "reviewed the invoice"}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missions_are_governed_end_to_end_and_the_audit_export_verifies() {
    let s = TestServer::start(Db::Sqlite).await;
    let created = s.platform().create_tenant("acme").await.unwrap();
    let admin = s.client(&created.admin_key.key);
    admin.create_namespace("acme", "payments").await.unwrap();

    // Directory: two approvers in the `finance` group, an operator.
    for u in ["ann", "ben", "ops"] {
        admin.create_user("acme", u).await.unwrap();
    }
    admin.create_group("acme", "finance").await.unwrap();
    admin.add_member("acme", "finance", "ann").await.unwrap();
    admin.add_member("acme", "finance", "ben").await.unwrap();
    let key = |u: &'static str, r: Role| {
        let admin = admin.clone();
        async move { admin.create_key("acme", u, &[r]).await.unwrap().key }
    };
    let ann = s.client(&key("ann", Role::Approver).await);
    let ben = s.client(&key("ben", Role::Approver).await);
    let ops = s.client(&key("ops", Role::Operator).await);
    let manager = s.client(&key("ops", Role::AgentManager).await);

    // Agent and tool.
    let agent_key = KeyPair::from_seed([7; 32]).public().to_base64();
    let reg: Value = manager
        .post(
            "/v1/tenants/acme/agents",
            &json!({"id": "payer-bot", "org_unit": "finance-ops", "owner": "ops", "public_key": agent_key}),
        )
        .await
        .unwrap();
    assert_eq!(reg["agent"]["active"], true);
    assert_eq!(reg["credential"]["claims"]["agent"], "payer-bot");
    let invocation = json!({
        "endpoint": "https://erp.internal.example/post",
        "input_schema": {"type": "object", "properties": {"amount": {"type": "integer"}}},
        "compensation_endpoint": "https://erp.internal.example/reverse",
        "timeout_ms": 5000,
        "placements": [{"target": "region:eu-west-1", "endpoint": "https://erp.eu.example/post",
                        "compensation_endpoint": null}]
    });
    let spec = json!({"risk": "L2", "classification": "confidential", "target": "on-prem",
                      "invocation": invocation});
    let tool_path = "/v1/tenants/acme/tools/erp.post";
    let tool = admin.raw(Method::PUT, tool_path, Some(&spec), &[]).await;
    // Stored as registered, with the default retry policy filled in.
    let mut invocation = invocation;
    invocation["retry"] = json!({
        "initial_interval_ms": 1000, "backoff_coefficient": 2.0, "maximum_interval_ms": 60_000,
        "maximum_attempts": 3, "maximum_duration_ms": null, "non_retryable": [],
        "on_exhaustion": "fail"
    });
    assert_eq!(tool.status, StatusCode::OK, "{:?}", tool.body);
    let shown: Value = admin.get(tool_path).await.unwrap();
    assert_eq!(
        shown["spec"]["invocation"], invocation,
        "stored as registered"
    );
    // A tool the gateway could not call is refused, and nothing changes.
    for bad in [
        json!({"endpoint": "ftp://x", "input_schema": {}, "timeout_ms": 5}),
        json!({"endpoint": "https://x", "input_schema": "any", "timeout_ms": 5}),
        json!({"endpoint": "https://x", "input_schema": {}, "timeout_ms": 0}),
    ] {
        let body =
            json!({"risk": "L1", "classification": "public", "target": "cloud", "invocation": bad});
        let r = admin.raw(Method::PUT, tool_path, Some(&body), &[]).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad} {:?}",
            r.body
        );
        assert_eq!(r.body["code"], "bad_config");
    }
    let shown: Value = admin.get(tool_path).await.unwrap();
    assert_eq!(shown["spec"]["invocation"], invocation);

    // Policy: upload, test, release as stable (with If-Match).
    let bundle: Value = admin
        .post(
            "/v1/tenants/acme/policy-bundles",
            &json!({"policies": aura_engine::sim::SIM_BUNDLE}),
        )
        .await
        .unwrap();
    let version = bundle["version"].as_str().unwrap().to_owned();
    assert_eq!(
        bundle["policies"],
        json!([
            "agents-may-use-tools",
            "large-amounts-need-approval",
            "no-huge-amounts"
        ])
    );
    let bad = admin
        .raw(
            Method::POST,
            "/v1/tenants/acme/policy-bundles",
            Some(&json!({"policies": "permit(principal, action, resource) when { nonsense };"})),
            &[],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains(":1:"),
        "{:?}",
        bad.body
    );
    let policy = admin
        .raw(
            Method::GET,
            "/v1/tenants/acme/namespaces/payments/policy",
            None,
            &[],
        )
        .await;
    let etag = policy.headers["etag"].to_str().unwrap().to_owned();
    let stable = "/v1/tenants/acme/namespaces/payments/policy/stable";
    let body = json!({"version": version});
    let r = admin.raw(Method::PUT, stable, Some(&body), &[]).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_REQUIRED);
    let r = admin
        .raw(Method::PUT, stable, Some(&body), &[("if-match", &etag)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["stable"], version.as_str());
    // The ETag it was changed with is now stale.
    let r = admin
        .raw(Method::PUT, stable, Some(&body), &[("if-match", &etag)])
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    put_config(
        &admin,
        "/v1/tenants/acme/namespaces/payments/authority",
        json!({
            "graph": {"users": {}, "groups": {"finance": "L2"}},
            "rules": {"min_level": "L1", "quorum": 2, "separation_of_duties": true,
                      "deadline": 86_400_000, "at_deadline": "reject"}
        }),
    )
    .await;
    put_config(
        &admin,
        "/v1/tenants/acme/namespaces/payments/routing",
        json!({"public": ["on-prem"], "internal": ["on-prem"], "confidential": ["on-prem"]}),
    )
    .await;

    // PERMIT: a small payment is approved by policy at once.
    let m: Value = ops
        .post("/v1/tenants/acme/missions", &mission("small", 10))
        .await
        .unwrap();
    assert_eq!(m["state"], "PENDING_EXECUTION", "{m}");
    // DENY: a huge one closes with outcome denied.
    let m: Value = ops
        .post("/v1/tenants/acme/missions", &mission("huge", 500_000))
        .await
        .unwrap();
    assert_eq!(m["state"], "CLOSED");
    assert_eq!(m["outcome"], "denied", "{m}");
    // ESCALATE: waits for two finance approvers.
    let m: Value = ops
        .post("/v1/tenants/acme/missions", &mission("large", 5_000))
        .await
        .unwrap();
    assert_eq!(m["state"], "WAITING_APPROVAL");
    let inbox: Vec<Value> = ann.get("/v1/tenants/acme/approvals").await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["mission"]["id"], "large");
    assert_eq!(inbox[0]["required_level"], "L2");
    // The operator cannot approve; ann's vote alone is not a quorum.
    assert_eq!(
        decide(&ops, "large", true).await.unwrap_err().status,
        StatusCode::FORBIDDEN
    );
    let m = decide(&ann, "large", true).await.unwrap();
    assert_eq!(m["state"], "WAITING_APPROVAL");
    let e = decide(&ann, "large", true).await.unwrap_err();
    assert_eq!(
        e.status,
        StatusCode::CONFLICT,
        "no second vote: {:?}",
        e.problem
    );
    assert!(
        ann.get::<Vec<Value>>("/v1/tenants/acme/approvals")
            .await
            .unwrap()
            .is_empty()
    );
    let m = decide(&ben, "large", true).await.unwrap();
    assert_eq!(m["state"], "PENDING_EXECUTION");
    // Rejected: one rejection closes it.
    ops.post::<_, Value>("/v1/tenants/acme/missions", &mission("doubtful", 7_000))
        .await
        .unwrap();
    let m = decide(&ben, "doubtful", false).await.unwrap();
    assert_eq!(m["state"], "CLOSED");
    assert_eq!(m["outcome"], "rejected", "{m}");

    // The full record shows the decisions and who approved.
    let rec: Value = ops.get("/v1/tenants/acme/missions/large").await.unwrap();
    let votes = rec["approval"]["votes"].as_array().unwrap();
    let approvers: Vec<&str> = votes
        .iter()
        .map(|v| v["approver"].as_str().unwrap())
        .collect();
    assert_eq!(approvers, ["ann", "ben"]);
    assert_eq!(rec["plan"]["decision"]["decision"], "ESCALATE");
    // Listing with a filter and pages of one.
    let page: Value = ops
        .get("/v1/tenants/acme/missions?state=CLOSED&limit=1")
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["next_cursor"].as_str().unwrap();
    let page2: Value = ops
        .get(&format!(
            "/v1/tenants/acme/missions?state=CLOSED&limit=1&cursor={next}"
        ))
        .await
        .unwrap();
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_ne!(page2["items"][0]["id"], page["items"][0]["id"]);
    assert!(page2.get("next_cursor").is_none());
    // A token for the approved mission's agent.
    let token: Value = ops
        .post("/v1/tenants/acme/missions/large/tokens", &json!({}))
        .await
        .unwrap();
    assert_eq!(token["claims"]["agent"], "payer-bot");

    // Audit: sign a checkpoint, export, verify with the tenant's key.
    let auditor = s.client(&key("ops", Role::Auditor).await);
    let cp: Value = auditor
        .post("/v1/tenants/acme/audit/checkpoints", &json!(null))
        .await
        .unwrap();
    assert!(cp["size"].as_u64().unwrap() > 10);
    let proof: Value = auditor
        .get("/v1/tenants/acme/audit/proofs/inclusion?index=3")
        .await
        .unwrap();
    assert!(!proof["path"].as_array().unwrap().is_empty());
    let export = auditor
        .raw(Method::GET, "/v1/tenants/acme/audit/export", None, &[])
        .await;
    assert_eq!(export.status, StatusCode::OK);
    let text = export.body.as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.jsonl");
    std::fs::write(&file, &text).unwrap();
    let tenant_key = created.tenant.public_key.clone();
    let out = Command::new(env!("CARGO_BIN_EXE_aura"))
        .args(["audit", "verify"])
        .arg(&file)
        .args(["--key", &tenant_key])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("OK: "), "{stdout}");
    // Each mission rebuilds from its record in the export: the escalated
    // one with its votes, the denied one with its decision.
    for id in ["large", "huge", "doubtful", "small"] {
        let live: Value = ops
            .get(&format!("/v1/tenants/acme/missions/{id}"))
            .await
            .unwrap();
        let digest = live["digest"].as_str().unwrap();
        let rebuilt = dir.path().join(format!("{id}.json"));
        let out = replay(&file, id, digest, &tenant_key, &rebuilt);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{id}: {stdout}");
        assert!(
            stdout.starts_with(&format!("OK: mission `{id}`")),
            "{stdout}"
        );
        let mut rebuilt: Value = serde_json::from_slice(&std::fs::read(&rebuilt).unwrap()).unwrap();
        rebuilt["digest"] = json!(digest);
        assert_eq!(rebuilt, live);
    }
    // A digest the record does not rebuild is a failure.
    let other: Value = ops.get("/v1/tenants/acme/missions/small").await.unwrap();
    let out = replay(
        &file,
        "large",
        other["digest"].as_str().unwrap(),
        &tenant_key,
        &dir.path().join("x.json"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("FAILED: mission `large`"));
    // Tampering with the exported chain is caught.
    let tampered = text.replacen(
        "\"kind\":\"mission.approval\"",
        "\"kind\":\"mission.approvaI\"",
        1,
    );
    assert_ne!(tampered, text);
    std::fs::write(&file, tampered).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aura"))
        .args(["audit", "verify"])
        .arg(&file)
        .args(["--key", &tenant_key])
        .output()
        .unwrap();
    assert!(!out.status.success());
    s.stop().await;
}
