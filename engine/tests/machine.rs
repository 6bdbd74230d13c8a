//! Targeted tests of the state machine's rules.

use std::collections::{BTreeMap, BTreeSet};

use aura_engine::Actor;
use aura_engine::identity::KeyPair;
use aura_engine::ids::{AgentId, MissionId, NamespaceId, OrgUnitId, TokenId, ToolName};
use aura_engine::machine::{
    Advance, Closing, Command, CommandBody, EngineState, Event, Rejection, SigningSeed,
};
use aura_engine::mission::{
    AbortReason, AuthorityLevel, DataClassification, MissionContext, MissionDefinition,
    MissionState, OutcomeKind, RuntimeLimits, StepOutcome,
};
use aura_engine::time::{Millis, Timestamp};
use serde_json::json;

use crate::support;

use support::{World, id};

#[test]
fn success_path_seals_a_signed_outcome() {
    let mut w = World::new();
    w.create_mission("acme", "m1", Millis::from_secs(3600));
    w.drive_to_in_progress("acme", "m1");
    w.evaluate("m1", 0, "erp.post", json!({"amount": 10}))
        .unwrap();
    // The only step's report completes the mission.
    w.ok(
        "acme",
        Actor::Agent(id("bot")),
        CommandBody::ReportStep {
            mission: id("m1"),
            epoch: 1,
            step: 0,
            outcome: StepOutcome::Performed {
                output: json!({"posted": 10}),
            },
        },
    );
    assert_eq!(w.mission_state("acme", "m1"), MissionState::Executed);
    w.ok(
        "acme",
        Actor::Runtime,
        CommandBody::CloseMission {
            mission: id("m1"),
            closing: Closing::Seal {
                result: json!({"paid": 3}),
            },
        },
    );
    let t = w.state.tenant(&id("acme")).unwrap();
    let m = &t.missions()[&id::<MissionId>("m1")];
    assert_eq!(m.state(), MissionState::Closed);
    let sealed = m.outcome().unwrap();
    sealed.verify(&t.public_key()).unwrap();
    let o = sealed.outcome();
    assert_eq!(o.kind, OutcomeKind::Succeeded);
    assert_eq!(o.left_state, MissionState::Executed);
    assert_eq!(o.result, json!({"paid": 3}));
    assert_eq!(m.timeline().len(), 7);
    // Every move is in the audit chain.
    let kinds: Vec<_> = t.audit().entries().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "mission.advance").count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == "execution.claim").count(), 1);
    assert_eq!(
        kinds.iter().filter(|k| **k == "execution.report").count(),
        1
    );
    assert_eq!(kinds.iter().filter(|k| **k == "mission.plan").count(), 1);
    assert_eq!(kinds.last(), Some(&"mission.close"));
    // A closed mission is immutable.
    let err = w.cmd(
        "acme",
        Actor::Runtime,
        CommandBody::WriteStateData {
            mission: id("m1"),
            key: "x".into(),
            value: Some(json!(1)),
        },
    );
    assert_eq!(err, Err(Rejection::StateDataFrozen(MissionState::Closed)));
    assert_eq!(w.last_audit_kind("acme"), "command.rejected");
}

#[test]
fn illegal_moves_are_refused_and_recorded() {
    let mut w = World::new();
    w.create_mission("acme", "m1", Millis::from_secs(3600));
    let before = w.state.tenant(&id("acme")).unwrap().audit().len();
    let err = w
        .cmd(
            "acme",
            Actor::Agent(id("bot")),
            CommandBody::CloseMission {
                mission: id("m1"),
                closing: Closing::Seal { result: json!({}) },
            },
        )
        .unwrap_err();
    assert!(matches!(err, Rejection::IllegalTransition(_)));
    assert_eq!(err.to_string(), "a mission in CREATED cannot seal");
    let t = w.state.tenant(&id("acme")).unwrap();
    assert_eq!(t.audit().len(), before + 1);
    let rec = t.audit().records().last().unwrap();
    assert_eq!(rec.entry.kind, "command.rejected");
    assert_eq!(rec.entry.mission, Some(id("m1")));
    assert_eq!(
        rec.payload.to_value()[0]["rejection"]["code"],
        "illegal_transition"
    );
    assert_eq!(w.mission_state("acme", "m1"), MissionState::Created);
}

