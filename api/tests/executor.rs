//! The built-in executor against a real server: a mission labelled for it
//! and created without a plan is planned by the scripted reasoner, queued,
//! claimed, executed through the gateway against a local tool, and sealed;
//! a failing tool is retried, then closes the mission as failed; missions not labelled for
//! it are left alone.

use aura_api::testkit::agent::{GovernedTenant, RecordingTool};
use aura_api::testkit::{Db, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn server_with_executor(tool: &RecordingTool) -> (TestServer, GovernedTenant) {
    let s = TestServer::start_with_executor(Db::Sqlite).await;
    let g = GovernedTenant::create(&s, "acme", &tool.url).await;
    (s, g)
}

async fn create(g: &GovernedTenant, id: &str, labels: Value) {
    let m: Value = g
        .admin
        .post(
            "/v1/tenants/acme/missions",
            &json!({
                "id": id, "namespace": "prod", "agent": "bot",
                "definition": {"objective": "post the invoice", "tools": ["erp.post"],
                               "authority": "L1", "timeout": 60_000},
                "context": {"inputs": {"amount": 10}, "classification": "confidential",
                            "labels": labels}
            }),
        )
        .await
        .unwrap();
    // The response shows the mission as it is when read back, and the
    // executor may already have taken it further: its state says nothing
    // certain here.
    assert_eq!(m["id"], id, "{m}");
}

async fn closed(g: &GovernedTenant, id: &str) -> Value {
    g.closed_mission(id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_labelled_mission_runs_through_all_eight_states_by_itself() {
    let tool = RecordingTool::start().await;
    let (s, g) = server_with_executor(&tool).await;
    let mut feed = s.node.subscribe();
    create(&g, "auto", json!({"aura.executor": "builtin"})).await;
    create(&g, "manual", json!({})).await;

    let m = closed(&g, "auto").await;
    // Commands the executor has ready together share one log entry: the
    // start of planning, the reasoner's exchange and the plan; the call's
    // result, the step's report and (the last step) the seal.
    let entries = entries_of(&mut feed, "auto");
    let kinds = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert!(
        entries.contains(&kinds(&[
            "mission_advanced",
            "state_data_written",
            "plan_decided",
            "mission_advanced",
            "mission_advanced",
            "mission_advanced"
        ])) && entries.contains(&kinds(&[
            "tool_call_completed",
            "step_reported",
            "mission_advanced",
            "mission_closed"
        ])),
        "{entries:#?}"
    );
    let outcome = &m["outcome"]["outcome"];
    assert_eq!(outcome["kind"], "succeeded", "{m}");
    assert_eq!(outcome["result"]["steps"][0]["echo"]["amount"], 10, "{m}");
    let states: Vec<&str> = m["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "PLANNING",
            "WAITING_APPROVAL",
            "APPROVED",
            "PENDING_EXECUTION",
            "IN_PROGRESS",
            "EXECUTED",
            "CLOSED"
        ]
    );
    // The reasoner is named honestly, with what it was asked and answered.
    let exchange = &m["state_data"]["entries"]["reasoner.plan"];
    assert_eq!(exchange["provider"], "scripted", "{m}");
    assert_eq!(exchange["output"][0]["tool"], "erp.post");
    // The tool was called once, through the gateway, with the call's key.
    let calls = tool.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        m["tool_calls"]["0"]["0"]["idempotency_key"],
        calls[0].idempotency_key
    );
    assert_eq!(m["execution"]["reports"][0]["worker"], "test-node");

    // A mission not handed to the executor is left alone.
    let manual: Value = g
        .admin
        .get("/v1/tenants/acme/missions/manual")
        .await
        .unwrap();
    assert_eq!(manual["state"], "CREATED");
}

/// While a member reads only one command per entry (mid rolling upgrade),
/// the executor's commands go one entry each and missions still run to
/// the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missions_run_to_the_end_while_a_member_reads_one_command_per_entry() {
    let tool = RecordingTool::start().await;
    let config = aura_api::testkit::executor_config(2);
    let nodes = TestServer::start_cluster_with(3, Db::Sqlite, config, |cfg| {
        if cfg.id == 3 {
            cfg.log_format = aura_raft::LogFormat::Commands;
        }
    })
    .await;
    let g = GovernedTenant::create(&nodes[0], "acme", &tool.url).await;
    let mut feed = nodes[0].node.subscribe();
    for i in 0..4 {
        create(&g, &format!("m-{i}"), json!({"aura.executor": "builtin"})).await;
    }
    for i in 0..4 {
        let m = closed(&g, &format!("m-{i}")).await;
        assert_eq!(m["outcome"]["outcome"]["kind"], "succeeded", "{m}");
    }
    // What goes together in one entry otherwise: the reasoner's exchange
    // with the plan, a call's result with its step's report.
    let entries = entries_of(&mut feed, "m-3");
    let has = |kinds: &Vec<String>, kind: &str| kinds.iter().any(|k| k == kind);
    assert!(has(&entries.concat(), "step_reported"), "{entries:?}");
    let together = |kinds: &Vec<String>| {
        (has(kinds, "state_data_written") && has(kinds, "plan_decided"))
            || (has(kinds, "tool_call_completed") && has(kinds, "step_reported"))
    };
    assert!(
        !entries.iter().any(together),
        "one command per entry, found {entries:?}"
    );
    for n in nodes.into_iter().rev() {
        n.stop().await;
    }
}

