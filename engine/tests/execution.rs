//! The worker protocol as the engine keeps it: claims with leases and
//! epochs, heartbeats, step reports in order, lease expiry and takeover,
//! and a superseded worker that can change nothing any more.

use crate::support;

use aura_engine::Actor;
use aura_engine::ids::{MissionId, TokenId};
use aura_engine::machine::{Advance, CommandBody, Event, Rejection, TenantState};
use aura_engine::mission::{
    AbortReason, CallResult, MissionState, OutcomeKind, PlanStep, Step, StepOutcome,
};
use aura_engine::time::Millis;
use serde_json::{Value, json};
use support::{World, id};

const LEASE: Millis = Millis::from_secs(30);

fn bot() -> Actor {
    Actor::Agent(id("bot"))
}

/// acme's mission m1, planned with two permitted steps and queued
/// (PENDING_EXECUTION).
fn queued() -> World {
    let mut w = World::new();
    w.create_mission("acme", "m1", Millis::from_secs(3600));
    w.advance("acme", "m1", Advance::BeginPlanning).unwrap();
    w.ok(
        "acme",
        bot(),
        CommandBody::SubmitPlan {
            mission: id("m1"),
            steps: vec![
                PlanStep {
                    timeouts: None,
                    tool: id("erp.post"),
                    arguments: json!({"amount": 10}),
                    retry: None,
                },
                PlanStep {
                    timeouts: None,
                    tool: id("erp.post"),
                    arguments: json!({"amount": 20}),
                    retry: None,
                },
            ],
        },
    );
    assert_eq!(
        w.mission_state("acme", "m1"),
        MissionState::PendingExecution
    );
    w
}

fn heartbeat(w: &mut World, epoch: u64, progress: Value) -> Result<Vec<Event>, Rejection> {
    w.heartbeat(epoch, LEASE, Some(progress))
}

/// Policy permits step `step`'s planned call; the agent performs it.
fn evaluate(w: &mut World, step: u32) {
    let planned = w.m1().plan().unwrap().steps[step as usize].clone();
    w.evaluate("m1", step, planned.tool.as_str(), planned.arguments)
        .unwrap();
}

