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
use crate::ids::{AgentId, MissionId, NamespaceId, OrgUnitId, TenantId, TokenId, ToolName};
use crate::machine::{Advance, Closing, Command, CommandBody, SigningSeed};
use crate::mission::{
    AbortReason, AuthorityLevel, DataClassification, MissionContext, MissionDefinition,
    RuntimeLimits,
};
use crate::time::{Millis, Timestamp};

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

/// Where a generated mission is headed.
#[derive(Clone, Debug)]
struct PlannedMission {
    tenant: usize,
    id: MissionId,
    agent: AgentId,
    /// Steps done so far along the success path (0 = just created).
    progress: usize,
    /// Abort after this many steps, with this reason, if set.
    abort_at: Option<(usize, AbortReason)>,
    done: bool,
}

const PATH: [Advance; 6] = [
    Advance::BeginPlanning,
    Advance::SubmitPlan,
    Advance::Approve,
    Advance::Enqueue,
    Advance::Start,
    Advance::Complete,
];

/// The states (by success-path progress) each abort reason may leave from.
fn abort_points(reason: AbortReason) -> &'static [usize] {
    match reason {
        AbortReason::Denied => &[1, 2],
        AbortReason::Rejected => &[2],
        AbortReason::Cancelled => &[0, 1, 2, 3, 4, 5],
        AbortReason::Failed => &[1, 4, 5],
        AbortReason::TimedOut => &[0, 1, 2, 3, 4, 5],
    }
}

pub fn tenant_id(i: usize) -> TenantId {
    TenantId::new(format!("tenant-{i}")).expect("valid id")
}

