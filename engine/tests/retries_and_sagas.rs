//! Retries and saga compensation as the engine keeps them: a failed call
//! is sent again only on its policy's schedule and with its idempotency
//! key, and a step that fails for good has the steps completed before it
//! undone, latest first, before the mission closes.

use crate::support;

use aura_engine::Actor;
use aura_engine::machine::{Advance, CommandBody, Event, Rejection, TenantState};
use aura_engine::mission::{
    AuthorityLevel, CallFailure, CallResult, Coefficient, DataClassification, HoldKind,
    MissionState, OnExhaustion, OutcomeKind, PlanStep, RetryPolicy, RetryState, StepOutcome,
};
use aura_engine::time::{Millis, Timestamp};
use aura_engine::tool::{ToolInvocation, ToolSpec};
use serde_json::json;
use support::{World, id};

const LEASE: Millis = Millis::from_secs(30);

fn bot() -> Actor {
    Actor::Agent(id("bot"))
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        initial_interval_ms: 1000,
        backoff_coefficient: Coefficient::new(2.0).unwrap(),
        maximum_interval_ms: 10_000,
        maximum_attempts: attempts,
        ..RetryPolicy::default()
    }
}

/// Registers `erp.post` callable, retried under `retry`, undone at
/// `/undo` when `undo`.
fn register(w: &mut World, retry: RetryPolicy, undo: bool) {
    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::RegisterTool {
            tool: id("erp.post"),
            spec: ToolSpec {
                timeouts: None,
                risk: AuthorityLevel::L1,
                classification: DataClassification::Confidential,
                target: "on-prem".into(),
                invocation: Some(ToolInvocation {
                    endpoint: "http://erp.local/post".into(),
                    input_schema: json!({"type": "object"}),
                    compensation_endpoint: undo.then(|| "http://erp.local/undo".into()),
                    timeout_ms: 1000,
                    placements: vec![],
                    retry,
                }),
            },
        },
    );
}

/// acme with `erp.post` callable (undone at `/undo` when `undo`), and
/// mission m1 planned with `steps` permitted steps, claimed by w1.
fn world(retry: RetryPolicy, undo: bool, steps: usize) -> World {
    let mut w = World::new();
    register(&mut w, retry, undo);
    w.create_mission("acme", "m1", Millis::from_secs(3600));
    w.advance("acme", "m1", Advance::BeginPlanning).unwrap();
    let plan = (0..steps)
        .map(|n| PlanStep {
            timeouts: None,
            tool: id("erp.post"),
            arguments: json!({"amount": 10 + n}),
            retry: None,
        })
        .collect();
    w.ok(
        "acme",
        bot(),
        CommandBody::SubmitPlan {
            mission: id("m1"),
            steps: plan,
        },
    );
    w.claim("acme", "m1", "w1", LEASE).unwrap();
    w
}

fn dispatch(w: &mut World, step: u32) -> Result<Vec<Event>, Rejection> {
    dispatch_amount(w, step, 10 + u64::from(step))
}

fn dispatch_amount(w: &mut World, step: u32, amount: u64) -> Result<Vec<Event>, Rejection> {
    let serial = *w.state.tenant(&id("acme")).unwrap().agents()[&id("bot")]
        .credentials
        .last()
        .unwrap();
    w.cmd(
        "acme",
        bot(),
        CommandBody::DispatchToolCall {
            mission: id("m1"),
            step,
            call: 0,
            tool: id("erp.post"),
            arguments: json!({"amount": amount}),
            credential_serial: serial,
            token: id("m1-w1-1"),
        },
    )
}

fn complete(w: &mut World, step: u32, result: CallResult) -> Vec<Event> {
    w.ok(
        "acme",
        bot(),
        CommandBody::CompleteToolCall {
            mission: id("m1"),
            step,
            call: 0,
            result,
        },
    )
}

fn failure(kind: CallFailure) -> CallResult {
    CallResult::Failed {
        failure: kind,
        status: None,
        message: "the ERP did not answer".into(),
    }
}

fn ok() -> CallResult {
    CallResult::Succeeded {
        status: 200,
        output: json!({"posted": true}),
    }
}

/// The retry state the completion recorded.
fn retry_of(events: &[Event]) -> Option<RetryState> {
    events.iter().find_map(|e| match e {
        Event::ToolCallCompleted { retry, .. } | Event::CompensationCompleted { retry, .. } => {
            retry.clone()
        }
        _ => None,
    })
}

/// Runs the command at exactly `at` (the world adds 10 ms per command).
fn at(w: &mut World, t: Timestamp) {
    w.now = Timestamp(t.0 - 10);
}