/// The log entries of the mission's commands that `feed` has carried so
/// far, each as the kinds of its events.
fn entries_of(
    feed: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<aura_raft::FeedItem>>,
    mission: &str,
) -> Vec<Vec<String>> {
    let mut entries = std::collections::BTreeMap::<u64, Vec<String>>::new();
    while let Ok(item) = feed.try_recv() {
        if item
            .mission
            .as_ref()
            .is_some_and(|id| id.as_str() == mission)
        {
            let kinds = item.events.iter().map(|e| {
                serde_json::to_value(e).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            });
            entries.entry(item.index).or_default().extend(kinds);
        }
    }
    entries.into_values().collect()
}

/// A step's report and the next step's dispatch are one entry: each step
/// after the first costs one replication round less, and the record holds
/// the same commands in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steps_report_goes_with_the_next_calls_dispatch() {
    let tool = RecordingTool::start().await;
    let (s, g) = server_with_executor(&tool).await;
    let mut feed = s.node.subscribe();
    let plan: Vec<Value> = (0..3)
        .map(|i| json!({"tool": "erp.post", "arguments": {"amount": 10 + i}}))
        .collect();
    let m: Value = g
        .admin
        .post(
            "/v1/tenants/acme/missions",
            &json!({
                "id": "chain", "namespace": "prod", "agent": "bot",
                "definition": {"objective": "post invoices", "tools": ["erp.post"],
                               "authority": "L2", "timeout": 600_000},
                "context": {"inputs": {}, "classification": "confidential",
                            "labels": {"aura.executor": "builtin"}},
                "plan": plan
            }),
        )
        .await
        .unwrap();
    assert_eq!(m["id"], "chain", "{m}");
    let m = closed(&g, "chain").await;
    assert_eq!(m["outcome"]["outcome"]["kind"], "succeeded", "{m}");
    assert_eq!(tool.calls().len(), 3);
    let entries = entries_of(&mut feed, "chain");
    let reported_then_dispatched = [
        "tool_call_completed",
        "step_reported",
        "tool_call_decided",
        "tool_call_dispatched",
    ];
    let sealed = [
        "tool_call_completed",
        "step_reported",
        "mission_advanced",
        "mission_closed",
    ];
    let count = |kinds: &[&str]| entries.iter().filter(|e| *e == kinds).count();
    assert_eq!(
        (count(&reported_then_dispatched), count(&sealed)),
        (2, 1),
        "{entries:#?}"
    );
    let reports: Vec<u64> = m["execution"]["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(reports, [0, 1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_tool_closes_the_mission_as_failed() {
    let tool = RecordingTool::start_with(|_| async {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "ledger locked"}),
        )
    })
    .await;
    let (_s, g) = server_with_executor(&tool).await;
    create(&g, "doomed", json!({"aura.executor": "builtin"})).await;
    let m = closed(&g, "doomed").await;
    let outcome = &m["outcome"]["outcome"];
    assert_eq!(outcome["kind"], "failed", "{m}");
    assert_eq!(outcome["left_state"], "IN_PROGRESS");
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap()
            .starts_with("step 0 failed"),
        "{outcome}"
    );
    // The default retry policy: three attempts of the same call.
    let calls = tool.calls();
    assert_eq!(calls.len(), 3);
    assert!(
        calls
            .iter()
            .all(|c| c.idempotency_key == calls[0].idempotency_key)
    );
    assert_eq!(
        m["tool_calls"]["0"]["0"]["retry"]["retry"], "exhausted",
        "{m}"
    );
}

/// On a three-node cluster every node's executor sees the same queue.
/// Each queued mission is offered to one node first
/// (`runtime::claim_share`), so the executors do not all claim the queue's
/// head at once and have the other claims refused, each refusal a Raft
/// round applied and audited on every node. A slow tool and one mission
/// at a time per node make a backlog, where missions wait in the queue
/// past the grace period after which any node may take them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executors_of_a_cluster_share_the_queue_without_racing() {
    const MISSIONS: u64 = 30;
    let tool = RecordingTool::start_with(|_| async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        (StatusCode::OK, json!({"ok": true}))
    })
    .await;
    let config = aura_api::testkit::executor_config(2);
    let nodes = TestServer::start_cluster(3, Db::Sqlite, config).await;
    let g = GovernedTenant::create(&nodes[0], "acme", &tool.url).await;
    let refused = || {
        nodes[0]
            .node
            .applied_stats()
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = refused();
    for i in 0..MISSIONS {
        create(&g, &format!("m-{i}"), json!({"aura.executor": "builtin"})).await;
    }
    for i in 0..MISSIONS {
        let m = closed(&g, &format!("m-{i}")).await;
        assert_eq!(m["outcome"]["outcome"]["kind"], "succeeded", "{m}");
    }
    let refused = refused() - before;
    eprintln!("{refused} commands refused while {MISSIONS} missions ran");
    // Racing executors have one or two of three claims refused for most
    // missions; a few refusals remain possible when a node is slower
    // than the grace period to claim what it was offered.
    assert!(
        refused <= MISSIONS / 6,
        "{refused} commands refused while {MISSIONS} missions ran"
    );
    for n in nodes.into_iter().rev() {
        n.stop().await;
    }
}