#[test]
fn agents_act_only_on_their_own_missions() {
    let mut w = World::new();
    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::IssueCredential {
            agent: id("rogue"),
            org_unit: id("ops"),
            owner: None,
            public_key: KeyPair::from_seed([4; 32]).public(),
            not_before: Timestamp(0),
            not_after: Timestamp(i64::MAX / 2),
        },
    );
    w.create_mission("acme", "m1", Millis::from_secs(3600));
    let err = w.cmd(
        "acme",
        Actor::Agent(id("rogue")),
        CommandBody::AdvanceMission {
            mission: id("m1"),
            step: Advance::BeginPlanning,
        },
    );
    assert_eq!(err, Err(Rejection::NotMissionAgent { actor: id("rogue") }));
    assert_eq!(w.last_audit_kind("acme"), "command.rejected");
    w.cmd(
        "acme",
        Actor::Agent(id("bot")),
        CommandBody::AdvanceMission {
            mission: id("m1"),
            step: Advance::BeginPlanning,
        },
    )
    .unwrap();
}

#[test]
fn tenants_are_isolated_by_construction() {
    let mut w = World::new();
    w.create_mission("acme", "shared-id", Millis::from_secs(3600));
    w.create_mission("globex", "shared-id", Millis::from_secs(3600));
    let globex_before = w.state.tenant(&id("globex")).unwrap().clone();
    w.cancel("acme", Actor::Runtime, "shared-id").unwrap();
    assert_eq!(w.mission_state("acme", "shared-id"), MissionState::Closed);
    assert!(w.state.tenant(&id("globex")).unwrap() == &globex_before);
    // A command for a tenant that does not exist is refused, not routed.
    let err = w.cmd("initech", Actor::Runtime, CommandBody::SignCheckpoint);
    assert_eq!(err, Err(Rejection::UnknownTenant(id("initech"))));
    // Only the platform creates tenants.
    let err = w.cmd(
        "initech",
        Actor::User(id("alice")),
        CommandBody::CreateTenant {
            display_name: "Initech".into(),
            signing_key_seed: SigningSeed([9; 32]).into(),
        },
    );
    assert_eq!(err, Err(Rejection::NotPlatform));
}

#[test]
fn deadlines_bound_every_move_and_only_then_allow_timeout() {
    let mut w = World::new();
    w.create_mission("acme", "m1", Millis::from_secs(60));
    let early = w.cmd(
        "acme",
        Actor::Runtime,
        CommandBody::CloseMission {
            mission: id("m1"),
            closing: Closing::Abort {
                reason: AbortReason::TimedOut,
                note: "timer".into(),
            },
        },
    );
    assert!(matches!(early, Err(Rejection::DeadlineNotReached { .. })));
    w.now = w.now.plus(Millis::from_secs(61));
    let late = w.advance("acme", "m1", Advance::BeginPlanning);
    assert!(matches!(late, Err(Rejection::DeadlinePassed { .. })));
    w.ok(
        "acme",
        Actor::Runtime,
        CommandBody::CloseMission {
            mission: id("m1"),
            closing: Closing::Abort {
                reason: AbortReason::TimedOut,
                note: "timer".into(),
            },
        },
    );
    let t = w.state.tenant(&id("acme")).unwrap();
    let o = t.missions()[&id::<MissionId>("m1")]
        .outcome()
        .unwrap()
        .outcome()
        .clone();
    assert_eq!(
        (o.kind, o.left_state),
        (OutcomeKind::TimedOut, MissionState::Created)
    );
}

#[test]
fn execution_tokens_stay_inside_the_frozen_boundary() {
    let mut w = World::new();
    w.create_mission("acme", "m1", Millis::from_secs(3600));
    let token = |tools: &[&str], ttl: Millis, at: Timestamp| CommandBody::IssueExecutionToken {
        mission: id("m1"),
        token: id(&format!("tok-{}", at.0)),
        tools: tools
            .iter()
            .map(|t| id::<ToolName>(t))
            .collect::<BTreeSet<_>>(),
        parameters: BTreeMap::new(),
        expires_at: at.plus(ttl),
    };
    let at = w.now;
    let err = w.cmd(
        "acme",
        Actor::Runtime,
        token(&["erp.post"], Millis::from_secs(60), at),
    );
    assert_eq!(err, Err(Rejection::TokenNotIssuable(MissionState::Created)));
    w.drive_to_in_progress("acme", "m1");
    let at = w.now;
    let err = w.cmd(
        "acme",
        Actor::Runtime,
        token(&["shell.exec"], Millis::from_secs(60), at),
    );
    assert_eq!(err, Err(Rejection::ToolOutsideBoundary(id("shell.exec"))));
    assert_eq!(w.last_audit_kind("acme"), "command.rejected");
    let at = w.now;
    let err = w.cmd(
        "acme",
        Actor::Runtime,
        token(&["erp.post"], Millis::from_secs(7200), at),
    );
    assert!(matches!(err, Err(Rejection::TokenOutlivesMission { .. })));
    let at = w.now;
    let events = w.ok(
        "acme",
        Actor::Runtime,
        token(&["erp.post"], Millis::from_secs(60), at),
    );
    let Event::ExecutionTokenIssued { token } = &events[0] else {
        panic!("{events:?}")
    };
    let t = w.state.tenant(&id("acme")).unwrap();
    token.verify_signature(&t.public_key()).unwrap();
    assert_eq!(
        token.claims.boundary_digest,
        t.missions()[&id::<MissionId>("m1")].boundary().digest()
    );
    assert_eq!(token.claims.agent, id::<AgentId>("bot"));
    let _: TokenId = token.claims.token.clone();
}