fn report(w: &mut World, step: u32, outcome: StepOutcome) -> Vec<Event> {
    let epoch = w.m1().execution().epoch();
    w.ok(
        "acme",
        bot(),
        CommandBody::ReportStep {
            mission: id("m1"),
            epoch,
            step,
            outcome,
        },
    )
}

#[test]
fn a_failed_call_is_sent_again_with_its_key_only_on_the_policys_schedule() {
    let mut w = world(policy(3), false, 1);
    let first = dispatch(&mut w, 0).unwrap();
    let key = |events: &[Event]| {
        events.iter().find_map(|e| match e {
            Event::ToolCallDispatched {
                idempotency_key,
                dispatch,
                ..
            } => Some((idempotency_key.clone(), *dispatch)),
            _ => None,
        })
    };
    let (k1, n1) = key(&first).unwrap();
    assert_eq!(n1, 1);
    let events = complete(&mut w, 0, failure(CallFailure::Unreachable));
    let failed_at = w.now;
    let Some(RetryState::Scheduled {
        attempt: 2,
        not_before,
    }) = retry_of(&events)
    else {
        panic!("a retry is scheduled: {events:?}");
    };
    assert_eq!(not_before, failed_at.plus(Millis(1000)));

    at(&mut w, Timestamp(not_before.0 - 1));
    assert_eq!(
        dispatch(&mut w, 0).unwrap_err(),
        Rejection::RetryNotDue {
            step: 0,
            call: 0,
            not_before
        }
    );
    at(&mut w, not_before);
    let (k2, n2) = key(&dispatch(&mut w, 0).unwrap()).unwrap();
    assert_eq!((k2.as_str(), n2), (k1.as_str(), 2), "a retry keeps the key");

    // The wait doubles.
    let events = complete(&mut w, 0, failure(CallFailure::Timeout));
    let second_failure = w.now;
    let Some(RetryState::Scheduled {
        attempt: 3,
        not_before,
    }) = retry_of(&events)
    else {
        panic!("a third attempt is scheduled: {events:?}");
    };
    assert_eq!(not_before, second_failure.plus(Millis(2000)));
    at(&mut w, not_before);
    dispatch(&mut w, 0).unwrap();

    // The third failure is the last attempt.
    let events = complete(&mut w, 0, failure(CallFailure::Timeout));
    assert!(matches!(
        retry_of(&events),
        Some(RetryState::Exhausted { attempts: 3, .. })
    ));
    w.now = w.now.plus(Millis::from_secs(60));
    let err = dispatch(&mut w, 0).unwrap_err();
    assert!(
        matches!(err, Rejection::RetriesExhausted { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(err.is_audited());
    let record = w.m1().tool_call(0, 0).unwrap();
    assert_eq!((record.dispatches, record.failed_attempts), (3, 3));
    w.state.check_invariants().unwrap();
}

#[test]
fn non_retryable_failures_and_the_time_budget_end_retries_at_once() {
    let mut w = world(
        RetryPolicy {
            non_retryable: [CallFailure::HttpStatus].into(),
            ..policy(5)
        },
        false,
        1,
    );
    dispatch(&mut w, 0).unwrap();
    let events = complete(&mut w, 0, failure(CallFailure::HttpStatus));
    assert!(matches!(
        retry_of(&events),
        Some(RetryState::Exhausted { attempts: 1, ref why }) if why.contains("http_status")
    ));

    let mut w = world(
        RetryPolicy {
            maximum_duration_ms: Some(1500),
            ..policy(5)
        },
        false,
        1,
    );
    dispatch(&mut w, 0).unwrap();
    let events = complete(&mut w, 0, failure(CallFailure::Timeout));
    let Some(RetryState::Scheduled { not_before, .. }) = retry_of(&events) else {
        panic!("the first retry fits the budget");
    };
    at(&mut w, not_before);
    dispatch(&mut w, 0).unwrap();
    // The next wait (2 s) would start the third attempt past 1.5 s.
    let events = complete(&mut w, 0, failure(CallFailure::Timeout));
    assert!(matches!(
        retry_of(&events),
        Some(RetryState::Exhausted { attempts: 2, ref why }) if why.contains("1500 ms")
    ));
}

#[test]
fn a_plan_step_may_retry_differently_from_its_tool() {
    let mut w = World::new();
    register(&mut w, policy(5), false);
    w.create_mission("acme", "m1", Millis::from_secs(3600));
    w.advance("acme", "m1", Advance::BeginPlanning).unwrap();
    w.ok(
        "acme",
        bot(),
        CommandBody::SubmitPlan {
            mission: id("m1"),
            steps: vec![PlanStep {
                timeouts: None,
                tool: id("erp.post"),
                arguments: json!({"amount": 10}),
                retry: Some(policy(1)),
            }],
        },
    );
    w.claim("acme", "m1", "w1", LEASE).unwrap();
    dispatch(&mut w, 0).unwrap();
    let events = complete(&mut w, 0, failure(CallFailure::Unreachable));
    assert!(matches!(
        retry_of(&events),
        Some(RetryState::Exhausted { attempts: 1, .. })
    ));
}

/// Steps 0 and 1 succeed through the gateway; step 2 fails for good.
fn two_done_then_failed(w: &mut World) -> Vec<Event> {
    for step in 0..2 {
        dispatch(w, step).unwrap();
        complete(w, step, ok());
        report(w, step, StepOutcome::Succeeded { call: 0 });
    }
    dispatch(w, 2).unwrap();
    complete(w, 2, failure(CallFailure::HttpStatus));
    report(
        w,
        2,
        StepOutcome::Failed {
            reason: "the ERP refused the posting".into(),
        },
    )
}

fn compensate(w: &mut World, step: u32) -> Result<Vec<Event>, Rejection> {
    w.cmd(
        "acme",
        Actor::Runtime,
        CommandBody::DispatchCompensation {
            mission: id("m1"),
            step,
        },
    )
}

fn compensated(w: &mut World, step: u32, result: CallResult) -> Vec<Event> {
    w.ok(
        "acme",
        Actor::Runtime,
        CommandBody::CompleteCompensation {
            mission: id("m1"),
            step,
            result,
        },
    )
}

#[test]
fn a_step_failing_for_good_undoes_the_completed_steps_latest_first() {
    let mut w = world(policy(3), true, 3);
    assert_eq!(w.m1().state(), MissionState::InProgress);
    assert!(w.listed(TenantState::compensating_missions).is_empty());
    let events = two_done_then_failed(&mut w);
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::SagaStarted { failed_step: 2, compensations, not_compensable, .. }
                if compensations == &[1, 0] && not_compensable.is_empty()
        )),
        "{events:?}"
    );
    // The mission stays IN_PROGRESS, held by nobody, until the saga ends;
    // no worker takes it and nobody closes it meanwhile.
    assert_eq!(w.m1().state(), MissionState::InProgress);
    assert!(w.m1().execution().lease().is_none());
    assert_eq!(w.listed(TenantState::compensating_missions), ["m1"]);
    w.state.check_invariants().unwrap();
    w.now = w.now.plus(LEASE);
    assert_eq!(
        w.claim("acme", "m1", "w2", LEASE).unwrap_err(),
        Rejection::Compensating
    );
    let cancel = w.cancel("acme", Actor::User(id("alice")), "m1");
    assert_eq!(cancel.unwrap_err(), Rejection::Compensating);

    // Latest first.
    assert_eq!(
        compensate(&mut w, 0).unwrap_err(),
        Rejection::CompensationOutOfOrder {
            step: 0,
            current: 1
        }
    );
    let sent = compensate(&mut w, 1).unwrap();
    let original = w.m1().tool_call(1, 0).unwrap().idempotency_key.clone();
    let Some(Event::CompensationDispatched {
        idempotency_key,
        endpoint,
        ..
    }) = sent.first()
    else {
        panic!("{sent:?}");
    };
    assert_eq!(endpoint, "http://erp.local/undo");
    assert_ne!(idempotency_key, &original, "an undo has its own key");
    let saga = w.m1().execution().saga().unwrap();
    assert_eq!(saga.current().unwrap().compensates, original);
    assert_eq!(
        saga.current().unwrap().original_output,
        json!({"posted": true})
    );
    compensated(&mut w, 1, ok());

    // A failed undo is retried on the tool's schedule, then succeeds.
    compensate(&mut w, 0).unwrap();
    let events = compensated(&mut w, 0, failure(CallFailure::Timeout));
    let Some(RetryState::Scheduled { not_before, .. }) = retry_of(&events) else {
        panic!("{events:?}");
    };
    assert!(matches!(
        compensate(&mut w, 0),
        Err(Rejection::RetryNotDue { .. })
    ));
    at(&mut w, not_before);
    compensate(&mut w, 0).unwrap();
    let events = compensated(&mut w, 0, ok());
    assert!(matches!(events.last(), Some(Event::MissionClosed { .. })));

    let m = w.m1();
    assert_eq!(m.state(), MissionState::Closed);
    assert!(w.listed(TenantState::compensating_missions).is_empty());
    let o = m.outcome().unwrap().outcome();
    assert_eq!(o.kind, OutcomeKind::Failed);
    assert_eq!(
        o.result,
        json!({
            "failed_step": 2,
            "reason": "the ERP refused the posting",
            "compensated": [1, 0],
            "compensation_failed": [],
            "not_compensable": [],
        })
    );
    assert_eq!(
        compensate(&mut w, 0).unwrap_err(),
        Rejection::NotCompensating
    );
    w.state.check_invariants().unwrap();
}