fn report(
    w: &mut World,
    epoch: u64,
    step: u32,
    outcome: StepOutcome,
) -> Result<Vec<Event>, Rejection> {
    w.cmd(
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

fn performed(n: u64) -> StepOutcome {
    StepOutcome::Performed {
        output: json!({"n": n}),
    }
}

fn claimed(events: &[Event]) -> (u64, Option<u64>, u32, TokenId) {
    events
        .iter()
        .find_map(|e| match e {
            Event::MissionClaimed {
                epoch,
                superseded,
                next_step,
                token,
                ..
            } => Some((*epoch, *superseded, *next_step, token.claims.token.clone())),
            _ => None,
        })
        .expect("a claim event")
}

#[test]
fn a_claim_starts_the_mission_under_a_lease_with_its_own_token() {
    let mut w = queued();
    let events = w.claim("acme", "m1", "w1", LEASE).unwrap();
    assert!(matches!(
        events[0],
        Event::MissionAdvanced {
            from: MissionState::PendingExecution,
            to: MissionState::InProgress,
            step: Step::Start,
            ..
        }
    ));
    let (epoch, superseded, next_step, token) = claimed(&events);
    assert_eq!((epoch, superseded, next_step), (1, None, 0));
    let t = w.state.tenant(&id("acme")).unwrap();
    let issued = &t.tokens()[&token];
    assert_eq!(issued.claims.mission, id::<MissionId>("m1"));
    issued.verify_signature(&t.public_key()).unwrap();
    let lease = w.m1().execution().lease().unwrap();
    assert_eq!(lease.worker, id("w1"));
    assert_eq!(lease.expires_at, w.now.plus(LEASE));
    assert_eq!(w.last_audit_kind("acme"), "execution.claim");

    // Held: a second worker is refused and nothing changes.
    let audit = w.state.tenant(&id("acme")).unwrap().audit().len();
    let err = w.claim("acme", "m1", "w2", LEASE).unwrap_err();
    assert!(matches!(err, Rejection::LeaseHeld { .. }), "{err}");
    assert_eq!(w.m1().execution().epoch(), 1);
    assert_eq!(w.state.tenant(&id("acme")).unwrap().audit().len(), audit);

    // Only missions in the queue or executing are claimed.
    let mut fresh = World::new();
    fresh.create_mission("acme", "m1", Millis::from_secs(3600));
    assert_eq!(
        fresh.claim("acme", "m1", "w1", LEASE).unwrap_err(),
        Rejection::NotClaimable(MissionState::Created)
    );
    // Leases are bounded.
    let mut w = queued();
    assert_eq!(
        w.claim("acme", "m1", "w1", Millis(10)).unwrap_err(),
        Rejection::LeaseOutOfRange { ms: 10 }
    );
}

#[test]
fn heartbeats_extend_the_lease_and_keep_progress() {
    let mut w = queued();
    w.claim("acme", "m1", "w1", LEASE).unwrap();
    // Most of the lease passes; a heartbeat renews it from now.
    w.now = w.now.plus(Millis::from_secs(25));
    heartbeat(&mut w, 1, json!({"rows": 40})).unwrap();
    let lease = w.m1().execution().lease().unwrap().clone();
    assert_eq!(lease.expires_at, w.now.plus(LEASE));
    assert_eq!(lease.heartbeat_at, Some(w.now));
    assert_eq!(w.m1().execution().progress(), Some(&json!({"rows": 40})));
    assert_eq!(w.last_audit_kind("acme"), "execution.heartbeat");
    // Still held 40 s after the claim, thanks to the heartbeat.
    w.now = w.now.plus(Millis::from_secs(15));
    assert!(matches!(
        w.claim("acme", "m1", "w2", LEASE),
        Err(Rejection::LeaseHeld { .. })
    ));
    // A heartbeat under a wrong epoch is refused and audited.
    assert_eq!(
        heartbeat(&mut w, 7, json!({})).unwrap_err(),
        Rejection::StaleEpoch {
            epoch: 7,
            current: 1
        }
    );
    assert_eq!(w.last_audit_kind("acme"), "command.rejected");
    // Progress details are bounded.
    let big = json!({"blob": "x".repeat(20_000)});
    assert!(matches!(
        heartbeat(&mut w, 1, big),
        Err(Rejection::ProgressTooLarge { .. })
    ));
}

#[test]
fn a_lapsed_lease_is_taken_over_and_the_first_worker_changes_nothing() {
    let mut w = queued();
    w.claim("acme", "m1", "w1", LEASE).unwrap();
    let first_token = w.m1().execution().lease().unwrap().token.clone();
    evaluate(&mut w, 0);
    report(&mut w, 1, 0, performed(1)).unwrap();

    // w1 goes silent past its lease; w2 takes over and resumes at step 1.
    w.now = w.now.plus(Millis::from_secs(31));
    let events = w.claim("acme", "m1", "w2", LEASE).unwrap();
    let (epoch, superseded, next_step, _) = claimed(&events);
    assert_eq!((epoch, superseded, next_step), (2, Some(1), 1));
    assert_eq!(w.m1().state(), MissionState::InProgress);
    assert!(w.m1().execution().is_superseded(&first_token));

    // w1 wakes up: its report and heartbeat are refused and audited.
    evaluate(&mut w, 1);
    let audit = w.state.tenant(&id("acme")).unwrap().audit().len();
    let late = report(&mut w, 1, 1, performed(2)).unwrap_err();
    assert_eq!(
        late,
        Rejection::StaleEpoch {
            epoch: 1,
            current: 2
        }
    );
    assert_eq!(w.last_audit_kind("acme"), "command.rejected");
    assert_eq!(
        w.state.tenant(&id("acme")).unwrap().audit().len(),
        audit + 1
    );
    assert!(matches!(
        heartbeat(&mut w, 1, json!({})),
        Err(Rejection::StaleEpoch { .. })
    ));
    assert_eq!(w.m1().execution().next_step(), 1);

    // w2 finishes: the last step's report completes the mission.
    let events = report(&mut w, 2, 1, performed(2)).unwrap();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::MissionAdvanced {
            to: MissionState::Executed,
            step: Step::Complete,
            ..
        }
    )));
    let reports = w.m1().execution().reports();
    assert_eq!(reports.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(reports[1].output, json!({"n": 2}));
}

