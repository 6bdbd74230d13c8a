//! A small in-memory world for engine tests: two tenants with the
//! simulator's governance setup (bundle, authority, routing, tools) and an
//! agent `bot` owned by `bob`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use aura_engine::Actor;
use aura_engine::identity::KeyPair;
use aura_engine::ids::MissionId;
use aura_engine::machine::{
    Advance, Command, CommandBody, EngineState, Event, Precondition, Rejection, SigningSeed,
    TenantState,
};
use aura_engine::mission::{
    AuthorityLevel, DataClassification, Mission, MissionContext, MissionDefinition, MissionState,
    PlanStep, RuntimeLimits,
};
use aura_engine::time::{Millis, Timestamp};
use serde_json::json;

pub const T0: Timestamp = Timestamp(1_800_000_000_000);

pub fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

/// A credential for agent `bot` (org unit `ops`, owned by `bob`).
pub fn bot_credential() -> CommandBody {
    CommandBody::IssueCredential {
        agent: id("bot"),
        org_unit: id("ops"),
        owner: Some(id("bob")),
        public_key: KeyPair::from_seed([3; 32]).public(),
        not_before: Timestamp(0),
        not_after: Timestamp(i64::MAX / 2),
    }
}

pub struct World {
    pub state: EngineState,
    pub now: Timestamp,
}

/// Every test's missions must be derived data of their audit records: at
/// the end of a test that passed, each one rebuilt from its record has
/// the live mission's digest.
impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        for t in self.state.tenants() {
            if let Err(e) = aura_engine::machine::fold::verify_replays(t) {
                panic!("tenant {}: {e}", t.id());
            }
        }
    }
}

impl World {
    pub fn new() -> World {
        let mut w = World {
            state: EngineState::new(),
            now: T0,
        };
        for t in ["acme", "globex"] {
            w.ok(
                t,
                Actor::Platform,
                CommandBody::CreateTenant {
                    display_name: t.to_uppercase(),
                    signing_key_seed: SigningSeed([t.len() as u8; 32]).into(),
                },
            );
            w.ok(
                t,
                Actor::Platform,
                CommandBody::CreateNamespace {
                    namespace: id("prod"),
                    display_name: "Production".into(),
                },
            );
            for body in aura_engine::sim::namespace_governance(&id("prod")) {
                w.ok(t, Actor::Platform, body);
            }
            w.ok(t, Actor::Platform, bot_credential());
        }
        w
    }

    pub fn cmd(
        &mut self,
        tenant: &str,
        actor: Actor,
        body: CommandBody,
    ) -> Result<Vec<Event>, Rejection> {
        self.cmd_if(tenant, actor, body, None)
    }

    pub fn cmd_if(
        &mut self,
        tenant: &str,
        actor: Actor,
        body: CommandBody,
        precondition: Option<Precondition>,
    ) -> Result<Vec<Event>, Rejection> {
        self.now = self.now.plus(Millis(10));
        self.state.apply(&Command {
            tenant: id(tenant),
            at: self.now,
            actor,
            body,
            precondition,
        })
    }

    pub fn ok(&mut self, tenant: &str, actor: Actor, body: CommandBody) -> Vec<Event> {
        self.cmd(tenant, actor, body).unwrap()
    }

    pub fn create_mission(&mut self, tenant: &str, mission: &str, timeout: Millis) {
        self.create_mission_with(tenant, mission, timeout, RuntimeLimits::default());
    }

    pub fn create_mission_with(
        &mut self,
        tenant: &str,
        mission: &str,
        timeout: Millis,
        limits: RuntimeLimits,
    ) {
        self.ok(
            tenant,
            Actor::User(id("alice")),
            CommandBody::CreateMission {
                namespace: id("prod"),
                mission: id(mission),
                agent: id("bot"),
                definition: MissionDefinition {
                    objective: "Pay supplier invoices".into(),
                    tools: vec![id("crm.read"), id("erp.post")],
                    authority: AuthorityLevel::L3,
                    timeout,
                },
                context: MissionContext {
                    inputs: json!({"batch": 42}),
                    classification: DataClassification::Confidential,
                    labels: BTreeMap::new(),
                },
                limits,
            },
        );
    }

    pub fn advance(
        &mut self,
        tenant: &str,
        mission: &str,
        step: Advance,
    ) -> Result<Vec<Event>, Rejection> {
        self.cmd(
            tenant,
            Actor::Runtime,
            CommandBody::AdvanceMission {
                mission: id(mission),
                step,
            },
        )
    }

