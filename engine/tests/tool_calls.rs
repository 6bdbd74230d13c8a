//! Calls through the Tool Gateway as the engine records them: dispatch
//! after a PERMIT to the endpoint the data may reach, results, retries with
//! the same idempotency key, and refused attempts in the audit chain.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use aura_engine::Actor;
use aura_engine::ids::ToolName;
use aura_engine::machine::{CommandBody, Event, Rejection};
use aura_engine::mission::tool_call::idempotency_key;
use aura_engine::mission::{AuthorityLevel, CallFailure, CallResult, DataClassification};
use aura_engine::policy::Decision;
use aura_engine::policy::authority::ApprovalStatus;
use aura_engine::time::Millis;
use aura_engine::tool::{ToolInvocation, ToolPlacement, ToolSpec};
use serde_json::{Value, json};
use support::{World, id};

fn callable(target: &str, endpoint: &str, placements: Vec<ToolPlacement>) -> ToolSpec {
    ToolSpec {
        timeouts: None,
        risk: AuthorityLevel::L1,
        classification: DataClassification::Confidential,
        target: target.into(),
        invocation: Some(ToolInvocation {
            endpoint: endpoint.into(),
            input_schema: json!({"type": "object"}),
            compensation_endpoint: None,
            timeout_ms: 1000,
            placements,
            retry: Default::default(),
        }),
    }
}

/// acme with `erp.post` callable on-prem, a mission m1 IN_PROGRESS
/// (confidential data: on-prem only) and a token `tok` for it.
fn world() -> World {
    let mut w = World::new();
    register(
        &mut w,
        "erp.post",
        callable("on-prem", "http://erp.local/post", vec![]),
    );
    w.create_mission("acme", "m1", Millis::from_secs(3600));
    w.drive_to_in_progress("acme", "m1");
    token(&mut w, "m1", "tok");
    w
}

fn register(w: &mut World, tool: &str, spec: ToolSpec) {
    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::RegisterTool {
            tool: id(tool),
            spec,
        },
    );
}

fn token(w: &mut World, mission: &str, token: &str) {
    let expires_at = w.now.plus(Millis::from_secs(600));
    w.ok(
        "acme",
        Actor::Runtime,
        CommandBody::IssueExecutionToken {
            mission: id(mission),
            token: id(token),
            tools: BTreeSet::from([id::<ToolName>("erp.post"), id("crm.read")]),
            parameters: BTreeMap::new(),
            expires_at,
        },
    );
}

fn serial(w: &World) -> u64 {
    *w.state.tenant(&id("acme")).unwrap().agents()[&id("bot")]
        .credentials
        .last()
        .unwrap()
}

fn dispatch(
    w: &mut World,
    step: u32,
    call: u32,
    tool: &str,
    arguments: Value,
) -> Result<Vec<Event>, Rejection> {
    let serial = serial(w);
    w.cmd(
        "acme",
        Actor::Agent(id("bot")),
        CommandBody::DispatchToolCall {
            mission: id("m1"),
            step,
            call,
            tool: id(tool),
            arguments,
            credential_serial: serial,
            token: id("tok"),
        },
    )
}

fn complete(
    w: &mut World,
    step: u32,
    call: u32,
    result: CallResult,
) -> Result<Vec<Event>, Rejection> {
    w.cmd(
        "acme",
        Actor::Agent(id("bot")),
        CommandBody::CompleteToolCall {
            mission: id("m1"),
            step,
            call,
            result,
        },
    )
}

fn ok_result() -> CallResult {
    CallResult::Succeeded {
        status: 200,
        output: json!({"posted": true}),
    }
}

#[test]
fn a_permitted_call_is_dispatched_with_its_decision_in_one_entry() {
    let mut w = world();
    let before = w.state.tenant(&id("acme")).unwrap().audit().len();
    let events = dispatch(&mut w, 0, 0, "erp.post", json!({"amount": 10})).unwrap();
    assert!(
        matches!(&events[0], Event::ToolCallDecided { decision, .. } if decision.decision == Decision::Permit)
    );
    let Event::ToolCallDispatched {
        idempotency_key: key,
        endpoint,
        target,
        dispatch,
        ..
    } = &events[1]
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        (endpoint.as_str(), target.as_str(), *dispatch),
        ("http://erp.local/post", "on-prem", 1)
    );
    assert_eq!(*key, idempotency_key(&id("acme"), &id("m1"), 0, 0).unwrap());
    assert_eq!(
        w.state.tenant(&id("acme")).unwrap().audit().len(),
        before + 1
    );
    assert_eq!(w.last_audit_kind("acme"), "tool_call.dispatch");
    let record = w.m1().tool_call(0, 0).unwrap();
    assert!(record.result.is_none());

    complete(&mut w, 0, 0, ok_result()).unwrap();
    assert_eq!(w.last_audit_kind("acme"), "tool_call.complete");
    let record = w.m1().tool_call(0, 0).unwrap();
    assert_eq!(record.result, Some(ok_result()));
    assert!(record.completed_at.is_some());
}

