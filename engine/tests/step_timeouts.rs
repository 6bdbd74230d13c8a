//! Per-step timeouts as the engine keeps them: leases never outlast the
//! heartbeat timeout; a step past start-to-close goes to the next worker
//! and, once it has stalled too often, to an approver; a step no worker
//! starts in time goes to an approver; an approver's no fails the step.

use crate::support;

use std::collections::BTreeSet;

use aura_engine::Actor;
use aura_engine::machine::{Advance, CommandBody, Event, Rejection};
use aura_engine::mission::{
    AuthorityLevel, DataClassification, HoldKind, MissionState, OutcomeKind, PlanStep, StepOutcome,
    StepTimeout, StepTimeouts,
};
use aura_engine::time::{Millis, Timestamp};
use aura_engine::tool::ToolSpec;
use serde_json::json;
use support::{World, id};

const LEASE: Millis = Millis::from_secs(30);

fn timeouts() -> StepTimeouts {
    StepTimeouts {
        schedule_to_start_ms: Some(60_000),
        start_to_close_ms: Some(10_000),
        heartbeat_ms: Some(5_000),
        max_stalls: 2,
    }
}

/// acme's `erp.post` declares `tool`; mission m1 is planned with one step
/// (declaring `step` of its own) and queued.
fn world(tool: Option<StepTimeouts>, step: Option<StepTimeouts>) -> World {
    let mut w = World::new();
    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::RegisterTool {
            tool: id("erp.post"),
            spec: ToolSpec {
                timeouts: tool,
                risk: AuthorityLevel::L1,
                classification: DataClassification::Confidential,
                target: "on-prem".into(),
                invocation: None,
            },
        },
    );
    w.create_mission("acme", "m1", Millis::from_secs(24 * 3600));
    w.advance("acme", "m1", Advance::BeginPlanning).unwrap();
    w.ok(
        "acme",
        Actor::Agent(id("bot")),
        CommandBody::SubmitPlan {
            mission: id("m1"),
            steps: vec![PlanStep {
                timeouts: step,
                tool: id("erp.post"),
                arguments: json!({"amount": 10}),
                retry: None,
            }],
        },
    );
    assert_eq!(
        w.mission_state("acme", "m1"),
        MissionState::PendingExecution
    );
    w
}

fn time_out(w: &mut World, timeout: StepTimeout) -> Result<Vec<Event>, Rejection> {
    let epoch = w.m1().execution().epoch();
    w.cmd(
        "acme",
        Actor::Runtime,
        CommandBody::TimeOutStep {
            mission: id("m1"),
            step: 0,
            timeout,
            epoch,
        },
    )
}

fn decide(w: &mut World, approve: bool) -> Vec<Event> {
    w.ok(
        "acme",
        Actor::User(id("approver-b")),
        CommandBody::DecideApproval {
            mission: id("m1"),
            hold: Some(0),
            approve,
            groups: BTreeSet::new(),
            reason: "looked into it".into(),
        },
    )
}

/// Moves the clock to `ms` after the current command's time.
fn wait(w: &mut World, ms: u64) {
    w.now = w.now.plus(Millis(ms));
}

fn timed_out(events: &[Event]) -> (Option<String>, u32, bool) {
    match &events[0] {
        Event::StepTimedOut {
            worker,
            stalls,
            escalated,
            ..
        } => (
            worker.as_ref().map(ToString::to_string),
            *stalls,
            *escalated,
        ),
        other => panic!("not a timeout: {other:?}"),
    }
}

fn expires_at(events: &[Event]) -> Timestamp {
    events
        .iter()
        .find_map(|e| match e {
            Event::MissionClaimed { expires_at, .. }
            | Event::HeartbeatRecorded { expires_at, .. } => Some(*expires_at),
            _ => None,
        })
        .expect("a lease event")
}

#[test]
fn a_lease_never_outlasts_the_heartbeat_timeout() {
    let mut w = world(Some(timeouts()), None);
    let claimed = w.claim("acme", "m1", "w1", LEASE).unwrap();
    assert_eq!(expires_at(&claimed), w.now.plus(Millis(5_000)));
    let beat = w.heartbeat(1, LEASE, None).unwrap();
    assert_eq!(expires_at(&beat), w.now.plus(Millis(5_000)));

    // Without timeouts the worker gets what it asks for.
    let mut w = world(None, None);
    let claimed = w.claim("acme", "m1", "w1", LEASE).unwrap();
    assert_eq!(expires_at(&claimed), w.now.plus(LEASE));
}

#[test]
fn a_step_past_start_to_close_goes_to_the_next_worker() {
    let mut w = world(Some(timeouts()), None);
    w.claim("acme", "m1", "w1", Millis::from_secs(5)).unwrap();
    // Heartbeats keep the lease, not the step's time.
    for _ in 0..2 {
        wait(&mut w, 4_000);
        w.heartbeat(1, Millis::from_secs(5), None).unwrap();
    }
    let early = time_out(&mut w, StepTimeout::StartToClose).unwrap_err();
    assert!(matches!(early, Rejection::StepNotDue { .. }), "{early:?}");
    wait(&mut w, 2_000);
    let events = time_out(&mut w, StepTimeout::StartToClose).unwrap();
    assert_eq!(timed_out(&events), (Some("w1".into()), 1, false));
    assert!(w.m1().execution().lease().is_none());

    // w1's late report is refused; w2 takes the step over.
    let late = w
        .cmd(
            "acme",
            Actor::Agent(id("bot")),
            CommandBody::ReportStep {
                mission: id("m1"),
                epoch: 1,
                step: 0,
                outcome: StepOutcome::Failed {
                    reason: "too slow".into(),
                },
            },
        )
        .unwrap_err();
    assert_eq!(late, Rejection::LeaseLost { epoch: 1 });
    w.claim("acme", "m1", "w2", LEASE).unwrap();
    assert_eq!(w.m1().execution().epoch(), 2);
    assert_eq!(w.m1().execution().stalls(0), 1);
}

