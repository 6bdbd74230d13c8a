//! A deterministic workload generator: from a seed, a stream of commands
//! that drives tenants, agents and missions through every part of the
//! lifecycle (success, each kind of abnormal end, state writes, tokens,
//! revocations, checkpoints) plus a share of illegal moves that the engine
//! must refuse. Used by `aura simulate`, the benchmarks and the tests.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::actor::Actor;
use crate::identity::keys::KeyPair;
use crate::identity::token::{NumericBound, ParameterRules};
use crate::ids::{
    AgentId, MissionId, NamespaceId, OrgUnitId, TenantId, TokenId, ToolName, UserId, WorkerId,
};
use crate::machine::{Advance, Closing, Command, CommandBody, SigningSeed};
use crate::mission::{
    AbortReason, AuthorityLevel, DataClassification, MissionContext, MissionDefinition,
    MissionState, PlanStep, RuntimeLimits, StepOutcome,
};
use crate::policy::authority::{ApprovalRules, AuthorityConfig, AuthorityGraph};
use crate::policy::bundle::BundleSource;
use crate::policy::routing::RoutingTable;
use crate::time::{Millis, Timestamp};
use crate::tool::ToolSpec;

/// SplitMix64: tiny, fast and fully determined by its seed.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

/// Shape of a generated workload.
#[derive(Clone, Copy, Debug)]
pub struct WorkloadShape {
    pub tenants: u32,
    pub agents_per_tenant: u32,
    pub missions: u32,
    /// Percent of missions that end abnormally.
    pub abort_percent: u64,
    /// Percent of steps followed by an illegal move attempt.
    pub illegal_percent: u64,
    /// Sign a checkpoint every this many commands per tenant.
    pub checkpoint_every: u32,
}

impl Default for WorkloadShape {
    fn default() -> Self {
        WorkloadShape {
            tenants: 2,
            agents_per_tenant: 3,
            missions: 100,
            abort_percent: 25,
            illegal_percent: 5,
            checkpoint_every: 64,
        }
    }
}

pub fn tenant_id(i: usize) -> TenantId {
    TenantId::new(format!("tenant-{i}")).expect("valid id")
}

/// The simulator's agent keys: fixed per (tenant, agent) so tests can sign
/// as the simulated agents.
pub fn agent_key(tenant: usize, agent: usize) -> KeyPair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(tenant as u64).to_le_bytes());
    seed[8..16].copy_from_slice(&(agent as u64).to_le_bytes());
    seed[31] = 0xA6;
    KeyPair::from_seed(seed)
}

/// The policy bundle every simulated namespace runs: tools are allowed,
/// amounts above 1000 escalate to L2, amounts above 100000 are denied.
pub const SIM_BUNDLE: &str = r#"
@id("agents-may-use-tools")
permit(principal, action in [Aura::Action::"plan_step", Aura::Action::"call_tool"], resource);

@id("large-amounts-need-approval") @escalate @level("2")
forbid(principal, action in [Aura::Action::"plan_step", Aura::Action::"call_tool"], resource)
when { context.arguments has amount && context.arguments.amount > 1000 };

@id("no-huge-amounts")
forbid(principal, action in [Aura::Action::"plan_step", Aura::Action::"call_tool"], resource)
when { context.arguments has amount && context.arguments.amount > 100000 };
"#;

pub fn sim_bundle() -> BundleSource {
    BundleSource {
        policies: SIM_BUNDLE.into(),
        schema: None,
    }
}

/// The governance setup of a simulated namespace: the bundle as stable,
/// an authority graph (approver-a L2, approver-b L3, group `board` L4),
/// routing (confidential data stays on-prem) and three tools.
pub fn namespace_governance(ns: &NamespaceId) -> Vec<CommandBody> {
    let user = |u: &str| UserId::new(u).expect("valid id");
    let tool = |n: &str| ToolName::new(n).expect("valid id");
    let both = || BTreeSet::from(["cloud".to_owned(), "on-prem".to_owned()]);
    let mut out = vec![
        CommandBody::PutPolicyBundle {
            source: sim_bundle(),
        },
        CommandBody::SetStableBundle {
            namespace: ns.clone(),
            version: sim_bundle().version(),
        },
        CommandBody::SetAuthority {
            namespace: ns.clone(),
            config: AuthorityConfig {
                graph: AuthorityGraph {
                    users: BTreeMap::from([
                        (user("approver-a"), AuthorityLevel::L2),
                        (user("approver-b"), AuthorityLevel::L3),
                    ]),
                    groups: BTreeMap::from([("board".to_owned(), AuthorityLevel::L4)]),
                },
                rules: ApprovalRules::default(),
            },
        },
        CommandBody::SetRouting {
            namespace: ns.clone(),
            routing: RoutingTable(BTreeMap::from([
                (DataClassification::Public, both()),
                (DataClassification::Internal, both()),
                (
                    DataClassification::Confidential,
                    BTreeSet::from(["on-prem".to_owned()]),
                ),
            ])),
        },
    ];
    for (name, risk, target) in [
        ("crm.read", AuthorityLevel::L1, "cloud"),
        ("erp.post", AuthorityLevel::L2, "on-prem"),
        ("mail.send", AuthorityLevel::L1, "cloud"),
    ] {
        out.push(CommandBody::RegisterTool {
            tool: tool(name),
            spec: ToolSpec {
                timeouts: None,
                risk,
                classification: DataClassification::Confidential,
                target: target.into(),
                invocation: None,
            },
        });
    }
    out
}

