//! Retries and saga compensation end to end, against a real server with
//! the built-in executor and local tools that record every call: a flaky
//! tool is retried with one idempotency key on the policy's schedule, and
//! a step failing for good has the completed steps undone at their
//! compensation endpoints, latest first, before the mission closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aura_api::Role;
use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Db, TestServer, eventually_some};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn server(tool: &RecordingTool) -> (TestServer, GovernedTenant) {
    let s = TestServer::start_with_executor(Db::Sqlite).await;
    let g = GovernedTenant::create(&s, "acme", &tool.url).await;
    (s, g)
}

/// A tool that answers 503 to its first `failures` calls, then 200.
async fn flaky(failures: usize) -> RecordingTool {
    let seen = Arc::new(AtomicUsize::new(0));
    RecordingTool::start_with(move |_| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < failures {
                (StatusCode::SERVICE_UNAVAILABLE, json!({"error": "busy"}))
            } else {
                (StatusCode::OK, json!({"posted": true}))
            }
        }
    })
    .await
}

/// Registers `name` like `erp.post`, at `endpoint`, with these extras in
/// its invocation.
async fn register(g: &GovernedTenant, name: &str, endpoint: &str, extra: Value) {
    let mut invocation = json!({
        "endpoint": endpoint,
        "input_schema": {"type": "object"},
        "timeout_ms": 5000
    });
    for (k, v) in extra.as_object().unwrap() {
        invocation[k] = v.clone();
    }
    let spec = json!({"risk": "L2", "classification": "confidential", "target": "on-prem",
                      "invocation": invocation});
    let r = g
        .admin
        .raw(
            reqwest::Method::PUT,
            &format!("/v1/tenants/acme/tools/{name}"),
            Some(&spec),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{name} registers: {:?}", r.body);
}

/// A mission for the executor whose scripted plan calls `tools` in order.
async fn run(g: &GovernedTenant, id: &str, tools: &[&str]) -> Value {
    let m: Value = g
        .admin
        .post(
            "/v1/tenants/acme/missions",
            &json!({
                "id": id, "namespace": "prod", "agent": "bot",
                "definition": {"objective": "post the invoice", "tools": tools,
                               "authority": "L1", "timeout": 60_000},
                "context": {"inputs": {"amount": 10}, "classification": "confidential",
                            "labels": {"aura.executor": "builtin"}}
            }),
        )
        .await
        .unwrap();
    // The response shows the mission as it is when read back, and the
    // executor may already have taken it further: its state says nothing
    // certain here.
    assert_eq!(m["id"], id, "{m}");
    g.closed_mission(id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_tool_is_retried_with_one_key_on_the_policys_schedule() {
    let flaky = flaky(2).await;
    let (_s, g) = server(&flaky).await;
    register(
        &g,
        "erp.flaky",
        &flaky.url,
        json!({"retry": {"initial_interval_ms": 300, "backoff_coefficient": 2.0,
                         "maximum_attempts": 4}}),
    )
    .await;
    let started = Instant::now();
    let m = run(&g, "flaky", &["erp.flaky"]).await;
    assert_eq!(m["outcome"]["outcome"]["kind"], "succeeded", "{m}");
    let calls = flaky.calls();
    assert_eq!(calls.len(), 3);
    assert!(
        calls
            .iter()
            .all(|c| c.idempotency_key == calls[0].idempotency_key),
        "one key for every attempt"
    );
    // Waits of 300 ms, then 600 ms.
    assert!(started.elapsed() >= Duration::from_millis(900));
    let record = &m["tool_calls"]["0"]["0"];
    assert_eq!(record["dispatches"], 3, "{record}");
    assert_eq!(record["failed_attempts"], 2, "{record}");
    assert_eq!(record["result"]["outcome"], "succeeded", "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_failing_for_good_is_compensated_latest_first() {
    let tool = RecordingTool::start().await;
    let undo = RecordingTool::start().await;
    let broken = RecordingTool::start_with(|_| async {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "ledger locked"}),
        )
    })
    .await;
    let (_s, g) = server(&tool).await;
    let undoable = json!({"compensation_endpoint": undo.url});
    register(&g, "erp.reserve", &tool.url, undoable.clone()).await;
    register(&g, "erp.book", &tool.url, undoable).await;
    register(
        &g,
        "erp.close",
        &broken.url,
        json!({"retry": {"initial_interval_ms": 100, "maximum_attempts": 2}}),
    )
    .await;

    let m = run(&g, "saga", &["erp.reserve", "erp.book", "erp.close"]).await;
    let outcome = &m["outcome"]["outcome"];
    assert_eq!(outcome["kind"], "failed", "{m}");
    assert_eq!(outcome["result"]["failed_step"], 2, "{outcome}");
    assert_eq!(outcome["result"]["compensated"], json!([1, 0]), "{outcome}");
    assert_eq!(broken.calls().len(), 2, "the failing step was retried once");

    // The compensation endpoint got the booking first, then the
    // reservation, each naming the call it undoes and under its own key.
    let undone = undo.calls();
    assert_eq!(undone.len(), 2);
    let done = tool.calls();
    for (undo_call, step) in undone.iter().zip([1, 0]) {
        assert_eq!(undo_call.body["step"], step);
        let original = &m["tool_calls"][step.to_string()]["0"]["idempotency_key"];
        assert_eq!(&undo_call.body["compensates"], original);
        assert_ne!(&json!(undo_call.idempotency_key), original);
        assert_eq!(undo_call.body["output"]["echo"]["amount"], 10);
        assert!(done.iter().any(|c| &json!(c.idempotency_key) == original));
    }
    let saga = &m["execution"]["saga"];
    assert_eq!(saga["compensations"][0]["step"], 1, "{saga}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_can_give_an_exhausted_call_more_attempts() {
    let flaky = flaky(2).await;
    let (s, g) = server(&flaky).await;
    register(
        &g,
        "erp.flaky",
        &flaky.url,
        json!({"retry": {"initial_interval_ms": 50, "maximum_attempts": 2,
                         "on_exhaustion": "escalate"}}),
    )
    .await;
    g.admin.create_user("acme", "approver-a").await.unwrap();
    let key = g
        .admin
        .create_key("acme", "approver-a", &[Role::Approver])
        .await
        .unwrap()
        .key;
    let approver = s.client(&key);

    let waiter = {
        let g = g.clone();
        tokio::spawn(async move { run(&g, "held", &["erp.flaky"]).await })
    };
    // Both attempts fail; the step waits for an approver.
    let held = eventually_some("the step waits for an approver", || async {
        // Not created yet is not a failure: the spawned task creates it.
        let m: Value = g
            .admin
            .get("/v1/tenants/acme/missions/held")
            .await
            .unwrap_or_default();
        if m["holds"]["0"]["approval"]["status"] == "pending" {
            Ok(m)
        } else {
            Err(m)
        }
    })
    .await;
    assert_eq!(
        held["holds"]["0"]["kind"]["reason"], "retries_exhausted",
        "{held}"
    );
    assert_eq!(flaky.calls().len(), 2);
    approver
        .post::<_, Value>(
            "/v1/tenants/acme/missions/held/decisions",
            &json!({"approve": true, "reason": "the ERP is back", "hold": 0}),
        )
        .await
        .unwrap();
    let m = waiter.await.unwrap();
    assert_eq!(m["outcome"]["outcome"]["kind"], "succeeded", "{m}");
    let calls = flaky.calls();
    assert_eq!(calls.len(), 3);
    assert!(
        calls
            .iter()
            .all(|c| c.idempotency_key == calls[0].idempotency_key)
    );
}