#[test]
fn an_undo_that_keeps_failing_is_recorded_and_the_saga_goes_on() {
    let mut w = world(policy(1), true, 3);
    two_done_then_failed(&mut w);
    compensate(&mut w, 1).unwrap();
    let events = compensated(&mut w, 1, failure(CallFailure::Unreachable));
    assert!(matches!(
        retry_of(&events),
        Some(RetryState::Exhausted { .. })
    ));
    compensate(&mut w, 0).unwrap();
    compensated(&mut w, 0, ok());
    let o = w.m1().outcome().unwrap().outcome().clone();
    assert_eq!(o.result["compensated"], json!([0]));
    assert_eq!(o.result["compensation_failed"], json!([1]));
    w.state.check_invariants().unwrap();
}

#[test]
fn without_compensation_endpoints_a_failed_step_closes_the_mission_at_once() {
    let mut w = world(policy(3), false, 3);
    let events = two_done_then_failed(&mut w);
    assert!(matches!(events.last(), Some(Event::MissionClosed { .. })));
    let o = w.m1().outcome().unwrap().outcome().clone();
    assert_eq!(o.result["not_compensable"], json!([1, 0]));
    assert_eq!(o.result["compensated"], json!([]));
    w.state.check_invariants().unwrap();
}

fn decide(w: &mut World, approve: bool) -> Result<Vec<Event>, Rejection> {
    w.cmd(
        "acme",
        Actor::User(id("approver-b")),
        CommandBody::DecideApproval {
            mission: id("m1"),
            hold: Some(0),
            approve,
            groups: Default::default(),
            reason: "checked the ERP".into(),
        },
    )
}

