//! Property tests of the state machine over random command sequences.

use std::collections::{BTreeMap, BTreeSet};

use aura_engine::Actor;
use aura_engine::identity::{KeyPair, NumericBound, ParameterRules, Retirement};
use aura_engine::ids::{
    AgentId, MissionId, NamespaceId, OrgUnitId, TenantId, TokenId, ToolName, UserId, WorkerId,
};
use aura_engine::machine::{Advance, Closing, Command, CommandBody, EngineState, SigningSeed};
use aura_engine::mission::{
    AbortReason, AuthorityLevel, DataClassification, MissionContext, MissionDefinition,
    MissionState, PlanStep, RuntimeLimits, StepOutcome, StepTimeout, StepTimeouts,
};
use aura_engine::time::{Millis, Timestamp};
use proptest::prelude::*;
use serde_json::json;

#[derive(Clone, Debug)]
enum Op {
    CreateTenant(u8),
    CreateNamespace(u8),
    IssueCredential {
        tenant: u8,
        agent: u8,
        valid_for: u8,
    },
    Revoke {
        tenant: u8,
        serial: u8,
    },
    CreateMission {
        tenant: u8,
        mission: u8,
        agent: u8,
        valid: bool,
        timeout_s: u16,
    },
    Advance {
        tenant: u8,
        mission: u8,
        step: u8,
        legal: bool,
        as_agent: Option<u8>,
    },
    Close {
        tenant: u8,
        mission: u8,
        how: u8,
    },
    Write {
        tenant: u8,
        mission: u8,
        key: u8,
        delete: bool,
    },
    Token {
        tenant: u8,
        mission: u8,
        tool: u8,
        ttl_s: u16,
    },
    Checkpoint(u8),
    /// The tenant's signing key rotates to the key of `seed`.
    Rotate {
        tenant: u8,
        seed: u8,
        compromised: bool,
    },
    /// The simulator's bundle, authority, routing and tools.
    Governance(u8),
    Expire {
        tenant: u8,
        mission: u8,
    },
    /// The runtime says the mission's next step overran a timeout.
    TimeOut {
        tenant: u8,
        mission: u8,
        start_to_close: bool,
    },
    /// The runtime carries the mission into a new run of its record.
    Continue {
        tenant: u8,
        mission: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..3u8).prop_map(Op::CreateTenant),
        1 => (0..3u8).prop_map(Op::CreateNamespace),
        1 => (0..3u8, 0..3u8, 0..3u8).prop_map(|(tenant, agent, valid_for)| Op::IssueCredential { tenant, agent, valid_for }),
        1 => (0..3u8, 0..5u8).prop_map(|(tenant, serial)| Op::Revoke { tenant, serial }),
        1 => (0..3u8, 0..3u8, 0..3u8, prop::bool::weighted(0.85), 1..30000u16).prop_map(
            |(tenant, mission, agent, valid, timeout_s)| Op::CreateMission { tenant, mission, agent, valid, timeout_s }
        ),
        6 => (0..3u8, 0..3u8, 0..6u8, prop::bool::weighted(0.85), prop::option::weighted(0.2, 0..3u8))
            .prop_map(|(tenant, mission, step, legal, as_agent)| Op::Advance { tenant, mission, step, legal, as_agent }),
        1 => (0..3u8, 0..3u8, 0..6u8).prop_map(|(tenant, mission, how)| Op::Close { tenant, mission, how }),
        1 => (0..3u8, 0..3u8, 0..3u8, any::<bool>()).prop_map(|(tenant, mission, key, delete)| Op::Write { tenant, mission, key, delete }),
        1 => (0..3u8, 0..3u8, 0..4u8, 0..4000u16).prop_map(|(tenant, mission, tool, ttl_s)| Op::Token { tenant, mission, tool, ttl_s }),
        // Checkpoints and key rotations share a slot, so the other ops
        // (and the runs that continue as new) keep their frequency.
        1 => prop_oneof![
            (0..3u8).prop_map(Op::Checkpoint),
            (0..3u8, 0..4u8, any::<bool>()).prop_map(|(tenant, seed, compromised)| Op::Rotate { tenant, seed, compromised }),
        ],
        1 => (0..3u8, 0..3u8).prop_map(|(tenant, mission)| Op::Expire { tenant, mission }),
        1 => (0..3u8, 0..3u8, any::<bool>()).prop_map(|(tenant, mission, start_to_close)| Op::TimeOut { tenant, mission, start_to_close }),
        1 => (0..3u8, 0..3u8).prop_map(|(tenant, mission)| Op::Continue { tenant, mission }),
    ]
}