#[test]
fn a_step_that_keeps_stalling_waits_for_an_approver() {
    let mut w = world(Some(timeouts()), None);
    for (worker, stalls) in [("w1", 1), ("w2", 2)] {
        w.claim("acme", "m1", worker, LEASE).unwrap();
        for _ in 0..2 {
            wait(&mut w, 4_000);
            w.heartbeat(w.m1().execution().epoch(), LEASE, None)
                .unwrap();
        }
        wait(&mut w, 2_000);
        let events = time_out(&mut w, StepTimeout::StartToClose).unwrap();
        assert_eq!(
            timed_out(&events),
            (Some(worker.into()), stalls, stalls == 2)
        );
    }
    let hold = &w.m1().holds()[&0];
    assert_eq!(
        hold.kind,
        HoldKind::Stalled {
            timeout: StepTimeout::StartToClose
        }
    );
    assert_eq!(
        w.claim("acme", "m1", "w3", LEASE).unwrap_err(),
        Rejection::StepHeld { step: 0 }
    );
    w.state.check_invariants().unwrap();
    // The stall cannot be timed out again while it waits.
    assert_eq!(
        time_out(&mut w, StepTimeout::ScheduleToStart).unwrap_err(),
        Rejection::StepHeld { step: 0 }
    );

    decide(&mut w, true);
    assert_eq!(w.m1().execution().stalls(0), 0);
    w.claim("acme", "m1", "w3", LEASE).unwrap();
}

#[test]
fn a_stall_an_approver_will_not_let_go_on_fails_the_step() {
    let mut w = world(Some(timeouts()), None);
    // Nobody claims the queued mission within schedule-to-start.
    wait(&mut w, 30_000);
    let early = time_out(&mut w, StepTimeout::ScheduleToStart).unwrap_err();
    assert!(matches!(early, Rejection::StepNotDue { .. }), "{early:?}");
    wait(&mut w, 30_000);
    let events = time_out(&mut w, StepTimeout::ScheduleToStart).unwrap();
    assert_eq!(timed_out(&events), (None, 0, true));
    assert!(matches!(
        events[1],
        Event::ApprovalOpened { hold: Some(0), .. }
    ));
    assert_eq!(
        w.claim("acme", "m1", "w1", LEASE).unwrap_err(),
        Rejection::StepHeld { step: 0 }
    );

    decide(&mut w, false);
    let m = w.m1();
    assert_eq!(m.state(), MissionState::Closed);
    let outcome = m.outcome().unwrap().outcome();
    assert_eq!(outcome.kind, OutcomeKind::Failed);
    assert!(
        outcome
            .reason
            .contains("overran its schedule_to_start timeout"),
        "{}",
        outcome.reason
    );
    let report = &m.execution().reports()[0];
    assert_eq!(report.worker.to_string(), "runtime");
    w.state.check_invariants().unwrap();
}

#[test]
fn the_plan_steps_timeouts_win_over_the_tools() {
    let own = StepTimeouts {
        start_to_close_ms: Some(60_000),
        heartbeat_ms: None,
        ..timeouts()
    };
    let mut w = world(Some(timeouts()), Some(own));
    let claimed = w.claim("acme", "m1", "w1", LEASE).unwrap();
    assert_eq!(expires_at(&claimed), w.now.plus(LEASE), "no heartbeat cap");
    wait(&mut w, 20_000);
    let early = time_out(&mut w, StepTimeout::StartToClose).unwrap_err();
    assert!(matches!(early, Rejection::StepNotDue { .. }), "{early:?}");
}

#[test]
fn a_step_without_the_timeout_cannot_time_out() {
    let mut w = world(None, None);
    wait(&mut w, 3_600_000);
    assert_eq!(
        time_out(&mut w, StepTimeout::ScheduleToStart).unwrap_err(),
        Rejection::NoStepTimeout {
            step: 0,
            timeout: StepTimeout::ScheduleToStart
        }
    );
}

#[test]
fn bad_timeouts_are_refused_on_tools_and_plan_steps() {
    let mut w = World::new();
    let bad = StepTimeouts {
        heartbeat_ms: Some(1),
        ..timeouts()
    };
    let err = w
        .cmd(
            "acme",
            Actor::Platform,
            CommandBody::RegisterTool {
                tool: id("erp.post"),
                spec: ToolSpec {
                    timeouts: Some(bad.clone()),
                    risk: AuthorityLevel::L1,
                    classification: DataClassification::Confidential,
                    target: "on-prem".into(),
                    invocation: None,
                },
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, Rejection::BadConfig(ref e) if e.contains("heartbeat_ms")),
        "{err:?}"
    );

    w.create_mission("acme", "m1", Millis::from_secs(3600));
    w.advance("acme", "m1", Advance::BeginPlanning).unwrap();
    let err = w
        .cmd(
            "acme",
            Actor::Agent(id("bot")),
            CommandBody::SubmitPlan {
                mission: id("m1"),
                steps: vec![PlanStep {
                    timeouts: Some(bad),
                    tool: id("erp.post"),
                    arguments: json!({"amount": 10}),
                    retry: None,
                }],
            },
        )
        .unwrap_err();
    assert!(matches!(err, Rejection::BadStep { step: 0, .. }), "{err:?}");
    assert_eq!(w.mission_state("acme", "m1"), MissionState::Planning);
}