#[test]
fn the_runtime_expires_a_lapsed_lease_and_requeues_the_mission() {
    let mut w = queued();
    w.claim("acme", "m1", "w1", LEASE).unwrap();
    let expire = |w: &mut World, epoch| {
        w.cmd(
            "acme",
            Actor::Runtime,
            CommandBody::ExpireLease {
                mission: id("m1"),
                epoch,
            },
        )
    };
    assert!(matches!(
        expire(&mut w, 1),
        Err(Rejection::LeaseNotExpired { .. })
    ));
    w.now = w.now.plus(Millis::from_secs(31));
    let events = expire(&mut w, 1).unwrap();
    assert!(matches!(&events[0], Event::LeaseExpired { epoch: 1, .. }));
    assert!(w.m1().execution().lease().is_none());
    assert!(w.m1().execution().is_free_at(w.now));
    // The lapsed holder hears that it lost the lease.
    assert_eq!(
        heartbeat(&mut w, 1, json!({})).unwrap_err(),
        Rejection::LeaseLost { epoch: 1 }
    );
    assert_eq!(
        expire(&mut w, 1).unwrap_err(),
        Rejection::LeaseLost { epoch: 1 }
    );
    // The next claim takes it from the queue, superseding nobody.
    let (epoch, superseded, _, _) = claimed(&w.claim("acme", "m1", "w2", LEASE).unwrap());
    assert_eq!((epoch, superseded), (2, None));
    assert!(matches!(
        expire(&mut w, 1),
        Err(Rejection::StaleEpoch { .. })
    ));
}

#[test]
fn steps_are_reported_in_order_and_only_after_policy_permitted_them() {
    let mut w = queued();
    w.claim("acme", "m1", "w1", LEASE).unwrap();
    // No decision yet for step 0.
    assert_eq!(
        report(&mut w, 1, 0, performed(1)).unwrap_err(),
        Rejection::StepNotPermitted {
            step: 0,
            tool: id("erp.post")
        }
    );
    evaluate(&mut w, 0);
    assert_eq!(
        report(&mut w, 1, 1, performed(1)).unwrap_err(),
        Rejection::StepOutOfOrder {
            step: 1,
            expected: 0
        }
    );
    // A gateway call that was never made cannot be the step's result.
    assert!(matches!(
        report(&mut w, 1, 0, StepOutcome::Succeeded { call: 0 }),
        Err(Rejection::StepCallNotSucceeded { .. })
    ));
    report(&mut w, 1, 0, performed(1)).unwrap();
    assert_eq!(w.m1().execution().next_step(), 1);
    assert_eq!(w.m1().state(), MissionState::InProgress);
}

#[test]
fn a_failed_step_closes_the_mission_as_failed() {
    let mut w = queued();
    w.claim("acme", "m1", "w1", LEASE).unwrap();
    let events = report(
        &mut w,
        1,
        0,
        StepOutcome::Failed {
            reason: "the ERP refused the posting".into(),
        },
    )
    .unwrap();
    assert!(matches!(events.last(), Some(Event::MissionClosed { .. })));
    let m = w.m1();
    assert_eq!(m.state(), MissionState::Closed);
    let o = m.outcome().unwrap().outcome();
    assert_eq!(o.kind, OutcomeKind::Failed);
    assert_eq!(o.left_state, MissionState::InProgress);
    assert!(
        o.reason.contains("the ERP refused the posting"),
        "{}",
        o.reason
    );
    assert_eq!(
        m.timeline().last().unwrap().step,
        Step::Abort(AbortReason::Failed)
    );
    w.state.check_invariants().unwrap();
}

