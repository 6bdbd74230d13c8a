//! Continue-as-new: a mission whose current run of its audit record is
//! full is carried whole into a new run, in one entry, and the new run
//! rebuilds the mission without any entry before it.

use crate::support;

use aura_engine::Actor;
use aura_engine::audit::AuditRecord;
use aura_engine::machine::{
    CommandBody, Event, FoldError, Rejection, replay_mission, replay_mission_latest_run,
};
use aura_engine::mission::{MissionState, RuntimeLimits};
use aura_engine::time::Millis;
use serde_json::json;
use support::{World, id};

const LEASE: Millis = Millis::from_secs(30);

fn continue_m1(w: &mut World) -> Result<Vec<Event>, Rejection> {
    w.cmd(
        "acme",
        Actor::Runtime,
        CommandBody::ContinueMission { mission: id("m1") },
    )
}

fn records(w: &World) -> Vec<AuditRecord> {
    w.state.tenant(&id("acme")).unwrap().audit().to_records()
}

/// m1 in progress under a run limit of 8 entries.
fn small_runs() -> World {
    let mut w = World::new();
    let limits = RuntimeLimits {
        max_run_entries: 8,
        ..RuntimeLimits::default()
    };
    w.create_mission_with("acme", "m1", Millis::from_secs(3600), limits);
    w.drive_to_in_progress("acme", "m1");
    w
}

#[test]
fn a_full_run_continues_as_new_and_replays_alone() {
    let mut w = small_runs();
    // Creation starts run 1; planning, approval and the claim are 3 entries.
    assert_eq!(w.m1().run().number, 1);
    assert_eq!(w.m1().run().entries, 3);
    assert!(matches!(
        continue_m1(&mut w),
        Err(Rejection::RunNotFull {
            entries: 3,
            max_entries: 8,
            ..
        })
    ));
    for i in 0..5 {
        w.heartbeat(1, LEASE, Some(json!({"done": i}))).unwrap();
    }
    assert!(w.m1().run_is_full());
    let before = w.m1().clone();
    let events = continue_m1(&mut w).unwrap();
    let Event::RunContinued {
        run,
        previous,
        digest,
        carried,
        ..
    } = &events[0]
    else {
        panic!("{events:?}");
    };
    assert_eq!(*run, 2);
    assert_eq!(previous.entries, 8);
    assert_eq!(*digest, before.digest());
    assert_eq!(*carried.0, before);
    let seq = records(&w).last().unwrap().entry.seq;
    assert_eq!(w.m1().run().number, 2);
    assert_eq!(w.m1().run().first_seq, seq);
    assert_eq!(w.m1().run().entries, 0);
    // Nothing else about the mission changed, and it goes on.
    assert_eq!(w.m1().state(), MissionState::InProgress);
    assert_eq!(w.m1().execution(), before.execution());
    w.heartbeat(1, LEASE, None).unwrap();
    assert_eq!(w.m1().run().entries, 1);

    let all = records(&w);
    let live = w.m1().clone();
    let t = w.state.tenant(&id("acme")).unwrap();
    // From creation, through the carry, and from the latest run alone.
    assert_eq!(replay_mission(t.id(), &all, &id("m1")).unwrap(), live);
    let latest = replay_mission_latest_run(t.id(), &all, &id("m1")).unwrap();
    assert_eq!(latest.digest(), live.digest());
    let from = all.iter().position(|r| r.entry.seq == seq).unwrap();
    assert_eq!(
        replay_mission(t.id(), &all[from..], &id("m1")).unwrap(),
        live
    );
    // The run before the carry is not needed, but it must agree with it.
    let mut altered = all.clone();
    let beat = altered
        .iter_mut()
        .rfind(|r| r.entry.seq < seq && r.entry.kind == "execution.heartbeat")
        .unwrap();
    let text = beat.payload.get().replace("\"done\":4", "\"done\":5");
    beat.payload = serde_json::from_str(&text).unwrap();
    assert!(matches!(
        replay_mission(t.id(), &altered, &id("m1")),
        Err(FoldError::Inconsistent { .. })
    ));
}

#[test]
fn payload_bytes_fill_a_run_too_and_closed_missions_do_not_continue() {
    let mut w = World::new();
    let limits = RuntimeLimits {
        max_run_bytes: 4096,
        ..RuntimeLimits::default()
    };
    w.create_mission_with("acme", "m1", Millis::from_secs(3600), limits);
    w.drive_to_in_progress("acme", "m1");
    while !w.m1().run_is_full() {
        w.heartbeat(1, LEASE, Some(json!({"note": "x".repeat(500)})))
            .unwrap();
    }
    assert!(w.m1().run().entries < 10, "{:?}", w.m1().run());
    assert!(w.m1().run().bytes >= 4096);
    continue_m1(&mut w).unwrap();
    assert_eq!(w.m1().run().number, 2);

    w.cancel("acme", Actor::User(id("alice")), "m1").unwrap();
    assert_eq!(continue_m1(&mut w).unwrap_err(), Rejection::MissionClosed);
}

#[test]
fn run_limits_out_of_range_are_refused_at_creation() {
    let mut w = World::new();
    for limits in [
        RuntimeLimits {
            max_run_entries: 7,
            ..RuntimeLimits::default()
        },
        RuntimeLimits {
            max_run_bytes: 4095,
            ..RuntimeLimits::default()
        },
    ] {
        let r = w.cmd(
            "acme",
            Actor::User(id("alice")),
            CommandBody::CreateMission {
                namespace: id("prod"),
                mission: id("m9"),
                agent: id("bot"),
                definition: aura_engine::mission::MissionDefinition {
                    objective: "x".into(),
                    tools: vec![id("erp.post")],
                    authority: aura_engine::mission::AuthorityLevel::L1,
                    timeout: Millis::from_secs(60),
                },
                context: aura_engine::mission::MissionContext {
                    inputs: json!({}),
                    classification: aura_engine::mission::DataClassification::Internal,
                    labels: Default::default(),
                },
                limits,
            },
        );
        assert_eq!(r.unwrap_err(), Rejection::LimitsOutOfRange);
    }
}