#[test]
fn the_endpoint_is_the_deployment_the_data_may_reach() {
    let mut w = world();
    // crm.read lives in the cloud; the mission's data is confidential
    // (on-prem only). With an on-prem placement the call goes there.
    register(
        &mut w,
        "crm.read",
        callable(
            "cloud",
            "https://crm.example.com/read",
            vec![ToolPlacement {
                target: "on-prem".into(),
                endpoint: "http://crm.internal/read".into(),
                compensation_endpoint: None,
            }],
        ),
    );
    let events = dispatch(&mut w, 0, 0, "crm.read", json!({})).unwrap();
    let Event::ToolCallDispatched {
        endpoint, target, ..
    } = &events[1]
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        (endpoint.as_str(), target.as_str()),
        ("http://crm.internal/read", "on-prem")
    );

    // Without it, no configured endpoint may receive the data: a hard DENY,
    // nothing dispatched.
    register(
        &mut w,
        "crm.read",
        callable("cloud", "https://crm.example.com/read", vec![]),
    );
    let events = dispatch(&mut w, 1, 0, "crm.read", json!({})).unwrap();
    let Event::ToolCallDecided { decision, .. } = &events[0] else {
        panic!()
    };
    assert_eq!(decision.decision, Decision::Deny);
    assert_eq!(decision.determining, ["aura:data-boundary"]);
    assert_eq!(events.len(), 1);
    assert!(w.m1().tool_call(1, 0).is_none());
}

#[test]
fn a_retry_keeps_its_key_and_arguments_and_a_result_is_final() {
    let mut w = world();
    dispatch(&mut w, 0, 0, "erp.post", json!({"amount": 10})).unwrap();
    let events = dispatch(&mut w, 0, 0, "erp.post", json!({"amount": 10})).unwrap();
    let Event::ToolCallDispatched {
        dispatch: n,
        idempotency_key: key,
        ..
    } = &events[1]
    else {
        panic!()
    };
    assert_eq!(*n, 2);
    assert_eq!(*key, w.m1().tool_call(0, 0).unwrap().idempotency_key);
    assert_eq!(
        dispatch(&mut w, 0, 0, "erp.post", json!({"amount": 11})),
        Err(Rejection::CallArgumentsChanged { step: 0, call: 0 })
    );
    assert_eq!(w.last_audit_kind("acme"), "command.rejected");
    let other = dispatch(&mut w, 0, 1, "erp.post", json!({"amount": 11})).unwrap();
    let Event::ToolCallDispatched {
        idempotency_key: other_key,
        ..
    } = &other[1]
    else {
        panic!()
    };
    assert_ne!(other_key, key, "another call of the step has its own key");

    let failed = CallResult::Failed {
        failure: CallFailure::Timeout,
        status: None,
        message: "no answer within 1000 ms".into(),
    };
    complete(&mut w, 0, 0, failed.clone()).unwrap();
    assert_eq!(
        complete(&mut w, 0, 0, ok_result()),
        Err(Rejection::NoDispatchedCall { step: 0, call: 0 })
    );
    // A failure is sent again only once its retry is due (retries_and_sagas.rs).
    assert!(matches!(
        dispatch(&mut w, 0, 0, "erp.post", json!({"amount": 10})),
        Err(Rejection::RetryNotDue {
            step: 0,
            call: 0,
            ..
        })
    ));
    complete(&mut w, 0, 1, ok_result()).unwrap();
    assert_eq!(
        dispatch(&mut w, 0, 1, "erp.post", json!({"amount": 11})),
        Err(Rejection::CallAlreadyCompleted { step: 0, call: 1 })
    );
    assert_eq!(
        dispatch(&mut w, 0, 0, "erp.post", json!({"amount": 12})),
        Err(Rejection::CallArgumentsChanged { step: 0, call: 0 }),
        "other arguments are another request, never answered from the record"
    );
    assert_eq!(w.m1().tool_call(0, 0).unwrap().result, Some(failed));
    assert_eq!(
        complete(&mut w, 7, 0, ok_result()),
        Err(Rejection::NoDispatchedCall { step: 7, call: 0 })
    );
}

#[test]
fn an_escalated_call_is_not_dispatched_until_its_step_is_approved() {
    let mut w = world();
    let events = dispatch(&mut w, 2, 0, "erp.post", json!({"amount": 5000})).unwrap();
    assert!(
        matches!(&events[0], Event::ToolCallDecided { decision, .. } if decision.decision == Decision::Escalate)
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ToolCallDispatched { .. }))
    );
    assert!(w.m1().tool_call(2, 0).is_none());
    assert_eq!(w.m1().holds()[&2].approval.status, ApprovalStatus::Pending);
    w.ok(
        "acme",
        Actor::User(id("approver-a")),
        CommandBody::DecideApproval {
            mission: id("m1"),
            hold: Some(2),
            approve: true,
            groups: BTreeSet::new(),
            reason: "checked the invoice".into(),
        },
    );
    let events = dispatch(&mut w, 2, 0, "erp.post", json!({"amount": 5000})).unwrap();
    assert!(
        matches!(&events[1], Event::ToolCallDispatched { .. }),
        "{events:?}"
    );
}

