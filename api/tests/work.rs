//! The worker protocol over REST against a real server: a worker claims a
//! queued mission (long-polling), calls its tool through the gateway with
//! the claim's token and reports the step; a worker that stops
//! heartbeating loses the mission to another, and everything it sends
//! afterwards is refused. The runtime's timers close missions whose
//! timeout passed.

use std::time::Duration;

use aura_api::Role;
use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Client, Db, TestServer, eventually_some};
use aura_engine::identity::ExecutionToken;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn acme(tool: &RecordingTool) -> (TestServer, GovernedTenant) {
    let s = TestServer::start(Db::Sqlite).await;
    let g = GovernedTenant::create(&s, "acme", &tool.url).await;
    (s, g)
}

/// A client with a `worker` key of its own directory user.
async fn worker(s: &TestServer, g: &GovernedTenant, user: &str) -> Client {
    g.admin.create_user(&g.tenant, user).await.unwrap();
    let key = g
        .admin
        .create_key(&g.tenant, user, &[Role::Worker])
        .await
        .unwrap()
        .key;
    s.client(&key)
}

async fn claim(w: &Client, body: Value) -> (StatusCode, Value) {
    let r = w
        .raw(
            Method::POST,
            "/v1/tenants/acme/namespaces/prod/claims",
            Some(&body),
            &[],
        )
        .await;
    (r.status, r.body)
}

async fn report(w: &Client, mission: &str, step: u32, body: Value) -> (StatusCode, Value) {
    let r = w
        .raw(
            Method::POST,
            &format!("/v1/tenants/acme/missions/{mission}/steps/{step}/report"),
            Some(&body),
            &[],
        )
        .await;
    (r.status, r.body)
}

async fn heartbeat(w: &Client, mission: &str, body: Value) -> (StatusCode, Value) {
    let r = w
        .raw(
            Method::POST,
            &format!("/v1/tenants/acme/missions/{mission}/heartbeat"),
            Some(&body),
            &[],
        )
        .await;
    (r.status, r.body)
}

/// Calls step `step`'s tool through the gateway as the agent, with `token`.
async fn call_tool(
    s: &TestServer,
    g: &GovernedTenant,
    token: &ExecutionToken,
    mission: &str,
    step: u32,
) -> (StatusCode, Value) {
    let envelope = g
        .agent
        .sign(token, g.call(mission, step, json!({"amount": 10 + step})));
    let r = s
        .anonymous()
        .raw(
            Method::POST,
            "/v1/gateway/tool-calls",
            Some(&serde_json::to_value(&envelope).unwrap()),
            &[],
        )
        .await;
    (r.status, r.body)
}

fn token_of(assignment: &Value) -> ExecutionToken {
    serde_json::from_value(assignment["token"].clone()).unwrap()
}