#[test]
fn revoked_agents_cannot_start_missions() {
    let mut w = World::new();
    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::RevokeCredential {
            serial: 1,
            reason: "key leaked".into(),
        },
    );
    let err = w.cmd(
        "acme",
        Actor::User(id("alice")),
        CommandBody::CreateMission {
            namespace: id("prod"),
            mission: id("m9"),
            agent: id("bot"),
            definition: MissionDefinition {
                objective: "x".into(),
                tools: vec![id("erp.post")],
                authority: AuthorityLevel::L1,
                timeout: Millis::from_secs(60),
            },
            context: MissionContext {
                inputs: json!({}),
                classification: DataClassification::Public,
                labels: BTreeMap::new(),
            },
            limits: RuntimeLimits::default(),
        },
    );
    assert_eq!(err, Err(Rejection::NoActiveCredential(id("bot"))));
    let again = w.cmd(
        "acme",
        Actor::Platform,
        CommandBody::RevokeCredential {
            serial: 1,
            reason: "again".into(),
        },
    );
    assert_eq!(again, Err(Rejection::AlreadyRevoked(1)));
    // The agent stays bound to its org unit.
    let err = w.cmd(
        "acme",
        Actor::Platform,
        CommandBody::IssueCredential {
            agent: id("bot"),
            org_unit: id::<OrgUnitId>("finance"),
            owner: None,
            public_key: KeyPair::from_seed([5; 32]).public(),
            not_before: Timestamp(0),
            not_after: Timestamp(10),
        },
    );
    assert!(matches!(err, Err(Rejection::OrgUnitMismatch { .. })));
}

#[test]
fn audit_time_never_goes_backwards() {
    let mut w = World::new();
    let last = w
        .state
        .tenant(&id("acme"))
        .unwrap()
        .audit()
        .entries()
        .next_back()
        .unwrap()
        .time;
    w.state
        .apply(&Command {
            tenant: id("acme"),
            at: Timestamp(last.0 - 5_000),
            actor: Actor::Platform,
            body: CommandBody::CreateNamespace {
                namespace: id::<NamespaceId>("dev"),
                display_name: "Dev".into(),
            },
            precondition: None,
        })
        .unwrap();
    let newest = w
        .state
        .tenant(&id("acme"))
        .unwrap()
        .audit()
        .entries()
        .next_back()
        .unwrap()
        .time;
    assert_eq!(newest, last);
}

#[test]
fn checkpoints_cover_their_own_entry() {
    let mut w = World::new();
    w.ok("acme", Actor::Runtime, CommandBody::SignCheckpoint);
    let t = w.state.tenant(&id("acme")).unwrap();
    let cp = t.audit().checkpoints().last().unwrap();
    assert_eq!(cp.size, t.audit().len());
    assert_eq!(cp.root, t.audit().tree().root());
    cp.verify(&t.public_key()).unwrap();
}

#[test]
fn tampered_snapshots_are_refused() {
    let mut w = World::new();
    w.create_mission("acme", "m1", Millis::from_secs(3600));
    let snap = String::from_utf8(w.state.snapshot()).unwrap();
    assert!(EngineState::restore(snap.as_bytes()).unwrap() == w.state);
    // Loosening a frozen boundary in the snapshot is caught.
    let loosened = snap.replacen("\"required_level\":\"L3\"", "\"required_level\":\"L1\"", 1);
    assert_ne!(loosened, snap);
    assert!(EngineState::restore(loosened.as_bytes()).is_err());
    // So is any other edit, through the state digest.
    let edited = snap.replacen("Production", "Producti0n", 1);
    assert!(matches!(
        EngineState::restore(edited.as_bytes()),
        Err(aura_engine::machine::SnapshotError::DigestMismatch { .. })
    ));
}