#[test]
fn used_up_retries_can_pause_the_step_for_an_approver_who_allows_more() {
    let escalating = RetryPolicy {
        on_exhaustion: OnExhaustion::Escalate,
        ..policy(2)
    };
    let mut w = world(escalating, false, 1);
    dispatch(&mut w, 0).unwrap();
    complete(&mut w, 0, failure(CallFailure::Unreachable));
    w.now = w.now.plus(Millis::from_secs(5));
    dispatch(&mut w, 0).unwrap();
    let events = complete(&mut w, 0, failure(CallFailure::Unreachable));
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::ApprovalOpened { hold: Some(0), approval, .. }
                if approval.required_level == AuthorityLevel::L3
        )),
        "{events:?}"
    );
    let hold = &w.m1().holds()[&0];
    assert_eq!(hold.kind, HoldKind::RetriesExhausted { call: 0 });
    assert!(matches!(
        dispatch(&mut w, 0),
        Err(Rejection::RetriesExhausted { .. })
    ));

    // Approved: the same call (same key) gets a fresh set of attempts.
    decide(&mut w, true).unwrap();
    let record = w.m1().tool_call(0, 0).unwrap().clone();
    assert_eq!(record.failed_attempts, 0);
    dispatch(&mut w, 0).unwrap();
    complete(&mut w, 0, failure(CallFailure::Unreachable));
    assert!(matches!(
        w.m1().tool_call(0, 0).unwrap().retry,
        Some(RetryState::Scheduled { attempt: 2, .. })
    ));
    w.now = w.now.plus(Millis::from_secs(5));
    dispatch(&mut w, 0).unwrap();
    complete(&mut w, 0, ok());
    assert_eq!(w.m1().tool_call(0, 0).unwrap().dispatches, 4);
    report(&mut w, 0, StepOutcome::Succeeded { call: 0 });
    assert_eq!(w.m1().state(), MissionState::Executed);
    w.state.check_invariants().unwrap();
}