/// The setup every simulated tenant gets: namespace, bundle, authority,
/// routing, tools and agents.
fn tenant_setup(t: usize, shape: &WorkloadShape, seed: [u8; 32]) -> Vec<(Actor, CommandBody)> {
    let ns = NamespaceId::new("default").expect("valid id");
    let user = |u: &str| UserId::new(u).expect("valid id");
    let mut out = vec![
        (
            Actor::Platform,
            CommandBody::CreateTenant {
                display_name: format!("Tenant {t}"),
                signing_key_seed: SigningSeed(seed).into(),
            },
        ),
        (
            Actor::Platform,
            CommandBody::CreateNamespace {
                namespace: ns.clone(),
                display_name: "Default".into(),
            },
        ),
    ];
    out.extend(
        namespace_governance(&ns)
            .into_iter()
            .map(|body| (Actor::Platform, body)),
    );
    for a in 0..shape.agents_per_tenant as usize {
        out.push((
            Actor::Platform,
            CommandBody::IssueCredential {
                agent: AgentId::new(format!("agent-{a}")).expect("valid id"),
                org_unit: OrgUnitId::new("operations").expect("valid id"),
                owner: Some(user(&format!("owner-{a}"))),
                public_key: agent_key(t, a).public(),
                not_before: Timestamp(0),
                not_after: Timestamp(i64::MAX / 2),
            },
        ));
    }
    out
}

/// What a simulated mission's plan will meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PlanKind {
    Permit,
    Escalate,
    Deny,
}

/// One command of a mission's script, with the state the mission is
/// expected to be in before it.
struct Scripted {
    before: MissionState,
    actor: Actor,
    body: CommandBody,
}