fn tenant(i: u8) -> TenantId {
    TenantId::new(format!("t{i}")).unwrap()
}
fn mission(i: u8) -> MissionId {
    MissionId::new(format!("m{i}")).unwrap()
}
fn agent(i: u8) -> AgentId {
    AgentId::new(format!("a{i}")).unwrap()
}
/// The simulator's registered tools, plus one that is never registered.
fn tool(i: u8) -> ToolName {
    ToolName::new(["crm.read", "erp.post", "mail.send", "unregistered.tool"][i as usize % 4])
        .unwrap()
}
fn ns() -> NamespaceId {
    NamespaceId::new("main").unwrap()
}

const STEPS: [Advance; 1] = [Advance::BeginPlanning];

/// Amounts that the simulator's bundle permits, escalates and denies.
const AMOUNTS: [u64; 3] = [10, 5_000, 500_000];
const APPROVERS: [&str; 3] = ["approver-a", "approver-b", "requester"];

fn to_command(state: &EngineState, op: &Op, at: Timestamp, op_index: usize) -> Command {
    let runtime = Actor::Runtime;
    let (t, actor, body) = match op.clone() {
        Op::CreateTenant(t) => (
            t,
            Actor::Platform,
            CommandBody::CreateTenant {
                display_name: format!("Tenant {t}"),
                signing_key_seed: SigningSeed([t + 1; 32]).into(),
            },
        ),
        Op::CreateNamespace(t) => (
            t,
            Actor::User(UserId::new("admin").unwrap()),
            CommandBody::CreateNamespace {
                namespace: ns(),
                display_name: "Main".into(),
            },
        ),
        Op::IssueCredential {
            tenant: t,
            agent: a,
            valid_for,
        } => (
            t,
            Actor::Platform,
            CommandBody::IssueCredential {
                agent: agent(a),
                org_unit: OrgUnitId::new(if valid_for == 2 { "other" } else { "ops" }).unwrap(),
                owner: Some(UserId::new("approver-a").unwrap()),
                public_key: KeyPair::from_seed([a + 10; 32]).public(),
                not_before: Timestamp(0),
                not_after: match valid_for {
                    0 => Timestamp(0),
                    _ => Timestamp(i64::MAX / 4),
                },
            },
        ),
        Op::Revoke { tenant: t, serial } => (
            t,
            runtime,
            CommandBody::RevokeCredential {
                serial: u64::from(serial),
                reason: "rotated".into(),
            },
        ),
        Op::CreateMission {
            tenant: t,
            mission: m,
            agent: a,
            valid,
            timeout_s,
        } => (
            t,
            Actor::User(UserId::new("requester").unwrap()),
            CommandBody::CreateMission {
                namespace: ns(),
                mission: mission(m),
                agent: agent(a),
                definition: MissionDefinition {
                    objective: if valid {
                        format!("objective {m}")
                    } else {
                        String::new()
                    },
                    tools: vec![tool(0), tool(1), tool(2)],
                    authority: AuthorityLevel::L2,
                    timeout: Millis::from_secs(u64::from(timeout_s)),
                },
                context: MissionContext {
                    inputs: json!({"n": m, "op": op_index}),
                    classification: DataClassification::Confidential,
                    labels: BTreeMap::new(),
                },
                // Short runs, so that random sequences continue missions.
                limits: RuntimeLimits {
                    max_run_entries: 8,
                    ..RuntimeLimits::default()
                },
            },
        ),
        Op::Advance {
            tenant: t,
            mission: m,
            step,
            legal,
            as_agent,
        } => {
            // Mostly take the mission's next governed move, so that random
            // runs reach deep states; otherwise any plain step at all.
            let record = state
                .tenant(&tenant(t))
                .and_then(|ts| ts.missions().get(&mission(m)));
            let current = record.map(|ms| ms.state());
            let actor = as_agent.map_or(runtime.clone(), |a| Actor::Agent(agent(a)));
            let mid = mission(m);
            let body = match current {
                Some(MissionState::Created) if legal => CommandBody::AdvanceMission {
                    mission: mid,
                    step: Advance::BeginPlanning,
                },
                Some(MissionState::Planning) if legal => CommandBody::SubmitPlan {
                    mission: mid,
                    steps: vec![PlanStep {
                        // Half the plans time their steps out quickly, so
                        // stalls, escalations and their decisions happen.
                        timeouts: op_index.is_multiple_of(2).then(|| StepTimeouts {
                            schedule_to_start_ms: Some(30_000),
                            start_to_close_ms: Some(10_000),
                            heartbeat_ms: Some(300_000),
                            max_stalls: 1 + (op_index % 3) as u32,
                        }),
                        // Mostly the on-prem tool (which confidential data
                        // may reach), sometimes a cloud tool (which it may not).
                        tool: tool(if step < 4 { 1 } else { step - 4 }),
                        arguments: json!({"amount": AMOUNTS[step as usize % 3]}),
                        retry: None,
                    }],
                },
                Some(MissionState::WaitingApproval) if legal => {
                    return Command {
                        tenant: tenant(t),
                        at,
                        actor: Actor::User(UserId::new(APPROVERS[step as usize % 3]).unwrap()),
                        body: CommandBody::DecideApproval {
                            mission: mid,
                            hold: None,
                            approve: step != 4,
                            groups: BTreeSet::new(),
                            reason: "reviewed".into(),
                        },
                        precondition: None,
                    };
                }
                Some(MissionState::PendingExecution) if legal => CommandBody::ClaimMission {
                    mission: mid,
                    worker: WorkerId::new("w1").unwrap(),
                    lease: Millis::from_secs(600),
                    token: TokenId::new(format!("claim-{op_index}")).unwrap(),
                },
                // A lease that ran out is taken over by another claim.
                Some(MissionState::InProgress | MissionState::Executed)
                    if legal && record.is_some_and(|r| r.execution().is_free_at(at)) =>
                {
                    CommandBody::ClaimMission {
                        mission: mid,
                        worker: WorkerId::new("w2").unwrap(),
                        lease: Millis::from_secs(600),
                        token: TokenId::new(format!("claim-{op_index}")).unwrap(),
                    }
                }
                Some(MissionState::InProgress) if legal => {
                    // The plan's next step: reported once policy permitted
                    // it, otherwise evaluated with its planned arguments or
                    // (step 1) an amount that escalates.
                    let r = record.expect("an executing mission exists");
                    let e = r.execution();
                    let next = e.next_step();
                    let planned =
                        &r.plan().expect("executing missions have plans").steps[next as usize];
                    let permitted =
                        r.calls()
                            .iter()
                            .rev()
                            .find(|d| d.step == next)
                            .is_some_and(|d| {
                                d.decision.decision == aura_engine::policy::Decision::Permit
                            });
                    if permitted && step != 1 {
                        CommandBody::ReportStep {
                            mission: mid,
                            epoch: e.epoch(),
                            step: next,
                            outcome: StepOutcome::Performed {
                                output: json!({"op": op_index}),
                            },
                        }
                    } else {
                        CommandBody::EvaluateToolCall {
                            mission: mid,
                            step: next,
                            tool: planned.tool.clone(),
                            arguments: if step == 1 {
                                json!({"amount": AMOUNTS[1]})
                            } else {
                                planned.arguments.clone()
                            },
                        }
                    }
                }
                Some(MissionState::Executed) if legal => CommandBody::CloseMission {
                    mission: mid,
                    closing: Closing::Seal {
                        result: json!({"ok": true, "op": op_index}),
                    },
                },
                _ => CommandBody::AdvanceMission {
                    mission: mid,
                    step: STEPS[step as usize % STEPS.len()],
                },
            };
            (t, actor, body)
        }
        Op::Close {
            tenant: t,
            mission: m,
            how,
        } => {
            // From EXECUTED only sealing is legal; take it most of the time.
            let executed = state
                .tenant(&tenant(t))
                .and_then(|ts| ts.missions().get(&mission(m)))
                .is_some_and(|ms| ms.state() == aura_engine::mission::MissionState::Executed);
            let how = if executed && how < 5 { 0 } else { how };
            (
                t,
                runtime,
                CommandBody::CloseMission {
                    mission: mission(m),
                    closing: match how {
                        0 => Closing::Seal {
                            result: json!({"ok": true, "op": op_index}),
                        },
                        1 => Closing::Abort {
                            reason: AbortReason::Denied,
                            note: "policy".into(),
                        },
                        2 => Closing::Abort {
                            reason: AbortReason::Rejected,
                            note: "no".into(),
                        },
                        3 => Closing::Abort {
                            reason: AbortReason::Cancelled,
                            note: "stop".into(),
                        },
                        4 => Closing::Abort {
                            reason: AbortReason::TimedOut,
                            note: "late".into(),
                        },
                        _ => Closing::Abort {
                            reason: AbortReason::Failed,
                            note: "broke".into(),
                        },
                    },
                },
            )
        }
        Op::Write {
            tenant: t,
            mission: m,
            key,
            delete,
        } => (
            t,
            runtime,
            CommandBody::WriteStateData {
                mission: mission(m),
                key: format!("k{key}"),
                value: (!delete).then(|| json!({"op": op_index})),
            },
        ),
        Op::Token {
            tenant: t,
            mission: m,
            tool: tl,
            ttl_s,
        } => (
            t,
            runtime,
            CommandBody::IssueExecutionToken {
                mission: mission(m),
                token: TokenId::new(format!("tok{op_index}")).unwrap(),
                tools: BTreeSet::from([tool(tl)]),
                parameters: BTreeMap::from([(
                    tool(tl),
                    ParameterRules {
                        fixed: BTreeMap::new(),
                        bounds: BTreeMap::from([(
                            "/n".into(),
                            NumericBound {
                                min: Some(0.0),
                                max: Some(9.0),
                            },
                        )]),
                    },
                )]),
                expires_at: at.plus(Millis::from_secs(u64::from(ttl_s))),
            },
        ),
        Op::Checkpoint(t) => (t, runtime, CommandBody::SignCheckpoint),
        // Few seeds, so some rotations reuse a key and are refused.
        Op::Rotate {
            tenant: t,
            seed,
            compromised,
        } => (
            t,
            Actor::Platform,
            CommandBody::RotateSigningKey {
                seed: SigningSeed([100 + seed; 32]).into(),
                retirement: if compromised {
                    Retirement::Compromised
                } else {
                    Retirement::Scheduled
                },
                key: None,
            },
        ),
        Op::Continue {
            tenant: t,
            mission: m,
        } => (
            t,
            runtime,
            CommandBody::ContinueMission {
                mission: mission(m),
            },
        ),
        Op::Expire {
            tenant: t,
            mission: m,
        } => {
            // The plan's approval, or the next step's hold while executing.
            let hold = state
                .tenant(&tenant(t))
                .and_then(|ts| ts.missions().get(&mission(m)))
                .filter(|r| {
                    matches!(
                        r.state(),
                        MissionState::PendingExecution | MissionState::InProgress
                    )
                })
                .map(|r| r.execution().next_step());
            (
                t,
                runtime,
                CommandBody::ExpireApproval {
                    mission: mission(m),
                    hold,
                },
            )
        }
        Op::TimeOut {
            tenant: t,
            mission: m,
            start_to_close,
        } => {
            // Executing missions are few at any moment: aim at one.
            let executing = state.tenant(&tenant(t)).and_then(|ts| {
                ts.missions().values().find(|r| {
                    r.state() == MissionState::InProgress
                        || (!start_to_close && r.state() == MissionState::PendingExecution)
                })
            });
            let (target, step, epoch) = executing.map_or((mission(m), 0, 0), |r| {
                (
                    r.id().clone(),
                    r.execution().next_step(),
                    r.execution().epoch(),
                )
            });
            (
                t,
                runtime,
                CommandBody::TimeOutStep {
                    mission: target,
                    step,
                    timeout: if start_to_close {
                        StepTimeout::StartToClose
                    } else {
                        StepTimeout::ScheduleToStart
                    },
                    epoch,
                },
            )
        }
        Op::Governance(_) => unreachable!("expanded by timed_ops"),
    };
    Command {
        tenant: tenant(t),
        at,
        actor,
        body,
        precondition: None,
    }
}