#[test]
fn a_gateway_call_is_a_step_result_only_if_it_succeeded() {
    use aura_engine::mission::CallFailure;
    let mut w = queued();
    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::RegisterTool {
            tool: id("erp.post"),
            spec: aura_engine::tool::ToolSpec {
                timeouts: None,
                risk: aura_engine::mission::AuthorityLevel::L1,
                classification: aura_engine::mission::DataClassification::Confidential,
                target: "on-prem".into(),
                invocation: Some(aura_engine::tool::ToolInvocation {
                    endpoint: "http://erp.local/post".into(),
                    input_schema: json!({"type": "object"}),
                    compensation_endpoint: None,
                    timeout_ms: 1000,
                    placements: vec![],
                    retry: Default::default(),
                }),
            },
        },
    );
    let events = w.claim("acme", "m1", "w1", LEASE).unwrap();
    let (_, _, _, token) = claimed(&events);
    let serial = *w.state.tenant(&id("acme")).unwrap().agents()[&id("bot")]
        .credentials
        .last()
        .unwrap();
    let call = |w: &mut World, call: u32, result: CallResult| {
        w.ok(
            "acme",
            bot(),
            CommandBody::DispatchToolCall {
                mission: id("m1"),
                step: 0,
                call,
                tool: id("erp.post"),
                arguments: json!({"amount": 10}),
                credential_serial: serial,
                token: token.clone(),
            },
        );
        w.ok(
            "acme",
            bot(),
            CommandBody::CompleteToolCall {
                mission: id("m1"),
                step: 0,
                call,
                result,
            },
        );
    };
    call(
        &mut w,
        0,
        CallResult::Failed {
            failure: CallFailure::Timeout,
            status: None,
            message: "no answer in 1000 ms".into(),
        },
    );
    assert!(matches!(
        report(&mut w, 1, 0, StepOutcome::Succeeded { call: 0 }),
        Err(Rejection::StepCallNotSucceeded { call: 0, .. })
    ));
    call(
        &mut w,
        1,
        CallResult::Succeeded {
            status: 200,
            output: json!({"posted": true}),
        },
    );
    report(&mut w, 1, 0, StepOutcome::Succeeded { call: 1 }).unwrap();
    assert_eq!(
        w.m1().execution().reports()[0].output,
        json!({"posted": true})
    );

    // The claim's token retires when a later claim takes over.
    w.now = w.now.plus(Millis::from_secs(31));
    w.claim("acme", "m1", "w2", LEASE).unwrap();
    let err = w
        .cmd(
            "acme",
            bot(),
            CommandBody::DispatchToolCall {
                mission: id("m1"),
                step: 1,
                call: 0,
                tool: id("erp.post"),
                arguments: json!({"amount": 10}),
                credential_serial: serial,
                token: token.clone(),
            },
        )
        .unwrap_err();
    assert_eq!(err, Rejection::TokenNotValid { token });
}

/// The missions a claim may take, as the engine's queue index lists them.
fn claimable(w: &World) -> Vec<String> {
    w.listed(|t| t.claimable_missions(w.now))
}

#[test]
fn the_queue_lists_lapsed_leases_first_then_missions_in_the_order_they_were_queued() {
    let mut w = World::new();
    for m in ["m3", "m1", "m2"] {
        w.create_mission("acme", m, Millis::from_secs(3600));
        w.advance("acme", m, Advance::BeginPlanning).unwrap();
        w.submit_plan("acme", m, 10).unwrap();
    }
    // Queue order, not id order; a mission still planning is not listed.
    w.create_mission("acme", "m4", Millis::from_secs(3600));
    assert_eq!(claimable(&w), ["m3", "m1", "m2"]);

    let start = w.now;
    w.claim("acme", "m1", "w1", LEASE).unwrap();
    w.now = start.plus(Millis::from_secs(10));
    w.claim("acme", "m3", "w1", LEASE).unwrap();
    assert_eq!(claimable(&w), ["m2"]);
    // A heartbeat moves m1's lease past m3's.
    w.now = start.plus(Millis::from_secs(20));
    w.heartbeat(1, LEASE, None).unwrap();

    // m3's lease ended first: it leads the queue.
    w.now = start.plus(Millis::from_secs(45));
    assert_eq!(claimable(&w), ["m3", "m2"]);
    w.now = start.plus(Millis::from_secs(55));
    assert_eq!(claimable(&w), ["m3", "m1", "m2"]);

    // A claim takes a mission off the list; a closed mission leaves it.
    w.claim("acme", "m3", "w2", LEASE).unwrap();
    w.cancel("acme", Actor::User(id("alice")), "m2").unwrap();
    assert_eq!(claimable(&w), ["m1"]);
    w.state.check_invariants().unwrap();
}

#[test]
fn missions_wait_for_a_plan_from_creation_until_one_is_submitted() {
    let mut w = World::new();
    for m in ["m2", "m1", "m3"] {
        w.create_mission("acme", m, Millis::from_secs(3600));
    }
    assert_eq!(
        w.listed(TenantState::unplanned_missions),
        ["m1", "m2", "m3"]
    );
    // PLANNING still waits; a submitted plan ends the wait.
    w.advance("acme", "m1", Advance::BeginPlanning).unwrap();
    w.advance("acme", "m2", Advance::BeginPlanning).unwrap();
    assert_eq!(
        w.listed(TenantState::unplanned_missions),
        ["m1", "m2", "m3"]
    );
    w.submit_plan("acme", "m2", 10).unwrap();
    assert_eq!(w.listed(TenantState::unplanned_missions), ["m1", "m3"]);
    // A mission closed before it was planned waits no more.
    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::CloseMission {
            mission: id("m3"),
            closing: aura_engine::machine::Closing::Abort {
                reason: AbortReason::Cancelled,
                note: "no longer needed".into(),
            },
        },
    );
    assert_eq!(w.listed(TenantState::unplanned_missions), ["m1"]);
}