pub fn agent_key(tenant: usize, agent: usize) -> KeyPair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(tenant as u64).to_le_bytes());
    seed[8..16].copy_from_slice(&(agent as u64).to_le_bytes());
    seed[31] = 0xA6;
    KeyPair::from_seed(seed)
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
    let mut per_tenant_count = vec![0u32; shape.tenants as usize];
    let mut tick = |rng: &mut SimRng| {
        now = now.plus(Millis(1 + rng.below(50)));
        now
    };

    for t in 0..shape.tenants as usize {
        let tenant = tenant_id(t);
        let at = tick(&mut rng);
        out.push(Command {
            tenant: tenant.clone(),
            at,
            actor: Actor::Platform,
            body: CommandBody::CreateTenant {
                display_name: format!("Tenant {t}"),
                signing_key_seed: SigningSeed(rng.bytes32()),
            },
        });
        let at = tick(&mut rng);
        out.push(Command {
            tenant: tenant.clone(),
            at,
            actor: Actor::Platform,
            body: CommandBody::CreateNamespace {
                namespace: ns.clone(),
                display_name: "Default".into(),
            },
        });
        for a in 0..shape.agents_per_tenant as usize {
            let at = tick(&mut rng);
            out.push(Command {
                tenant: tenant.clone(),
                at,
                actor: Actor::Platform,
                body: CommandBody::IssueCredential {
                    agent: AgentId::new(format!("agent-{a}")).expect("valid id"),
                    org_unit: OrgUnitId::new("operations").expect("valid id"),
                    public_key: agent_key(t, a).public(),
                    not_before: Timestamp(0),
                    not_after: Timestamp(i64::MAX / 2),
                },
            });
        }
    }

    let mut missions: Vec<PlannedMission> = (0..shape.missions)
        .map(|i| {
            let abort_at = rng.chance(shape.abort_percent).then(|| {
                let reason = match rng.below(4) {
                    0 => AbortReason::Denied,
                    1 => AbortReason::Rejected,
                    2 => AbortReason::Cancelled,
                    _ => AbortReason::Failed,
                };
                let points = abort_points(reason);
                (points[rng.below(points.len() as u64) as usize], reason)
            });
            PlannedMission {
                tenant: rng.below(u64::from(shape.tenants)) as usize,
                id: MissionId::new(format!("m-{i:06}")).expect("valid id"),
                agent: AgentId::new(format!(
                    "agent-{}",
                    rng.below(u64::from(shape.agents_per_tenant))
                ))
                .expect("valid id"),
                progress: 0,
                abort_at,
                done: false,
            }
        })
        .collect();

    // Create every mission, then move them forward in random interleavings
    // so that tenants' chains and missions' timelines interleave.
    for m in &missions {
        let at = tick(&mut rng);
        let n_tools = 1 + rng.below(tools.len() as u64) as usize;
        out.push(Command {
            tenant: tenant_id(m.tenant),
            at,
            actor: Actor::User(crate::ids::UserId::new("requester").expect("valid id")),
            body: CommandBody::CreateMission {
                namespace: ns.clone(),
                mission: m.id.clone(),
                agent: m.agent.clone(),
                definition: MissionDefinition {
                    objective: format!("Simulated mission {}", m.id),
                    tools: tools[..n_tools].to_vec(),
                    authority: [
                        AuthorityLevel::L1,
                        AuthorityLevel::L2,
                        AuthorityLevel::L3,
                        AuthorityLevel::L4,
                    ][rng.below(4) as usize],
                    timeout: Millis::from_secs(24 * 3600),
                },
                context: MissionContext {
                    inputs: json!({"invoice": rng.below(1_000_000), "currency": "EUR"}),
                    classification: DataClassification::Internal,
                    labels: BTreeMap::new(),
                },
                limits: RuntimeLimits::default(),
            },
        });
    }

    let mut open: Vec<usize> = (0..missions.len()).collect();
    while !open.is_empty() {
        let pick = rng.below(open.len() as u64) as usize;
        let mi = open[pick];
        let m = &mut missions[mi];
        let tenant = tenant_id(m.tenant);
        let agent_actor = Actor::Agent(m.agent.clone());
        let at = tick(&mut rng);
        let body = match m.abort_at {
            Some((point, reason)) if point == m.progress => {
                m.done = true;
                CommandBody::CloseMission {
                    mission: m.id.clone(),
                    closing: Closing::Abort {
                        reason,
                        note: format!("simulated {}", reason.as_str()),
                    },
                }
            }
            _ if m.progress == PATH.len() => {
                m.done = true;
                CommandBody::CloseMission {
                    mission: m.id.clone(),
                    closing: Closing::Seal {
                        result: json!({"status": "ok", "steps": 3}),
                    },
                }
            }
            _ => {
                let step = PATH[m.progress];
                m.progress += 1;
                CommandBody::AdvanceMission {
                    mission: m.id.clone(),
                    step,
                }
            }
        };
        let actor = if matches!(body, CommandBody::AdvanceMission { .. }) && m.progress >= 5 {
            agent_actor.clone()
        } else {
            Actor::Runtime
        };
        out.push(Command {
            tenant: tenant.clone(),
            at,
            actor,
            body,
        });
        // Side traffic while the mission is live.
        if !m.done && m.progress == 5 {
            let at = tick(&mut rng);
            out.push(Command {
                tenant: tenant.clone(),
                at,
                actor: agent_actor.clone(),
                body: CommandBody::WriteStateData {
                    mission: m.id.clone(),
                    key: "cursor".into(),
                    value: Some(json!({"row": rng.below(10_000)})),
                },
            });
            let at = tick(&mut rng);
            out.push(Command {
                tenant: tenant.clone(),
                at,
                actor: Actor::Runtime,
                body: CommandBody::IssueExecutionToken {
                    mission: m.id.clone(),
                    token: TokenId::new(format!("tok-{}", m.id)).expect("valid id"),
                    tools: BTreeSet::from([tools[0].clone()]),
                    parameters: BTreeMap::from([(
                        tools[0].clone(),
                        ParameterRules {
                            fixed: BTreeMap::new(),
                            bounds: BTreeMap::from([(
                                "/limit".into(),
                                NumericBound {
                                    min: Some(1.0),
                                    max: Some(100.0),
                                },
                            )]),
                        },
                    )]),
                    expires_at: at.plus(Millis::from_secs(600)),
                },
            });
        }
        if rng.chance(shape.illegal_percent) {
            // An illegal move: the engine must refuse it, and record it.
            let at = tick(&mut rng);
            out.push(Command {
                tenant: tenant.clone(),
                at,
                actor: agent_actor,
                body: CommandBody::AdvanceMission {
                    mission: m.id.clone(),
                    step: PATH[(m.progress + 2) % PATH.len()],
                },
            });
        }
        if m.done {
            open.swap_remove(pick);
        }
        per_tenant_count[missions[mi].tenant] += 1;
        if per_tenant_count[missions[mi].tenant].is_multiple_of(shape.checkpoint_every) {
            let at = tick(&mut rng);
            out.push(Command {
                tenant,
                at,
                actor: Actor::Runtime,
                body: CommandBody::SignCheckpoint,
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
        });
    }
    out
}