fn mission_script(
    rng: &mut SimRng,
    shape: &WorkloadShape,
    id: &MissionId,
    agent: &AgentId,
    tools: &[ToolName],
    at_hint: Timestamp,
) -> Vec<Scripted> {
    use MissionState as S;
    let kind = match rng.below(10) {
        0 => PlanKind::Deny,
        1..=3 => PlanKind::Escalate,
        _ => PlanKind::Permit,
    };
    let amount = match kind {
        PlanKind::Permit => 1 + rng.below(1000),
        PlanKind::Escalate => 1001 + rng.below(90_000),
        PlanKind::Deny => 100_001 + rng.below(1_000_000),
    };
    let agent_actor = Actor::Agent(agent.clone());
    let m = || id.clone();
    let mut script = vec![
        Scripted {
            before: S::Created,
            actor: Actor::Runtime,
            body: CommandBody::AdvanceMission {
                mission: m(),
                step: Advance::BeginPlanning,
            },
        },
        Scripted {
            before: S::Planning,
            actor: agent_actor.clone(),
            body: CommandBody::SubmitPlan {
                mission: m(),
                steps: vec![
                    PlanStep {
                        timeouts: None,
                        tool: tools[0].clone(),
                        arguments: json!({"amount": amount, "currency": "EUR"}),
                        retry: None,
                    },
                    PlanStep {
                        timeouts: None,
                        tool: tools[0].clone(),
                        arguments: json!({"limit": 10}),
                        retry: None,
                    },
                ],
            },
        },
    ];
    match kind {
        PlanKind::Deny => return script,
        PlanKind::Escalate => {
            let approve = !rng.chance(25);
            script.push(Scripted {
                before: S::WaitingApproval,
                actor: Actor::User(UserId::new("approver-b").expect("valid id")),
                body: CommandBody::DecideApproval {
                    mission: m(),
                    hold: None,
                    approve,
                    groups: BTreeSet::new(),
                    reason: if approve {
                        "within budget".into()
                    } else {
                        "not this quarter".into()
                    },
                },
            });
            if !approve {
                return script;
            }
        }
        PlanKind::Permit => {}
    }
    script.push(Scripted {
        before: S::PendingExecution,
        actor: agent_actor.clone(),
        body: CommandBody::ClaimMission {
            mission: m(),
            worker: WorkerId::new(format!("worker-{agent}")).expect("valid id"),
            lease: Millis::from_secs(60),
            token: TokenId::new(format!("claim-{id}")).expect("valid id"),
        },
    });
    script.push(Scripted {
        before: S::InProgress,
        actor: agent_actor.clone(),
        body: CommandBody::WriteStateData {
            mission: m(),
            key: "cursor".into(),
            value: Some(json!({"row": rng.below(10_000)})),
        },
    });
    script.push(Scripted {
        before: S::InProgress,
        actor: Actor::Runtime,
        body: CommandBody::IssueExecutionToken {
            mission: m(),
            token: TokenId::new(format!("tok-{id}")).expect("valid id"),
            tools: BTreeSet::from([tools[0].clone()]),
            parameters: BTreeMap::from([(
                tools[0].clone(),
                ParameterRules {
                    fixed: BTreeMap::new(),
                    bounds: BTreeMap::from([(
                        "/amount".into(),
                        NumericBound {
                            min: Some(1.0),
                            max: Some(amount as f64),
                        },
                    )]),
                },
            )]),
            expires_at: at_hint.plus(Millis::from_secs(3600)),
        },
    });
    script.push(Scripted {
        before: S::InProgress,
        actor: agent_actor.clone(),
        body: CommandBody::EvaluateToolCall {
            mission: m(),
            step: 0,
            tool: tools[0].clone(),
            arguments: json!({"amount": amount, "currency": "EUR"}),
        },
    });
    script.push(Scripted {
        before: S::InProgress,
        actor: agent_actor.clone(),
        body: CommandBody::Heartbeat {
            mission: m(),
            epoch: 1,
            lease: Millis::from_secs(60),
            progress: Some(json!({"step": 0})),
        },
    });
    script.push(Scripted {
        before: S::InProgress,
        actor: agent_actor.clone(),
        body: CommandBody::ReportStep {
            mission: m(),
            epoch: 1,
            step: 0,
            outcome: StepOutcome::Performed {
                output: json!({"posted": amount}),
            },
        },
    });
    script.push(Scripted {
        before: S::InProgress,
        actor: agent_actor.clone(),
        body: CommandBody::EvaluateToolCall {
            mission: m(),
            step: 1,
            tool: tools[0].clone(),
            arguments: json!({"limit": 10}),
        },
    });
    // The last step's report completes the mission (→ EXECUTED).
    script.push(Scripted {
        before: S::InProgress,
        actor: agent_actor,
        body: CommandBody::ReportStep {
            mission: m(),
            epoch: 1,
            step: 1,
            outcome: StepOutcome::Performed {
                output: json!({"rows": 10}),
            },
        },
    });
    script.push(Scripted {
        before: S::Executed,
        actor: Actor::Runtime,
        body: CommandBody::CloseMission {
            mission: m(),
            closing: Closing::Seal {
                result: json!({"status": "ok", "amount": amount}),
            },
        },
    });
    // Some missions end early: cancelled, or failed where failing makes sense.
    if rng.chance(shape.abort_percent) {
        let cut = rng.below(script.len() as u64) as usize;
        let before = script[cut].before;
        let reason = if matches!(before, S::Planning | S::PendingExecution | S::InProgress)
            && rng.chance(50)
        {
            AbortReason::Failed
        } else {
            AbortReason::Cancelled
        };
        if reason.may_leave(before) {
            script.truncate(cut);
            script.push(Scripted {
                before,
                actor: Actor::Runtime,
                body: CommandBody::CloseMission {
                    mission: m(),
                    closing: Closing::Abort {
                        reason,
                        note: format!("simulated {}", reason.as_str()),
                    },
                },
            });
        }
    }
    script
}

/// The state after every command of [`generate`]'s workload was applied
/// (the refused ones change nothing).
pub fn state_after(seed: u64, shape: WorkloadShape) -> crate::machine::EngineState {
    let mut state = crate::machine::EngineState::new();
    for cmd in generate(seed, shape) {
        let _ = state.apply(&cmd);
    }
    state
}