/// Ops, each with the time step before it; time sometimes jumps far enough
/// for deadlines to pass.
fn scenario() -> impl Strategy<Value = Vec<(Op, u32)>> {
    prop::collection::vec(
        (op(), prop_oneof![30 => 0..2_000u32, 1 => 0..4_000_000u32]),
        1..200,
    )
}

/// Fixed setup so random ops hit live objects most of the time.
fn preamble() -> Vec<Op> {
    let mut ops = Vec::new();
    for t in 0..2 {
        ops.push(Op::CreateTenant(t));
        ops.push(Op::CreateNamespace(t));
        ops.push(Op::Governance(t));
        for a in 0..2 {
            ops.push(Op::IssueCredential {
                tenant: t,
                agent: a,
                valid_for: 1,
            });
        }
    }
    ops
}

/// The preamble and the random ops, each with its time step.
fn timed_ops(ops: &[(Op, u32)]) -> Vec<(Op, u32)> {
    preamble()
        .into_iter()
        .map(|op| (op, 1))
        .chain(ops.iter().cloned())
        .collect()
}

/// Turns an op into commands: governance setup is several commands.
fn commands_for(state: &EngineState, op: &Op, at: Timestamp, op_index: usize) -> Vec<Command> {
    match op {
        Op::Governance(t) => aura_engine::sim::namespace_governance(&ns())
            .into_iter()
            .map(|body| Command {
                tenant: tenant(*t),
                at,
                actor: Actor::Platform,
                body,
                precondition: None,
            })
            .collect(),
        op => vec![to_command(state, op, at, op_index)],
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(192),
        .. ProptestConfig::default()
    })]

    #[test]
    fn random_command_sequences_keep_every_invariant(ops in scenario()) {
        let mut cmds = Vec::new();
        let mut at = Timestamp(1_800_000_000_000);
        let mut state = EngineState::new();
        let mut closed: BTreeMap<(TenantId, MissionId), (aura_engine::mission::SealedOutcome, usize)> = BTreeMap::new();
        let mut frozen: BTreeMap<(TenantId, MissionId), (aura_engine::Digest, aura_engine::Digest)> = BTreeMap::new();
        for (i, (op, dt)) in timed_ops(&ops).iter().enumerate() {
          at = at.plus(Millis(u64::from(*dt)));
          for cmd in &commands_for(&state, op, at, i) {
            cmds.push(cmd.clone());
            let before = state.clone();
            let result = state.apply(cmd);
            if let Err(rejection) = &result {
                if rejection.is_audited() {
                    // Only the rejection record was added.
                    let (b, a) = (before.tenant(&cmd.tenant).unwrap(), state.tenant(&cmd.tenant).unwrap());
                    prop_assert_eq!(a.audit().len(), b.audit().len() + 1);
                    prop_assert_eq!(a.missions(), b.missions());
                    prop_assert_eq!(a.credentials(), b.credentials());
                    prop_assert_eq!(a.tokens(), b.tokens());
                } else {
                    prop_assert_eq!(state.digest(), before.digest(), "refused command changed state: {:?}", rejection);
                }
            } else if let Some(t) = state.tenant(&cmd.tenant) {
                // Every applied command appended exactly one audit entry.
                let before_len = before.tenant(&cmd.tenant).map_or(0, |b| b.audit().len());
                prop_assert_eq!(t.audit().len(), before_len + 1);
            }
            if let Err(v) = state.check_invariants() {
                return Err(TestCaseError::fail(v.to_string()));
            }
            for t in state.tenants() {
                for (id, m) in t.missions() {
                    let key = (t.id().clone(), id.clone());
                    let digests = (m.context().digest(), m.boundary().digest());
                    let first = frozen.entry(key.clone()).or_insert(digests);
                    prop_assert_eq!(*first, digests, "frozen digest changed");
                    if let Some(outcome) = m.outcome() {
                        let entry = closed.entry(key).or_insert((outcome.clone(), m.timeline().len()));
                        prop_assert_eq!(&entry.0, outcome, "closed outcome changed");
                        prop_assert_eq!(entry.1, m.timeline().len(), "closed mission moved");
                        prop_assert_eq!(m.state(), aura_engine::mission::MissionState::Closed);
                    }
                }
            }
          }
        }

        // Replay gives the same digest, and so does a snapshot round trip
        // followed by more commands.
        let mut replay = EngineState::new();
        for cmd in &cmds {
            let _ = replay.apply(cmd);
        }
        prop_assert_eq!(replay.digest(), state.digest());

        // Every mission is derived data of its audit record.
        for t in state.tenants() {
            let checked = aura_engine::machine::fold::verify_replays(t);
            prop_assert!(checked.is_ok(), "{:?}", checked);
        }

        let half = cmds.len() / 2;
        let mut first = EngineState::new();
        for cmd in &cmds[..half] {
            let _ = first.apply(cmd);
        }
        let mut restored = EngineState::restore(&first.snapshot()).unwrap();
        prop_assert_eq!(restored.digest(), first.digest());
        // Derived indexes (the open missions among them) are rebuilt.
        prop_assert!(restored == first);
        if let Err(v) = restored.check_invariants() {
            return Err(TestCaseError::fail(v.to_string()));
        }
        for cmd in &cmds[half..] {
            let _ = restored.apply(cmd);
        }
        prop_assert_eq!(restored.digest(), state.digest());
        prop_assert!(restored == state);
    }
}