/// A step whose call policy escalated and an approver allowed keeps that
/// allowance when its retries run out and an approver allows more: the
/// call is not escalated a second time.
#[test]
fn more_attempts_keep_the_steps_policy_approval() {
    let escalating = RetryPolicy {
        on_exhaustion: OnExhaustion::Escalate,
        ..policy(1)
    };
    let mut w = world(escalating, false, 1);
    let dispatched = |events: &[Event]| {
        events
            .iter()
            .any(|e| matches!(e, Event::ToolCallDispatched { .. }))
    };
    // A large amount: policy escalates the call, an approver allows it.
    let events = dispatch_amount(&mut w, 0, 5_000).unwrap();
    assert!(!dispatched(&events), "{events:?}");
    assert_eq!(w.m1().holds()[&0].kind, HoldKind::Policy);
    decide(&mut w, true).unwrap();
    assert!(dispatched(&dispatch_amount(&mut w, 0, 5_000).unwrap()));
    // Its one attempt fails; an approver allows more.
    complete(&mut w, 0, failure(CallFailure::Unreachable));
    assert_eq!(
        w.m1().holds()[&0].kind,
        HoldKind::RetriesExhausted { call: 0 }
    );
    decide(&mut w, true).unwrap();
    let events = dispatch_amount(&mut w, 0, 5_000).unwrap();
    assert!(dispatched(&events), "escalated again: {events:?}");
    w.state.check_invariants().unwrap();
}

#[test]
fn an_approver_who_refuses_more_attempts_leaves_the_call_failed() {
    let escalating = RetryPolicy {
        on_exhaustion: OnExhaustion::Escalate,
        ..policy(1)
    };
    let mut w = world(escalating, false, 1);
    dispatch(&mut w, 0).unwrap();
    complete(&mut w, 0, failure(CallFailure::Timeout));
    decide(&mut w, false).unwrap();
    assert!(matches!(
        dispatch(&mut w, 0),
        Err(Rejection::RetriesExhausted { .. })
    ));
    report(
        &mut w,
        0,
        StepOutcome::Failed {
            reason: "no more attempts".into(),
        },
    );
    assert_eq!(w.m1().state(), MissionState::Closed);
}

/// A worker may give up on a step while its hold still waits: the hold is
/// then moot, and nobody is asked to decide it.
#[test]
fn a_hold_on_a_step_already_reported_is_no_longer_decided() {
    let escalating = RetryPolicy {
        on_exhaustion: OnExhaustion::Escalate,
        ..policy(1)
    };
    let mut w = world(escalating, false, 2);
    dispatch(&mut w, 0).unwrap();
    complete(&mut w, 0, failure(CallFailure::Timeout));
    assert_eq!(w.m1().open_approvals().count(), 1);
    report(
        &mut w,
        0,
        StepOutcome::Failed {
            reason: "gave up".into(),
        },
    );
    assert_eq!(w.m1().open_approvals().count(), 0);
    assert_eq!(
        decide(&mut w, true).unwrap_err(),
        Rejection::NoPendingApproval { hold: Some(0) }
    );
}

/// The mission is derived data of its audit record: folding the record
/// rebuilds it exactly, and a record missing an entry or carrying an
/// altered result does not.
#[test]
fn a_compensated_mission_rebuilds_from_its_audit_record() {
    use aura_engine::machine::{FoldError, replay_mission};
    let mut w = world(policy(3), true, 3);
    two_done_then_failed(&mut w);
    for step in [1, 0] {
        compensate(&mut w, step).unwrap();
        compensated(&mut w, step, ok());
    }
    let t = w.state.tenant(&id("acme")).unwrap();
    let records = t.audit().to_records();
    let live = w.m1();
    let rebuilt = replay_mission(t.id(), &records, &id("m1")).unwrap();
    assert_eq!(&rebuilt, live);
    assert_eq!(rebuilt.digest(), live.digest());

    // Without the first undo's dispatch, its result has no call to answer.
    let dispatched = records
        .iter()
        .position(|r| {
            r.entry.kind
                == CommandBody::DispatchCompensation {
                    mission: id("m1"),
                    step: 1,
                }
                .kind()
        })
        .unwrap();
    let mut gapped = records.clone();
    gapped.remove(dispatched);
    assert!(matches!(
        replay_mission(t.id(), &gapped, &id("m1")),
        Err(FoldError::Inconsistent { .. })
    ));

    // An altered tool output rebuilds a different mission.
    let mut altered = records.clone();
    let completed = altered
        .iter_mut()
        .find(|r| r.payload.get().contains("tool_call_completed"))
        .unwrap();
    let text = completed.payload.get().replace("true", "false");
    completed.payload = serde_json::from_str(&text).unwrap();
    let other = replay_mission(t.id(), &altered, &id("m1")).unwrap();
    assert_ne!(other.digest(), live.digest());

    assert_eq!(
        replay_mission(t.id(), &records, &id("nope")).unwrap_err(),
        FoldError::NoEntries(id("nope"))
    );
}
