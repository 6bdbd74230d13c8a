//! The runtime on the application layer alone: an in-process engine node,
//! the SQL store and the gateway, with no API listener in front of them.
//! The built-in executor plans, claims, calls the tool and seals a mission
//! by itself, and what it records when a step fails is the domain's own
//! wording.

use std::sync::Arc;
use std::time::Duration;

use aura_api::app::App;
use aura_api::gateway::Gateway;
use aura_api::runtime;
use aura_api::store::Store;
use aura_api::testkit::agent::RecordingTool;
use aura_api::testkit::{eventually_some, executor_config};
use aura_engine::Actor;
use aura_engine::identity::KeyPair;
use aura_engine::ids::{MissionId, NamespaceId, TenantId};
use aura_engine::machine::{CommandBody, SigningSeed};
use aura_engine::mission::{MissionState, StepOutcome};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// An application over a fresh one-node engine, with tenant `acme` set up
/// for the built-in executor: namespace `prod` with the simulator's
/// governance, the tool `erp.post` called at `tool_url`, and agent `bot`.
async fn app(dir: &std::path::Path, tool_url: &str) -> (App, TenantId) {
    let node = aura_raft::testkit::single_node(dir).await;
    let store = Store::open(&Store::sqlite_url(dir)).await.expect("store");
    let gateway = Gateway::connect(&aura_api::testkit::api_config().gateway)
        .await
        .expect("gateway");
    let app = App::new(Arc::new(node), store, Arc::new(gateway));
    let tenant = TenantId::new("acme").expect("tenant id");
    let ns = NamespaceId::new("prod").expect("namespace id");
    let mut setup = vec![
        CommandBody::CreateTenant {
            display_name: "Acme".into(),
            signing_key_seed: SigningSeed([7; 32]).into(),
        },
        CommandBody::CreateNamespace {
            namespace: ns.clone(),
            display_name: "Production".into(),
        },
    ];
    setup.extend(aura_engine::sim::namespace_governance(&ns));
    setup.push(body(json!({"register_tool": {"tool": "erp.post", "spec": {
        "risk": "L2", "classification": "confidential", "target": "on-prem",
        "invocation": {"endpoint": tool_url, "timeout_ms": 5000,
                       "input_schema": {"type": "object"}}
    }}})));
    setup.push(CommandBody::IssueCredential {
        agent: "bot".parse().expect("agent id"),
        org_unit: "ops".parse().expect("org unit"),
        owner: None,
        public_key: KeyPair::from_seed([9; 32]).public(),
        not_before: aura_engine::Timestamp(0),
        not_after: aura_engine::Timestamp(i64::MAX / 2),
    });
    for command in setup {
        app.propose(&tenant, Actor::Platform, command)
            .await
            .expect("setup applies");
    }
    (app, tenant)
}

fn body(v: Value) -> CommandBody {
    serde_json::from_value(v).expect("a command body")
}

/// A mission for the built-in executor, created without a plan: the
/// scripted reasoner plans one call of `erp.post` with the inputs.
async fn create(app: &App, tenant: &TenantId, id: &str) -> MissionId {
    app.propose(
        tenant,
        Actor::Platform,
        body(json!({"create_mission": {
            "namespace": "prod", "mission": id, "agent": "bot",
            "definition": {"objective": "post the invoice", "tools": ["erp.post"],
                           "authority": "L1", "timeout": 60_000},
            "context": {"inputs": {"amount": 10}, "classification": "confidential",
                        "labels": {"aura.executor": "builtin"}},
            "limits": {"max_steps": 8, "max_tool_calls": 8}
        }})),
    )
    .await
    .expect("mission created");
    id.parse().expect("mission id")
}

/// The closed mission's outcome kind, its result and its reports' outcomes.
async fn closed(app: &App, tenant: &TenantId, id: &MissionId) -> (String, Value, Vec<StepOutcome>) {
    eventually_some(&format!("mission {id} closes"), || async {
        app.read_local(|s| {
            let m = s.tenant(tenant)?.missions().get(id)?;
            if m.state() != MissionState::Closed {
                return None;
            }
            let outcome = serde_json::to_value(m.outcome()?).ok()?;
            let reports = m.execution().reports().iter().map(|r| r.outcome.clone());
            Some((
                outcome["outcome"]["kind"].as_str()?.to_owned(),
                outcome["outcome"].clone(),
                reports.collect(),
            ))
        })
        .ok_or("not closed yet")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_runs_missions_to_closed_with_no_api_listener() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tool = RecordingTool::start().await;
    let (app, tenant) = app(dir.path(), &tool.url).await;
    let config = executor_config(2);
    let executor = tokio::spawn(runtime::executor::run(
        app.clone(),
        config.executor.expect("an executor"),
    ));
    let timers = tokio::spawn(runtime::timers::run(
        app.clone(),
        Duration::from_millis(100),
    ));

    let id = create(&app, &tenant, "auto").await;
    let (kind, outcome, _) = closed(&app, &tenant, &id).await;
    assert_eq!(kind, "succeeded", "{outcome}");
    assert_eq!(
        outcome["result"]["steps"][0]["echo"]["amount"], 10,
        "{outcome}"
    );
    assert_eq!(tool.calls().len(), 1, "the tool was called once");

    executor.abort();
    timers.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_is_recorded_in_the_domains_words() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tool = RecordingTool::start_with(|_| async {
        (StatusCode::BAD_REQUEST, json!({"error": "no such ledger"}))
    })
    .await;
    let (app, tenant) = app(dir.path(), &tool.url).await;
    let config = executor_config(2);
    let executor = tokio::spawn(runtime::executor::run(
        app.clone(),
        config.executor.expect("an executor"),
    ));

    let id = create(&app, &tenant, "fails").await;
    let (kind, outcome, reports) = closed(&app, &tenant, &id).await;
    assert_eq!(kind, "failed", "{outcome}");
    let reason = reports
        .iter()
        .find_map(|o| match o {
            StepOutcome::Failed { reason } => Some(reason.clone()),
            _ => None,
        })
        .expect("a failed step");
    assert!(
        reason.starts_with("the tool call failed ("),
        "the reason is the gateway's own: {reason}"
    );
    for http in ["urn:aura:problem", "Bad Gateway", "problem", "status 502"] {
        assert!(!reason.contains(http), "HTTP wording `{http}` in: {reason}");
    }

    executor.abort();
}