/// Guards the generator: random runs must actually reach every state and
/// every kind of ending, or the properties above prove little.
#[test]
fn random_runs_reach_every_state_and_ending() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut states = BTreeSet::new();
    let mut endings = BTreeSet::new();
    let mut stalls = 0;
    let mut continued = 0;
    let mut rotations = 0;

    for _ in 0..400 {
        let ops = scenario().new_tree(&mut runner).unwrap().current();
        let mut state = EngineState::new();
        let mut at = Timestamp(1_800_000_000_000);
        for (i, (op, dt)) in timed_ops(&ops).iter().enumerate() {
            at = at.plus(Millis(u64::from(*dt)));
            for cmd in commands_for(&state, op, at, i) {
                let _ = state.apply(&cmd);
            }
        }
        for t in state.tenants() {
            for m in t.missions().values() {
                for c in m.timeline() {
                    states.insert(c.to);
                }
                if let Some(o) = m.outcome() {
                    endings.insert(format!("{:?}", o.outcome().kind));
                }
            }
            for r in t.audit().records() {
                stalls += usize::from(r.entry.kind == "execution.step_timed_out");
                continued += usize::from(r.entry.kind == "mission.continue_as_new");
                rotations += usize::from(r.entry.kind == "tenant.signing_key_rotate");
            }
        }
    }
    assert!(stalls > 0, "no step ever timed out");
    assert!(continued > 0, "no mission ever continued as new");
    assert!(rotations > 0, "no signing key ever rotated");
    assert_eq!(states.len(), 7, "states reached: {states:?}");
    assert_eq!(endings.len(), 6, "endings reached: {endings:?}");
}