/// Generates the commands of a workload. The same seed and shape always
/// give the same commands.
pub fn generate(seed: u64, shape: WorkloadShape) -> Vec<Command> {
    let mut rng = SimRng::new(seed);
    let mut out = Vec::new();
    let mut now = Timestamp(1_790_000_000_000);
    let ns = NamespaceId::new("default").expect("valid id");
    let tools: Vec<ToolName> = ["crm.read", "erp.post", "mail.send"]
        .iter()
        .map(|t| ToolName::new(*t).expect("valid id"))
        .collect();
    let mut tick = |rng: &mut SimRng| {
        now = now.plus(Millis(1 + rng.below(50)));
        now
    };
    for t in 0..shape.tenants as usize {
        let seed = rng.bytes32();
        for (actor, body) in tenant_setup(t, &shape, seed) {
            let at = tick(&mut rng);
            out.push(Command {
                tenant: tenant_id(t),
                at,
                actor,
                body,
                precondition: None,
            });
        }
    }

    struct Live {
        tenant: usize,
        script: std::vec::IntoIter<Scripted>,
    }
    let mut live = Vec::new();
    for i in 0..shape.missions {
        let tenant = rng.below(u64::from(shape.tenants)) as usize;
        let id = MissionId::new(format!("m-{i:06}")).expect("valid id");
        let agent = AgentId::new(format!(
            "agent-{}",
            rng.below(u64::from(shape.agents_per_tenant))
        ))
        .expect("valid id");
        let at = tick(&mut rng);
        let n_tools = 1 + rng.below(tools.len() as u64) as usize;
        out.push(Command {
            tenant: tenant_id(tenant),
            at,
            actor: Actor::User(UserId::new("requester").expect("valid id")),
            body: CommandBody::CreateMission {
                namespace: ns.clone(),
                mission: id.clone(),
                agent: agent.clone(),
                definition: MissionDefinition {
                    objective: format!("Simulated mission {id}"),
                    tools: tools[..n_tools].to_vec(),
                    authority: [AuthorityLevel::L1, AuthorityLevel::L2, AuthorityLevel::L3]
                        [rng.below(3) as usize],
                    timeout: Millis::from_secs(24 * 3600),
                },
                context: MissionContext {
                    inputs: json!({"invoice": rng.below(1_000_000), "currency": "EUR"}),
                    classification: DataClassification::Internal,
                    labels: BTreeMap::new(),
                },
                limits: RuntimeLimits::default(),
            },
            precondition: None,
        });
        let script = mission_script(&mut rng, &shape, &id, &agent, &tools, at);
        live.push(Live {
            tenant,
            script: script.into_iter(),
        });
    }

    // Move missions forward in random interleavings, so that tenants'
    // chains and missions' timelines interleave.
    let mut per_tenant = vec![0u32; shape.tenants as usize];
    while !live.is_empty() {
        let pick = rng.below(live.len() as u64) as usize;
        let tenant = live[pick].tenant;
        let Some(next) = live[pick].script.next() else {
            live.swap_remove(pick);
            continue;
        };
        let mission = next.body.mission().cloned().expect("mission command");
        let at = tick(&mut rng);
        out.push(Command {
            tenant: tenant_id(tenant),
            at,
            actor: next.actor.clone(),
            body: next.body,
            precondition: None,
        });
        if rng.chance(shape.illegal_percent) {
            // An illegal move by the agent: the engine must refuse it and
            // record the attempt.
            let at = tick(&mut rng);
            let body = if next.before == MissionState::Created {
                CommandBody::ReportStep {
                    mission,
                    epoch: 1,
                    step: 0,
                    outcome: StepOutcome::Performed {
                        output: json!({"early": true}),
                    },
                }
            } else {
                CommandBody::AdvanceMission {
                    mission,
                    step: Advance::BeginPlanning,
                }
            };
            out.push(Command {
                tenant: tenant_id(tenant),
                at,
                actor: next.actor,
                body,
                precondition: None,
            });
        }
        per_tenant[tenant] += 1;
        if per_tenant[tenant].is_multiple_of(shape.checkpoint_every) {
            let at = tick(&mut rng);
            out.push(Command {
                tenant: tenant_id(tenant),
                at,
                actor: Actor::Runtime,
                body: CommandBody::SignCheckpoint,
                precondition: None,
            });
        }
    }
    for t in 0..shape.tenants as usize {
        let at = tick(&mut rng);
        out.push(Command {
            tenant: tenant_id(t),
            at,
            actor: Actor::Runtime,
            body: CommandBody::SignCheckpoint,
            precondition: None,
        });
    }
    out
}