async fn mission(g: &GovernedTenant, id: &str) -> Value {
    g.admin
        .get(&format!("/v1/tenants/acme/missions/{id}"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_claims_calls_through_the_gateway_and_reports_each_step() {
    let tool = RecordingTool::start().await;
    let (s, g) = acme(&tool).await;
    let w = worker(&s, &g, "runner-1").await;

    // An empty queue answers 204 at once.
    let (status, _) = claim(&w, json!({"worker": "host-a.1"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    g.queued_mission("m1", 2).await;
    let (status, a) = claim(&w, json!({"worker": "host-a.1", "lease_ms": 20_000})).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["mission"], "m1");
    assert_eq!(a["epoch"], 1);
    assert_eq!(a["next_step"], 0);
    assert_eq!(a["steps"].as_array().unwrap().len(), 2);
    assert_eq!(mission(&g, "m1").await["state"], "IN_PROGRESS");
    let token = token_of(&a);

    for step in 0..2u32 {
        let (status, body) = call_tool(&s, &g, &token, "m1", step).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = heartbeat(
            &w,
            "m1",
            json!({"epoch": 1, "progress": {"posted": step + 1}}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["worker"], "host-a.1");
        let (status, view) = report(
            &w,
            "m1",
            step,
            json!({"epoch": 1, "outcome": {"outcome": "succeeded", "call": 0}}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["next_step"], step + 1);
    }
    assert_eq!(tool.calls().len(), 2);
    let view: Value = w
        .get("/v1/tenants/acme/missions/m1/execution")
        .await
        .unwrap();
    assert_eq!(view["state"], "EXECUTED");
    assert_eq!(view["progress"], json!({"posted": 2}));
    assert_eq!(view["reports"][1]["output"]["echo"]["amount"], 11, "{view}");

    // Bad input is refused and changes nothing.
    let (status, p) = claim(&w, json!({"worker": "host-a.1", "lease_ms": 5})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (status, p) = claim(&w, json!({"worker": "Not A Worker Id"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    // Only keys with the worker role claim.
    let (status, _) = claim(&g.admin.clone(), json!({"worker": "x"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "admin includes worker");
    g.admin.create_user("acme", "reader").await.unwrap();
    let reader = g
        .admin
        .create_key("acme", "reader", &[Role::Auditor])
        .await
        .unwrap()
        .key;
    let (status, _) = claim(&s.client(&reader), json!({"worker": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_stops_heartbeating_loses_the_mission_and_its_late_report_is_refused() {
    let tool = RecordingTool::start().await;
    let (s, g) = acme(&tool).await;
    let first = worker(&s, &g, "runner-1").await;
    let second = worker(&s, &g, "runner-2").await;
    g.queued_mission("m1", 2).await;

    let (_, a) = claim(&first, json!({"worker": "host-a.1", "lease_ms": 1_000})).await;
    assert_eq!(a["epoch"], 1, "{a}");
    let first_token = token_of(&a);
    // Step 0 is done and reported; then the first worker goes silent.
    let (status, _) = call_tool(&s, &g, &first_token, "m1", 0).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = report(
        &first,
        "m1",
        0,
        json!({"epoch": 1, "outcome": {"outcome": "succeeded", "call": 0}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The second worker is waiting already; it gets the mission once the
    // lease lapses, resuming at step 1.
    let (status, b) = claim(&second, json!({"worker": "host-b.1", "wait_ms": 8_000})).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["mission"], "m1");
    assert_eq!(b["epoch"], 2);
    assert_eq!(b["next_step"], 1);
    assert_eq!(b["reports"].as_array().unwrap().len(), 1);

    // The first worker wakes up: its heartbeat, its report and its tool
    // call are all refused, and the tool never hears from it.
    let calls_before = tool.calls().len();
    let (status, p) = heartbeat(&first, "m1", json!({"epoch": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["code"], "stale_epoch");
    let (status, p) = call_tool(&s, &g, &first_token, "m1", 1).await;
    assert!(status.is_client_error(), "{status} {p}");
    assert_eq!(tool.calls().len(), calls_before);
    let (status, p) = report(
        &first,
        "m1",
        1,
        json!({"epoch": 1, "outcome": {"outcome": "failed", "reason": "late"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["code"], "stale_epoch");
    assert_eq!(mission(&g, "m1").await["state"], "IN_PROGRESS");

    // The second worker finishes the mission.
    let (status, _) = call_tool(&s, &g, &token_of(&b), "m1", 1).await;
    assert_eq!(status, StatusCode::OK);
    let (status, view) = report(
        &second,
        "m1",
        1,
        json!({"epoch": 2, "outcome": {"outcome": "succeeded", "call": 0}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["state"], "EXECUTED");
    assert_eq!(
        view["reports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["worker"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["host-a.1", "host-b.1"]
    );
    // The refused attempts are in the audit chain.
    let entries: Value = g
        .admin
        .get("/v1/tenants/acme/audit/entries?limit=1000")
        .await
        .unwrap();
    let stale = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["payload"][0]["rejection"]["code"] == "stale_epoch")
        .count();
    assert_eq!(stale, 2, "heartbeat and report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_claim_gets_a_mission_queued_while_it_waits() {
    let tool = RecordingTool::start().await;
    let (s, g) = acme(&tool).await;
    let w = worker(&s, &g, "runner-1").await;
    let waiting = tokio::spawn({
        let w = w.clone();
        async move { claim(&w, json!({"worker": "host-a.1", "wait_ms": 10_000})).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    let queued = std::time::Instant::now();
    g.queued_mission("m1", 1).await;
    let (status, a) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["mission"], "m1");
    // Woken by the commit, not by the once-a-second look.
    assert!(
        queued.elapsed() < Duration::from_millis(900),
        "{:?}",
        queued.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_times_out_a_mission_whose_timeout_passed() {
    let tool = RecordingTool::start().await;
    let (_s, g) = acme(&tool).await;
    let m: Value = g
        .admin
        .post(
            "/v1/tenants/acme/missions",
            &json!({
                "id": "brief", "namespace": "prod", "agent": "bot",
                "definition": {"objective": "be quick", "tools": ["erp.post"],
                               "authority": "L1", "timeout": 1_000},
                "context": {"inputs": {}, "classification": "confidential"}
            }),
        )
        .await
        .unwrap();
    assert_eq!(m["state"], "CREATED");
    let closed = eventually_some("the mission closes", || async {
        let m = mission(&g, "brief").await;
        if m["state"] == "CLOSED" {
            Ok(m)
        } else {
            Err(m)
        }
    })
    .await;
    assert_eq!(
        closed["outcome"]["outcome"]["kind"], "timed_out",
        "{closed}"
    );
    let last = closed["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["by"], "runtime", "{last}");
}

/// Declares timeouts on `erp.post` (otherwise as the governed tenant
/// registered it).
async fn tool_timeouts(g: &GovernedTenant, tool: &RecordingTool, timeouts: Value) {
    let spec = json!({
        "risk": "L2", "classification": "confidential", "target": "on-prem",
        "invocation": {"endpoint": tool.url, "input_schema": {"type": "object"}, "timeout_ms": 5000},
        "timeouts": timeouts
    });
    let r = g
        .admin
        .raw(
            Method::PUT,
            "/v1/tenants/acme/tools/erp.post",
            Some(&spec),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn audit_kinds(g: &GovernedTenant, kind: &str) -> Vec<Value> {
    let entries: Value = g
        .admin
        .get("/v1/tenants/acme/audit/entries?limit=1000")
        .await
        .unwrap();
    entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entry"]["kind"] == kind)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_heartbeats_but_overruns_start_to_close_loses_the_step() {
    let tool = RecordingTool::start().await;
    let (s, g) = acme(&tool).await;
    tool_timeouts(&g, &tool, json!({"start_to_close_ms": 2_000})).await;
    let first = worker(&s, &g, "runner-1").await;
    let second = worker(&s, &g, "runner-2").await;
    g.queued_mission("m1", 1).await;

    let (_, a) = claim(&first, json!({"worker": "host-a.1", "lease_ms": 1_000})).await;
    assert_eq!(a["epoch"], 1, "{a}");
    // The first worker stays alive but never finishes the step: its
    // heartbeats keep the lease only until the step's time is up.
    let started = std::time::Instant::now();
    let refused = eventually_some("the step stalls", || async {
        let (status, p) = heartbeat(&first, "m1", json!({"epoch": 1, "lease_ms": 1_000})).await;
        if status != StatusCode::OK {
            Ok((status, p))
        } else {
            Err(p)
        }
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(2_000));
    assert_eq!(refused.0, StatusCode::CONFLICT, "{}", refused.1);
    assert_eq!(refused.1["code"], "lease_lost");
    let stalls = audit_kinds(&g, "execution.step_timed_out").await;
    assert_eq!(stalls.len(), 1);
    assert_eq!(stalls[0]["payload"][0]["worker"], "host-a.1");
    assert_eq!(stalls[0]["payload"][0]["timeout"], "start_to_close");
    assert_eq!(stalls[0]["payload"][0]["escalated"], false);

    // Another worker takes the step over and finishes it; the first
    // worker's late report is refused.
    let (status, b) = claim(&second, json!({"worker": "host-b.1", "wait_ms": 5_000})).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["epoch"], 2);
    assert_eq!(b["next_step"], 0);
    let (status, body) = call_tool(&s, &g, &token_of(&b), "m1", 0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, p) = report(
        &first,
        "m1",
        0,
        json!({"epoch": 1, "outcome": {"outcome": "failed", "reason": "late"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    let (status, view) = report(
        &second,
        "m1",
        0,
        json!({"epoch": 2, "outcome": {"outcome": "succeeded", "call": 0}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["state"], "EXECUTED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_no_worker_starts_in_time_waits_for_an_approver() {
    let tool = RecordingTool::start().await;
    let (s, g) = acme(&tool).await;
    tool_timeouts(&g, &tool, json!({"schedule_to_start_ms": 1_000})).await;
    g.queued_mission("m1", 1).await;
    let held = eventually_some("the stalled step is escalated", || async {
        let m = mission(&g, "m1").await;
        if m["holds"]["0"].is_null() {
            Err(m)
        } else {
            Ok(m)
        }
    })
    .await;
    assert_eq!(held["state"], "PENDING_EXECUTION");
    assert_eq!(held["holds"]["0"]["kind"]["reason"], "stalled", "{held}");
    assert_eq!(held["holds"]["0"]["approval"]["status"], "pending");
    // Workers are not handed a step that waits for an approver.
    let w = worker(&s, &g, "runner-1").await;
    let (status, body) = claim(&w, json!({"worker": "host-a.1"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}