/// A snapshot written by the version before the state digest took each
/// mission by its digest (format 2, `tests/fixtures/README.md`).
const SNAPSHOT_V2: &str = include_str!("fixtures/engine-snapshot-v2.json");

#[test]
fn format_2_snapshots_are_restored_and_checked_against_their_own_digest() {
    let state = EngineState::restore(SNAPSHOT_V2.as_bytes()).expect("a format 2 snapshot restores");
    let closed = |s: &EngineState| {
        s.tenants()
            .flat_map(|t| t.missions().values())
            .filter(|m| m.state().is_closed())
            .count()
    };
    assert!(closed(&state) > 0, "the fixture holds closed missions");
    // Written again, it is format 3, and reads back as the same state.
    let again = state.snapshot();
    assert!(String::from_utf8_lossy(&again[..40]).contains("aura.engine-snapshot/3"));
    assert!(EngineState::restore(&again).unwrap() == state);
    // For a member that reads no newer format, it is written in format 2
    // again: the same bytes that version wrote.
    let back = EngineState::snapshot_as_format_2(&again).unwrap();
    assert_eq!(&*back, SNAPSHOT_V2.as_bytes());
    let same = EngineState::snapshot_as_format_2(SNAPSHOT_V2.as_bytes()).unwrap();
    assert!(matches!(same, std::borrow::Cow::Borrowed(_)));
    // The version 2 digest still covers every mission whole.
    let edited = SNAPSHOT_V2.replacen("Simulated mission", "Simulated missi0n", 1);
    assert_ne!(edited, SNAPSHOT_V2);
    assert!(matches!(
        EngineState::restore(edited.as_bytes()),
        Err(aura_engine::machine::SnapshotError::DigestMismatch { .. })
    ));
    let unknown = SNAPSHOT_V2.replacen("aura.engine-snapshot/2", "aura.engine-snapshot/9", 1);
    assert!(matches!(
        EngineState::restore(unknown.as_bytes()),
        Err(aura_engine::machine::SnapshotError::Format(f)) if f == "aura.engine-snapshot/9"
    ));
}

/// A snapshot written in format 3 before tenants had secrets
/// (`tests/fixtures/README.md`).
const SNAPSHOT_V3: &str = include_str!("fixtures/engine-snapshot-v3.json");

#[test]
fn format_3_snapshots_from_before_secrets_restore_and_are_written_alike() {
    let state = EngineState::restore(SNAPSHOT_V3.as_bytes()).expect("it restores");
    assert!(state.tenants().all(|t| t.secrets().is_empty()));
    // The same state is written as the same bytes, digest included.
    assert_eq!(state.snapshot(), SNAPSHOT_V3.as_bytes());
}

#[test]
fn an_edit_to_a_closed_mission_in_a_snapshot_is_caught_through_its_digest() {
    let state = aura_engine::sim::state_after(
        5,
        aura_engine::sim::WorkloadShape {
            tenants: 1,
            missions: 6,
            ..Default::default()
        },
    );
    assert!(
        state
            .tenants()
            .flat_map(|t| t.missions().values())
            .all(|m| m.state().is_closed())
    );
    // Twice, so the second is written from what is kept of closed missions.
    let _ = state.snapshot();
    let snap = String::from_utf8(state.snapshot()).unwrap();
    assert!(EngineState::restore(snap.as_bytes()).unwrap() == state);
    let edited = snap.replacen("Simulated mission", "Simulated missi0n", 1);
    assert_ne!(edited, snap);
    assert!(matches!(
        EngineState::restore(edited.as_bytes()),
        Err(aura_engine::machine::SnapshotError::DigestMismatch { .. })
    ));
}

#[test]
fn bad_definitions_are_refused_with_reasons_and_change_nothing() {
    let mut w = World::new();
    let digest = w.state.digest();
    let err = w.cmd(
        "acme",
        Actor::User(id("alice")),
        CommandBody::CreateMission {
            namespace: id("prod"),
            mission: id("m1"),
            agent: id("bot"),
            definition: MissionDefinition {
                objective: "x".into(),
                tools: vec![],
                authority: AuthorityLevel::L1,
                timeout: Millis::from_secs(60),
            },
            context: MissionContext {
                inputs: json!({}),
                classification: DataClassification::Public,
                labels: BTreeMap::new(),
            },
            limits: RuntimeLimits::default(),
        },
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "invalid mission definition: a mission needs at least one tool"
    );
    assert_eq!(w.state.digest(), digest);
}