    pub fn submit_plan(
        &mut self,
        tenant: &str,
        mission: &str,
        amount: u64,
    ) -> Result<Vec<Event>, Rejection> {
        self.cmd(
            tenant,
            Actor::Agent(id("bot")),
            CommandBody::SubmitPlan {
                mission: id(mission),
                steps: vec![PlanStep {
                    timeouts: None,
                    tool: id("erp.post"),
                    arguments: json!({"amount": amount}),
                    retry: None,
                }],
            },
        )
    }

    /// A small amount: policy permits the plan outright.
    pub fn drive_to_in_progress(&mut self, tenant: &str, mission: &str) {
        self.advance(tenant, mission, Advance::BeginPlanning)
            .unwrap();
        self.submit_plan(tenant, mission, 10).unwrap();
        assert_eq!(
            self.mission_state(tenant, mission),
            MissionState::PendingExecution
        );
        self.claim(tenant, mission, "w1", Millis::from_secs(30))
            .unwrap();
    }

    /// `bot` asks policy about step `step`'s call of `tool` on mission
    /// `mission` of acme.
    pub fn evaluate(
        &mut self,
        mission: &str,
        step: u32,
        tool: &str,
        arguments: serde_json::Value,
    ) -> Result<Vec<Event>, Rejection> {
        self.cmd(
            "acme",
            Actor::Agent(id("bot")),
            CommandBody::EvaluateToolCall {
                mission: id(mission),
                step,
                tool: id(tool),
                arguments,
            },
        )
    }

    /// `worker` claims the mission with a lease of `lease`; its token is
    /// named after the worker and the epoch it gets.
    pub fn claim(
        &mut self,
        tenant: &str,
        mission: &str,
        worker: &str,
        lease: Millis,
    ) -> Result<Vec<Event>, Rejection> {
        let epoch = self.state.tenant(&id(tenant)).unwrap().missions()[&id::<MissionId>(mission)]
            .execution()
            .epoch()
            + 1;
        self.cmd(
            tenant,
            Actor::Agent(id("bot")),
            CommandBody::ClaimMission {
                mission: id(mission),
                worker: id(worker),
                lease,
                token: id(&format!("{mission}-{worker}-{epoch}")),
            },
        )
    }

    /// `actor` cancels the mission.
    pub fn cancel(
        &mut self,
        tenant: &str,
        actor: Actor,
        mission: &str,
    ) -> Result<Vec<Event>, Rejection> {
        self.cmd(
            tenant,
            actor,
            CommandBody::CloseMission {
                mission: id(mission),
                closing: aura_engine::machine::Closing::Abort {
                    reason: aura_engine::mission::AbortReason::Cancelled,
                    note: "not needed".into(),
                },
            },
        )
    }

    /// The ids of the acme missions that one of the engine's indexes
    /// lists, in its order.
    pub fn listed<'a, I: Iterator<Item = &'a Mission>>(
        &'a self,
        index: impl FnOnce(&'a TenantState) -> I,
    ) -> Vec<String> {
        index(self.state.tenant(&id("acme")).unwrap())
            .map(|m| m.id().to_string())
            .collect()
    }

    /// acme's mission m1, the one most tests drive.
    pub fn m1(&self) -> &Mission {
        &self.state.tenant(&id("acme")).unwrap().missions()[&id::<MissionId>("m1")]
    }

    /// `bot` heartbeats acme's m1 under `epoch`, asking for `lease`.
    pub fn heartbeat(
        &mut self,
        epoch: u64,
        lease: Millis,
        progress: Option<serde_json::Value>,
    ) -> Result<Vec<Event>, Rejection> {
        self.cmd(
            "acme",
            Actor::Agent(id("bot")),
            CommandBody::Heartbeat {
                mission: id("m1"),
                epoch,
                lease,
                progress,
            },
        )
    }

    pub fn mission_state(&self, tenant: &str, mission: &str) -> MissionState {
        self.state.tenant(&id(tenant)).unwrap().missions()[&id::<MissionId>(mission)].state()
    }

    pub fn last_audit_kind(&self, tenant: &str) -> String {
        self.state
            .tenant(&id(tenant))
            .unwrap()
            .audit()
            .entries()
            .next_back()
            .unwrap()
            .kind
            .clone()
    }
}