#[test]
fn revoked_credentials_foreign_tokens_and_governed_only_tools_are_refused_and_audited() {
    let mut w = world();
    // A token of another mission.
    w.create_mission("acme", "m2", Millis::from_secs(3600));
    w.drive_to_in_progress("acme", "m2");
    token(&mut w, "m2", "tok2");
    let serial = serial(&w);
    let err = w.cmd(
        "acme",
        Actor::Agent(id("bot")),
        CommandBody::DispatchToolCall {
            mission: id("m1"),
            step: 0,
            call: 0,
            tool: id("erp.post"),
            arguments: json!({"amount": 1}),
            credential_serial: serial,
            token: id("tok2"),
        },
    );
    assert_eq!(err, Err(Rejection::TokenNotValid { token: id("tok2") }));
    assert_eq!(w.last_audit_kind("acme"), "command.rejected");

    // mail.send is registered without an invocation.
    assert_eq!(
        dispatch(&mut w, 0, 0, "mail.send", json!({})),
        Err(Rejection::ToolOutsideBoundary(id("mail.send")))
    );
    register(
        &mut w,
        "crm.read",
        ToolSpec {
            timeouts: None,
            risk: AuthorityLevel::L1,
            classification: DataClassification::Confidential,
            target: "on-prem".into(),
            invocation: None,
        },
    );
    assert_eq!(
        dispatch(&mut w, 0, 0, "crm.read", json!({})),
        Err(Rejection::ToolNotCallable(id("crm.read")))
    );

    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::RevokeCredential {
            serial,
            reason: "key leaked".into(),
        },
    );
    assert_eq!(
        dispatch(&mut w, 0, 0, "erp.post", json!({"amount": 1})),
        Err(Rejection::CredentialNotValid { serial })
    );
    assert_eq!(w.last_audit_kind("acme"), "command.rejected");
    assert!(w.m1().tool_calls().next().is_none());
}

#[test]
fn a_refused_attempt_is_audited_even_for_a_mission_that_does_not_exist() {
    let mut w = world();
    let events = w
        .cmd(
            "acme",
            Actor::Runtime,
            CommandBody::RefuseToolCall {
                mission: id("no-such-mission"),
                step: 0,
                tool: id("erp.post"),
                claimed_agent: Some(id("bot")),
                code: "bad-signature".into(),
                reason: "the request signature does not verify".into(),
            },
        )
        .unwrap();
    assert!(matches!(&events[0], Event::ToolCallRefused { code, .. } if code == "bad-signature"));
    let audit = w.state.tenant(&id("acme")).unwrap().audit();
    let last = audit.entries().next_back().unwrap();
    assert_eq!(last.kind, "tool_call.refused");
    assert_eq!(last.mission, Some(id("no-such-mission")));
    // A refusal record must say why.
    let err = w.cmd(
        "acme",
        Actor::Runtime,
        CommandBody::RefuseToolCall {
            mission: id("m1"),
            step: 0,
            tool: id("erp.post"),
            claimed_agent: None,
            code: "".into(),
            reason: "x".into(),
        },
    );
    assert!(matches!(err, Err(Rejection::BadText { .. })));
}

#[test]
fn dispatches_count_against_the_missions_tool_call_limit() {
    let mut w = World::new();
    register(
        &mut w,
        "erp.post",
        callable("on-prem", "http://erp.local/post", vec![]),
    );
    w.ok(
        "acme",
        Actor::User(id("alice")),
        CommandBody::CreateMission {
            namespace: id("prod"),
            mission: id("m1"),
            agent: id("bot"),
            definition: aura_engine::mission::MissionDefinition {
                objective: "Post two invoices".into(),
                tools: vec![id("erp.post"), id("crm.read")],
                authority: AuthorityLevel::L3,
                timeout: Millis::from_secs(3600),
            },
            context: aura_engine::mission::MissionContext {
                inputs: json!({}),
                classification: DataClassification::Confidential,
                labels: BTreeMap::new(),
            },
            limits: aura_engine::mission::RuntimeLimits {
                max_steps: 4,
                max_tool_calls: 2,
                ..Default::default()
            },
        },
    );
    w.drive_to_in_progress("acme", "m1");
    token(&mut w, "m1", "tok");
    dispatch(&mut w, 0, 0, "erp.post", json!({"amount": 1})).unwrap();
    dispatch(&mut w, 0, 0, "erp.post", json!({"amount": 1})).unwrap();
    assert_eq!(
        dispatch(&mut w, 1, 0, "erp.post", json!({"amount": 1})),
        Err(Rejection::ToolCallLimit { max: 2 })
    );
}
