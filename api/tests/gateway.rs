//! The Tool Gateway over HTTP against a real server and a local tool that
//! records every call it receives: DualToken refusals (each audited, none
//! reaching the tool), schema and bound checks before any network call,
//! ESCALATE → approval → the same call, DENY never reaching the tool, the
//! audit entry of a call existing before the tool receives it, and
//! recorded results returned on retry without calling again.

use std::sync::Arc;

use aura_api::Role;
use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Client, Db, Raw, TestServer};
use aura_engine::identity::KeyPair;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn send(s: &TestServer, envelope: &impl serde::Serialize) -> Raw {
    let body = serde_json::to_value(envelope).unwrap();
    s.anonymous()
        .raw(Method::POST, "/v1/gateway/tool-calls", Some(&body), &[])
        .await
}

async fn audit(c: &Client, tenant: &str) -> Vec<Value> {
    let r: Value = c
        .get(&format!("/v1/tenants/{tenant}/audit/entries?limit=1000"))
        .await
        .unwrap();
    r["entries"].as_array().unwrap().clone()
}

fn refusals(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e["entry"]["kind"] == "tool_call.refused")
        .map(|e| e["payload"][0]["code"].as_str().unwrap().to_owned())
        .collect()
}

fn rejected_codes(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e["entry"]["kind"] == "command.rejected")
        .map(|e| {
            e["payload"][0]["rejection"]["code"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// A server with tenant `acme` set up for `tool` (see `GovernedTenant`).
async fn acme(tool: &RecordingTool) -> (TestServer, GovernedTenant) {
    let s = TestServer::start(Db::Sqlite).await;
    let g = GovernedTenant::create(&s, "acme", &tool.url).await;
    (s, g)
}

/// A client for `approver-a` (L2 in the simulator's authority graph).
async fn approver(s: &TestServer, g: &GovernedTenant) -> Client {
    g.admin.create_user(&g.tenant, "approver-a").await.unwrap();
    let key = g
        .admin
        .create_key(&g.tenant, "approver-a", &[Role::Approver])
        .await
        .unwrap()
        .key;
    s.client(&key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dualtoken_failure_is_refused_audited_and_never_reaches_the_tool() {
    let tool = RecordingTool::start().await;
    let (s, g) = acme(&tool).await;
    let token = g.running_mission(&s, "m1", json!({})).await;
    let other_token = g.running_mission(&s, "m2", json!({})).await;
    let call = || g.call("m1", 0, json!({"amount": 5}));

    // A valid call passes: the baseline the refusals differ from.
    let ok = send(&s, &g.agent.sign(&token, call())).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(tool.calls().len(), 1);

    let mut cases: Vec<(&str, Value)> = Vec::new();
    // Signed by a key that is not the credential's.
    let impostor = aura_api::testkit::agent::TestAgent {
        key: KeyPair::from_seed([9; 32]),
        credential: g.agent.credential.clone(),
    };
    cases.push((
        "bad-signature",
        serde_json::to_value(impostor.sign(&token, call())).unwrap(),
    ));
    // The body changed after signing.
    let mut tampered = serde_json::to_value(g.agent.sign(&token, call())).unwrap();
    tampered["call"]["arguments"]["amount"] = json!(6);
    cases.push(("bad-signature", tampered));
    // A credential claim changed (the tenant's signature no longer holds).
    let mut forged = serde_json::to_value(g.agent.sign(&token, call())).unwrap();
    forged["credential"]["claims"]["org_unit"] = json!("board");
    cases.push(("bad-signature", forged));
    // The token of another mission.
    let mut wrong = g.agent.sign(&other_token, call());
    wrong.call.mission = "m1".parse().unwrap();
    let wrong = g.agent.sign(&other_token, wrong.call);
    cases.push(("wrong-mission", serde_json::to_value(wrong).unwrap()));
    // Too far from the gateway's clock.
    let stale = g.agent.sign_with(
        &token,
        call(),
        aura_engine::time::Timestamp(aura_api::time::now_millis() - 120_000),
        "nonce-from-long-ago-0001",
    );
    cases.push(("clock-skew", serde_json::to_value(stale).unwrap()));
    // A nonce too short to be one.
    let short = g
        .agent
        .sign_with(&token, call(), aura_api::time::now(), "abc");
    cases.push(("malformed-nonce", serde_json::to_value(short).unwrap()));

    for (code, envelope) in &cases {
        let r = send(&s, envelope).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{code}: {:?}", r.body);
        assert_eq!(r.headers["content-type"], "application/problem+json");
        assert_eq!(r.body["type"], "urn:aura:problem:dualtoken-refused");
        assert_eq!(r.body["code"], *code, "{:?}", r.body);
    }

    // A replayed request: the first copy passed, the second is refused.
    let once = g.agent.sign(&token, g.call("m1", 1, json!({"amount": 5})));
    assert_eq!(send(&s, &once).await.status, StatusCode::OK);
    let again = send(&s, &once).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.body["code"], "replayed-nonce");

    // Revocation takes effect on the next call.
    let serial = g.agent.credential.claims.serial;
    g.admin
        .post::<_, Value>(
            &format!("/v1/tenants/acme/credentials/{serial}/revoke"),
            &json!({"reason": "key leaked"}),
        )
        .await
        .unwrap();
    let r = send(
        &s,
        &g.agent.sign(&token, g.call("m1", 2, json!({"amount": 5}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["code"], "revoked");

    assert_eq!(tool.calls().len(), 2, "no refused call reached the tool");
    let entries = audit(&g.admin, "acme").await;
    // Each kind of refusal is audited once per window: the second and
    // third bad signatures are counted, not recorded.
    let mut expected: Vec<String> = Vec::new();
    for (c, _) in &cases {
        if !expected.iter().any(|e| e == c) {
            expected.push(c.to_string());
        }
    }
    expected.push("replayed-nonce".into());
    expected.push("revoked".into());
    assert_eq!(refusals(&entries), expected, "in order");
    let metrics = reqwest::get(format!("{}/metrics", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("aura_gateway_refusals_total{code=\"bad-signature\"} 3"),
        "every refusal is counted"
    );
    let refused = entries
        .iter()
        .find(|e| e["entry"]["kind"] == "tool_call.refused")
        .unwrap();
    assert_eq!(refused["entry"]["mission"], "m1");
    assert_eq!(refused["payload"][0]["claimed_agent"], "bot");

    // A tenant that does not exist is refused exactly as a credential of
    // a tenant that does, which its key does not verify.
    let mut nowhere = serde_json::to_value(g.agent.sign(&token, call())).unwrap();
    nowhere["call"]["tenant"] = json!("nobody");
    let absent = send(&s, &nowhere).await;
    let mut forged = serde_json::to_value(g.agent.sign(&token, call())).unwrap();
    forged["credential"]["claims"]["org_unit"] = json!("board");
    let present = send(&s, &forged).await;
    assert_eq!(absent.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (&absent.body["code"], &absent.body["detail"]),
        (&present.body["code"], &present.body["detail"])
    );
    // Malformed envelopes are 400/422 problems.
    let r = send(&s, &json!({"call": 1})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_bounds_and_scope_are_checked_before_any_network_call() {
    let tool = RecordingTool::start().await;
    let (s, g) = acme(&tool).await;
    let token = g
        .running_mission(
            &s,
            "m1",
            json!({"parameters": {"erp.post": {"bounds": {"/amount": {"max": 100}}}}}),
        )
        .await;

    // Within the token's bounds but outside the tool's input schema
    // (amount must be a non-negative integer).
    let r = send(
        &s,
        &g.agent.sign(&token, g.call("m1", 0, json!({"amount": -1}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["code"], "arguments-invalid");
    assert_eq!(r.body["errors"][0]["pointer"], "/arguments/amount");
    let r = send(
        &s,
        &g.agent
            .sign(&token, g.call("m1", 0, json!({"amount": 1.5}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Outside the token's parameter bounds.
    let r = send(
        &s,
        &g.agent
            .sign(&token, g.call("m1", 0, json!({"amount": 101}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.body["code"], "parameter-out-of-bounds");
    // A tool outside the token (and the mission's boundary).
    let mut outside = g.call("m1", 0, json!({"amount": 1}));
    outside.tool = "mail.send".parse().unwrap();
    let r = send(&s, &g.agent.sign(&token, outside)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["code"], "tool-out-of-scope");

    assert!(tool.calls().is_empty(), "nothing reached the tool");
    let entries = audit(&g.admin, "acme").await;
    assert_eq!(
        refusals(&entries),
        [
            "arguments-invalid",
            "arguments-invalid",
            "parameter-out-of-bounds",
            "tool-out-of-scope"
        ]
    );
    // The same call within bounds goes through.
    let r = send(
        &s,
        &g.agent
            .sign(&token, g.call("m1", 0, json!({"amount": 100}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(tool.calls().len(), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalated_call_proceeds_once_approved_and_a_denied_one_never_reaches_the_tool() {
    let tool = RecordingTool::start().await;
    let (s, g) = acme(&tool).await;
    let approver = approver(&s, &g).await;
    let token = g.running_mission(&s, "m1", json!({})).await;

    // DENY: the decision record comes back, the tool hears nothing.
    let r = send(
        &s,
        &g.agent
            .sign(&token, g.call("m1", 0, json!({"amount": 500_000}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.body["type"], "urn:aura:problem:tool-call-denied");
    assert_eq!(r.body["decision"]["decision"], "DENY");
    assert_eq!(
        r.body["decision"]["determining"],
        json!(["large-amounts-need-approval", "no-huge-amounts"])
    );

    // ESCALATE: 202 with the held step; the tool hears nothing yet.
    let call = g.call("m1", 1, json!({"amount": 5000}));
    let r = send(&s, &g.agent.sign(&token, call.clone())).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["status"], "awaiting_approval");
    assert_eq!(r.body["approval"]["hold"], 1);
    assert_eq!(r.body["approval"]["required_level"], "L2");
    assert!(tool.calls().is_empty());

    // The approver sees it and approves the step.
    let inbox: Value = approver.get("/v1/tenants/acme/approvals").await.unwrap();
    assert!(inbox.to_string().contains("m1"), "{inbox}");
    approver
        .post::<_, Value>(
            "/v1/tenants/acme/missions/m1/decisions",
            &json!({"approve": true, "reason": "invoice checked", "hold": 1}),
        )
        .await
        .unwrap();

    // The same call (fresh signature) now goes through, once.
    let r = send(&s, &g.agent.sign(&token, call)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "completed");
    assert_eq!(r.body["decision"]["decision"], "PERMIT");
    assert_eq!(r.body["decision"]["granted_level"], "L2");
    assert_eq!(r.body["result"]["output"]["echo"]["amount"], 5000);
    let calls = tool.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body["step"], 1);

    // A step held when its mission is cancelled leaves the inbox: there is
    // nothing left to decide.
    let r = send(
        &s,
        &g.agent
            .sign(&token, g.call("m1", 2, json!({"amount": 7000}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let inbox: Vec<Value> = approver.get("/v1/tenants/acme/approvals").await.unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    g.admin
        .post::<_, Value>(
            "/v1/tenants/acme/missions/m1/cancel",
            &json!({"reason": "no longer needed"}),
        )
        .await
        .unwrap();
    let inbox: Vec<Value> = approver.get("/v1/tenants/acme/approvals").await.unwrap();
    assert!(inbox.is_empty(), "{inbox:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_is_on_record_before_the_tool_acts_and_its_result_before_the_answer() {
    // The tool reads the audit chain through the API before it acts: the
    // dispatch entry carrying the key it received must already be there.
    let auditor_key: Arc<tokio::sync::OnceCell<Client>> = Arc::new(Default::default());
    let seen_first = auditor_key.clone();
    let tool = RecordingTool::start_with(move |call| {
        let auditor = seen_first.clone();
        async move {
            let auditor = auditor.get().expect("auditor set up").clone();
            let entries = audit(&auditor, "acme").await;
            let on_record = entries.iter().any(|e| {
                e["entry"]["kind"] == "tool_call.dispatch"
                    && e["payload"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|ev| ev["idempotency_key"] == call.idempotency_key.as_str())
            });
            (StatusCode::OK, json!({"dispatch_on_record": on_record}))
        }
    })
    .await;
    let (s, g) = acme(&tool).await;
    auditor_key.set(g.admin.clone()).unwrap();
    let token = g.running_mission(&s, "m1", json!({})).await;

    for step in 0..3 {
        let r = send(
            &s,
            &g.agent
                .sign(&token, g.call("m1", step, json!({"amount": 1}))),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["result"]["output"]["dispatch_on_record"], true);
        let key = r.body["idempotency_key"].as_str().unwrap().to_owned();
        // The result is on record when the agent hears it.
        let entries = audit(&g.admin, "acme").await;
        let last = entries.last().unwrap();
        assert_eq!(last["entry"]["kind"], "tool_call.complete");
        assert_eq!(
            last["payload"][0]["result"]["output"]["dispatch_on_record"],
            true
        );
        assert_eq!(tool.calls()[step as usize].idempotency_key, key);
    }
    let keys: std::collections::BTreeSet<String> = tool
        .calls()
        .into_iter()
        .map(|c| c.idempotency_key)
        .collect();
    assert_eq!(keys.len(), 3, "every call has its own key");

    // Asking for a completed call again returns what was recorded, and the
    // tool is not called a second time.
    let r = send(
        &s,
        &g.agent.sign(&token, g.call("m1", 0, json!({"amount": 1}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["replayed"], true);
    assert_eq!(tool.calls().len(), 3);
    // The same step and call with other arguments is refused and audited.
    let r = send(
        &s,
        &g.agent.sign(&token, g.call("m1", 0, json!({"amount": 2}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["code"], "call_arguments_changed");
    assert_eq!(
        rejected_codes(&audit(&g.admin, "acme").await),
        ["call_arguments_changed"]
    );
    assert_eq!(tool.calls().len(), 3);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_failures_are_recorded_and_answered_as_problems() {
    let tool = RecordingTool::start_with(|call| async move {
        match call.body["arguments"]["amount"].as_i64() {
            Some(1) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "ledger locked"}),
            ),
            Some(2) => {
                tokio::time::sleep(std::time::Duration::from_secs(6)).await;
                (StatusCode::OK, json!({}))
            }
            _ => (StatusCode::OK, json!({"big": "x".repeat(300 * 1024)})),
        }
    })
    .await;
    let (s, g) = acme(&tool).await;
    let token = g.running_mission(&s, "m1", json!({})).await;
    let cases = [
        (1, StatusCode::BAD_GATEWAY, "http_status"),
        (2, StatusCode::GATEWAY_TIMEOUT, "timeout"),
        (3, StatusCode::BAD_GATEWAY, "response_too_large"),
    ];
    for (amount, status, code) in cases {
        let r = send(
            &s,
            &g.agent.sign(
                &token,
                g.call("m1", amount as u32, json!({"amount": amount})),
            ),
        )
        .await;
        assert_eq!(r.status, status, "{:?}", r.body);
        assert_eq!(r.body["type"], "urn:aura:problem:tool-call-failed");
        assert_eq!(r.body["code"], code);
    }
    let mission: Value = g.admin.get("/v1/tenants/acme/missions/m1").await.unwrap();
    let recorded = mission["tool_calls"].to_string();
    for (_, _, code) in cases {
        assert!(recorded.contains(code), "{code} recorded: {recorded}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_can_be_watched_over_server_sent_events_with_an_api_key() {
    let tool = RecordingTool::start().await;
    let (s, g) = acme(&tool).await;
    let approver = approver(&s, &g).await;
    let token = g.running_mission(&s, "m1", json!({})).await;
    let r = send(
        &s,
        &g.agent
            .sign(&token, g.call("m1", 0, json!({"amount": 5000}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let events_path = r.body["approval"]["events"].as_str().unwrap().to_owned();

    let mut stream = reqwest::Client::new()
        .get(format!("{}{events_path}", s.base))
        .bearer_auth(g.admin.key().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    approver
        .post::<_, Value>(
            "/v1/tenants/acme/missions/m1/decisions",
            &json!({"approve": true, "reason": "fine", "hold": 0}),
        )
        .await
        .unwrap();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text.contains("event: vote_recorded") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("the vote arrives within 10 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: mission"), "{text}");
    assert!(text.contains("\"status\":\"approved\""), "{text}");
    s.stop().await;
}
