//! `apply`: the deterministic transition function of the engine.
//!
//! It reads nothing but the state and the command: no clock, no randomness,
//! no IO. Every handler checks everything first and only then changes state
//! through [`commit`], which appends the command's audit entry in the same
//! step, so a refused command leaves the state exactly as it was.

use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;

use crate::actor::Actor;
use crate::audit::{AuditLog, Checkpoint, checkpoint};
use crate::canonical;
use crate::directory::DirectoryChange;
use crate::identity::credential::{AgentCredential, AgentIdentityClaims};
use crate::identity::keys::PublicKey;
use crate::identity::token::{ExecutionToken, ExecutionTokenClaims, ParameterRules};
use crate::identity::{KekId, SealError, TenantKey, TenantSeed};
use crate::ids::{AgentId, MissionId, NamespaceId, OrgUnitId, TenantId, TokenId, ToolName, UserId};
use crate::machine::command::{Advance, Closing, Command, CommandBody, Precondition};
use crate::machine::event::{CarriedMission, Event};
use crate::machine::execution;
use crate::machine::fold::{self, Stamp};
use crate::machine::governance;
use crate::machine::missions::Missions;
use crate::machine::rejection::Rejection;
use crate::machine::saga;
use crate::machine::secrets;
use crate::machine::signing_keys;
use crate::machine::state::{
    AgentRecord, BundleCache, CredentialRecord, EngineState, Namespace, NamespacePolicy,
    OpenMissions, Revocation, TenantState,
};
use crate::machine::tokens::Tokens;
use crate::machine::tool_calls;
use crate::mission::{
    AbortReason, AuthorityBoundary, DataBoundary, Frozen, Mission, MissionBoundary, MissionContext,
    MissionDefinition, MissionOutcome, MissionState, OutcomeKind, PolicyBoundary, RuntimeBoundary,
    RuntimeLimits, SealedOutcome, Step,
};
use crate::policy::authority::AuthorityConfig;
use crate::policy::canary::{self, Release};
use crate::policy::entities::SubjectCache;
use crate::policy::reasoner::ReasonerConfig;
use crate::policy::routing::RoutingTable;
use crate::time::Timestamp;

const MAX_NAME_CHARS: usize = 200;
pub(super) const MAX_NOTE_CHARS: usize = 2_000;
pub(super) const MAX_RESULT_BYTES: usize = 256 * 1024;

/// What every handler needs to know about the command besides its body.
pub(super) struct Ctx<'a> {
    pub(super) at: Timestamp,
    pub(super) actor: &'a Actor,
    pub(super) kind: &'static str,
    pub(super) mission: Option<&'a MissionId>,
    pub(super) subjects: &'a SubjectCache,
}

pub(super) fn encoding(e: impl std::fmt::Display) -> Rejection {
    Rejection::Encoding(e.to_string())
}

pub(super) fn check_text(field: &str, value: &str, max: usize) -> Result<(), Rejection> {
    let chars = value.chars().count();
    if chars == 0 || chars > max || value.chars().any(char::is_control) || value.trim().is_empty() {
        return Err(Rejection::BadText {
            field: field.to_owned(),
            max,
        });
    }
    Ok(())
}

/// Appends the command's audit entry and makes its changes, together:
/// the events' changes to missions through the mission fold, and
/// `mutate`'s to anything else. `mutate` receives the sequence number of
/// the audit entry.
pub(super) fn commit(
    t: &mut TenantState,
    c: &Ctx<'_>,
    kind: &str,
    events: Vec<Event>,
    mutate: impl FnOnce(&mut TenantState, u64),
) -> Result<Vec<Event>, Rejection> {
    let record = t
        .audit
        .prepare(
            &t.id,
            c.at,
            c.actor.clone(),
            kind,
            c.mission.cloned(),
            &events,
        )
        .map_err(encoding)?;
    let seq = record.entry.seq;
    let stamp = Stamp {
        tenant: &t.id,
        seq,
        at: c.at,
        actor: c.actor,
    };
    fold::absorb_entry(&mut t.missions, &events, &stamp, &record.payload)
        .unwrap_or_else(|e| panic!("a handler emitted an event that does not fold: {e}"));
    for id in events.iter().filter_map(Event::mission) {
        t.open.refresh(&t.missions, id);
    }
    mutate(t, seq);
    t.audit.append(record);
    t.clock = c.at;
    Ok(events)
}

impl EngineState {
    /// Applies one command. On success returns the events it produced; on
    /// refusal returns why, having changed nothing but (for refusals that
    /// matter to governance) one audit entry recording the refusal.
    pub fn apply(&mut self, cmd: &Command) -> Result<Vec<Event>, Rejection> {
        let result = self.try_apply(cmd);
        if result.is_ok()
            && let CommandBody::ChangeDirectory {
                change: DirectoryChange::MintKey { key },
                ..
            } = &cmd.body
        {
            self.keys.0.insert(key.id.clone(), cmd.tenant.clone());
        }
        if let Err(rejection) = &result
            && rejection.is_audited()
            && let Some(t) = self.tenants.get_mut(&cmd.tenant)
        {
            let c = Ctx {
                at: cmd.at.max(t.clock),
                actor: &cmd.actor,
                kind: "command.rejected",
                mission: cmd.body.mission(),
                subjects: &self.subjects,
            };
            let event = Event::CommandRejected {
                command: cmd.body.kind().to_owned(),
                rejection: rejection.clone(),
            };
            commit(t, &c, c.kind, vec![event], |_, _| {})
                .expect("a rejection record is always encodable");
        }
        result
    }

    fn try_apply(&mut self, cmd: &Command) -> Result<Vec<Event>, Rejection> {
        if let CommandBody::CreateTenant {
            display_name,
            signing_key_seed,
        } = &cmd.body
        {
            return self.create_tenant(cmd, display_name, signing_key_seed);
        }
        // Opened before the tenant is borrowed: the KEK is the state's.
        let new_key = match &cmd.body {
            CommandBody::RotateSigningKey { seed, .. }
                if self.tenants.contains_key(&cmd.tenant) =>
            {
                Some(self.open_seed(seed, &cmd.tenant)?)
            }
            _ => None,
        };
        let t = self
            .tenants
            .get_mut(&cmd.tenant)
            .ok_or_else(|| Rejection::UnknownTenant(cmd.tenant.clone()))?;
        if let Some(Precondition::ConfigVersion {
            namespace,
            part,
            version,
        }) = &cmd.precondition
        {
            let ns = t
                .namespaces
                .get(namespace)
                .ok_or_else(|| Rejection::UnknownNamespace(namespace.clone()))?;
            let current = ns.config_version(*part);
            if current != *version {
                return Err(Rejection::StaleConfig {
                    part: *part,
                    current,
                });
            }
        }
        let c = Ctx {
            at: cmd.at.max(t.clock),
            actor: &cmd.actor,
            kind: cmd.body.kind(),
            mission: cmd.body.mission(),
            subjects: &self.subjects,
        };
        match &cmd.body {
            CommandBody::CreateTenant { .. } => unreachable!("handled above"),
            CommandBody::RotateSigningKey {
                retirement, key, ..
            } => {
                let new_key = new_key.expect("opened above for an existing tenant");
                signing_keys::rotate(t, &c, new_key, *retirement, key.as_ref())
            }
            CommandBody::CreateNamespace {
                namespace,
                display_name,
            } => create_namespace(t, &c, namespace, display_name),
            CommandBody::IssueCredential {
                agent,
                org_unit,
                owner,
                public_key,
                not_before,
                not_after,
            } => issue_credential(
                t,
                &c,
                agent,
                org_unit,
                owner.as_ref(),
                public_key,
                *not_before,
                *not_after,
            ),
            CommandBody::RevokeCredential { serial, reason } => {
                revoke_credential(t, &c, *serial, reason)
            }
            CommandBody::CreateMission {
                namespace,
                mission,
                agent,
                definition,
                context,
                limits,
            } => create_mission(
                t, &c, namespace, mission, agent, definition, context, *limits,
            ),
            CommandBody::AdvanceMission { mission, step } => advance_mission(t, &c, mission, *step),
            CommandBody::CloseMission { mission, closing } => {
                close_mission(t, &c, mission, closing)
            }
            CommandBody::WriteStateData {
                mission,
                key,
                value,
            } => write_state_data(t, &c, mission, key, value),
            CommandBody::IssueExecutionToken {
                mission,
                token,
                tools,
                parameters,
                expires_at,
            } => issue_token(t, &c, mission, token, tools, parameters, *expires_at),
            CommandBody::SignCheckpoint => sign_checkpoint(t, &c),
            CommandBody::PutPolicyBundle { source } => governance::put_bundle(t, &c, source),
            CommandBody::RegisterTool { tool, spec } => {
                governance::register_tool(t, &c, tool, spec)
            }
            CommandBody::SetAuthority { namespace, config } => {
                governance::set_authority(t, &c, namespace, config)
            }
            CommandBody::SetRouting { namespace, routing } => {
                governance::set_routing(t, &c, namespace, routing)
            }
            CommandBody::SetReasoner {
                namespace,
                reasoner,
            } => governance::set_reasoner(t, &c, namespace, reasoner),
            CommandBody::PutSecret { name, sealed } => secrets::put(t, &c, name, sealed),
            CommandBody::DeleteSecret { name } => secrets::delete(t, &c, name),
            CommandBody::SetStableBundle { namespace, version } => {
                governance::set_stable(t, &c, namespace, version)
            }
            CommandBody::StartCanary {
                namespace,
                version,
                basis_points,
            } => governance::start_canary(t, &c, namespace, version, *basis_points),
            CommandBody::PromoteCanary { namespace } => {
                governance::end_canary(t, &c, namespace, true)
            }
            CommandBody::RollbackCanary { namespace } => {
                governance::end_canary(t, &c, namespace, false)
            }
            CommandBody::SubmitPlan { mission, steps } => {
                governance::submit_plan(t, &c, mission, steps)
            }
            CommandBody::DecideApproval {
                mission,
                hold,
                approve,
                groups,
                reason,
            } => {
                let vote = governance::VoteCast {
                    hold: *hold,
                    approve: *approve,
                    reason,
                };
                governance::decide_approval(t, &c, mission, vote, groups, Vec::new())
            }
            CommandBody::CastVote {
                mission,
                hold,
                approve,
                reason,
                key,
            } => {
                let vote = governance::VoteCast {
                    hold: *hold,
                    approve: *approve,
                    reason,
                };
                governance::cast_vote(t, &c, mission, vote, key)
            }
            CommandBody::ChangeDirectory { change, key } => {
                crate::machine::directory::change(t, &c, change, key.as_ref())
            }
            CommandBody::ExpireApproval { mission, hold } => {
                governance::expire_approval(t, &c, mission, *hold)
            }
            CommandBody::EvaluateToolCall {
                mission,
                step,
                tool,
                arguments,
            } => governance::evaluate_tool_call(t, &c, mission, *step, tool, arguments, None),
            CommandBody::DispatchToolCall {
                mission,
                step,
                call,
                tool,
                arguments,
                credential_serial,
                token,
            } => {
                let dispatch = tool_calls::Dispatch {
                    call: *call,
                    credential_serial: *credential_serial,
                    token,
                };
                governance::evaluate_tool_call(
                    t,
                    &c,
                    mission,
                    *step,
                    tool,
                    arguments,
                    Some(&dispatch),
                )
            }
            CommandBody::CompleteToolCall {
                mission,
                step,
                call,
                result,
            } => tool_calls::complete(t, &c, mission, *step, *call, result),
            CommandBody::RefuseToolCall {
                mission,
                step,
                tool,
                claimed_agent,
                code,
                reason,
            } => tool_calls::refuse(
                t,
                &c,
                mission,
                *step,
                tool,
                claimed_agent.as_ref(),
                code,
                reason,
            ),
            CommandBody::ClaimMission {
                mission,
                worker,
                lease,
                token,
            } => execution::claim(t, &c, mission, worker, *lease, token),
            CommandBody::Heartbeat {
                mission,
                epoch,
                lease,
                progress,
            } => execution::heartbeat(t, &c, mission, *epoch, *lease, progress),
            CommandBody::ReportStep {
                mission,
                epoch,
                step,
                outcome,
            } => execution::report_step(t, &c, mission, *epoch, *step, outcome),
            CommandBody::ContinueMission { mission } => continue_mission(t, &c, mission),
            CommandBody::ExpireLease { mission, epoch } => {
                execution::expire_lease(t, &c, mission, *epoch)
            }
            CommandBody::TimeOutStep {
                mission,
                step,
                timeout,
                epoch,
            } => execution::time_out_step(t, &c, mission, *step, *timeout, *epoch),
            CommandBody::DispatchCompensation { mission, step } => {
                saga::dispatch(t, &c, mission, *step)
            }
            CommandBody::CompleteCompensation {
                mission,
                step,
                result,
            } => saga::complete(t, &c, mission, *step, result),
        }
    }

    /// The key a proposed seed gives. Every node that holds the cluster's
    /// KEK refuses a seed sealed under another alike, so the refusal is
    /// the same on all of them.
    fn open_seed(&self, seed: &TenantSeed, tenant: &TenantId) -> Result<TenantKey, Rejection> {
        match TenantKey::of(seed, self.kek.0.as_ref(), tenant) {
            Ok(key) => Ok(key),
            // The state already holds keys sealed under the command's KEK:
            // it is the cluster's, and this node was given another. Going
            // on would leave this replica behind the others; it stops.
            Err(SealError::OtherKek { sealed, held }) if self.holds_keys_under(sealed) => panic!(
                "this node's key-encryption key ({held}) is not the cluster's ({sealed}): restart it with the cluster's KEK"
            ),
            Err(e) => Err(Rejection::SealedKey(e.to_string())),
        }
    }

    fn holds_keys_under(&self, kek: KekId) -> bool {
        self.tenants
            .values()
            .any(|t| t.key.sealed().is_some_and(|s| s.kek == kek))
    }

    fn create_tenant(
        &mut self,
        cmd: &Command,
        display_name: &str,
        seed: &TenantSeed,
    ) -> Result<Vec<Event>, Rejection> {
        if cmd.actor != Actor::Platform {
            return Err(Rejection::NotPlatform);
        }
        if self.tenants.contains_key(&cmd.tenant) {
            return Err(Rejection::TenantExists(cmd.tenant.clone()));
        }
        check_text("display name", display_name, MAX_NAME_CHARS)?;
        let key = self.open_seed(seed, &cmd.tenant)?;
        let mut t = TenantState {
            id: cmd.tenant.clone(),
            display_name: display_name.to_owned(),
            created_at: cmd.at,
            clock: cmd.at,
            key,
            retired_keys: Vec::new(),
            namespaces: BTreeMap::new(),
            agents: BTreeMap::new(),
            credentials: BTreeMap::new(),
            missions: Missions::default(),
            tokens: Tokens::default(),
            bundles: BTreeMap::new(),
            tools: BTreeMap::new(),
            secrets: BTreeMap::new(),
            directory: Default::default(),
            audit: AuditLog::default(),
            compiled: BundleCache::default(),
            open: OpenMissions::default(),
        };
        let c = Ctx {
            at: cmd.at,
            actor: &cmd.actor,
            kind: cmd.body.kind(),
            mission: None,
            subjects: &self.subjects,
        };
        let events = vec![Event::TenantCreated {
            display_name: display_name.to_owned(),
            public_key: t.key.public(),
        }];
        let events = commit(&mut t, &c, c.kind, events, |_, _| {})?;
        self.tenants.insert(cmd.tenant.clone(), t);
        Ok(events)
    }
}

fn create_namespace(
    t: &mut TenantState,
    c: &Ctx<'_>,
    namespace: &NamespaceId,
    display_name: &str,
) -> Result<Vec<Event>, Rejection> {
    if t.namespaces.contains_key(namespace) {
        return Err(Rejection::NamespaceExists(namespace.clone()));
    }
    check_text("display name", display_name, MAX_NAME_CHARS)?;
    let events = vec![Event::NamespaceCreated {
        namespace: namespace.clone(),
        display_name: display_name.to_owned(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.namespaces.insert(
            namespace.clone(),
            Namespace {
                display_name: display_name.to_owned(),
                created_at: c.at,
                policy: NamespacePolicy::default(),
                authority: AuthorityConfig::default(),
                routing: RoutingTable::default(),
                reasoner: ReasonerConfig::default(),
                recent: VecDeque::new(),
            },
        );
    })
}

#[allow(clippy::too_many_arguments)]
fn issue_credential(
    t: &mut TenantState,
    c: &Ctx<'_>,
    agent: &AgentId,
    org_unit: &OrgUnitId,
    owner: Option<&UserId>,
    public_key: &PublicKey,
    not_before: Timestamp,
    not_after: Timestamp,
) -> Result<Vec<Event>, Rejection> {
    if not_after <= not_before {
        return Err(Rejection::EmptyValidity);
    }
    if let Some(existing) = t.agents.get(agent)
        && &existing.org_unit != org_unit
    {
        return Err(Rejection::OrgUnitMismatch {
            agent: agent.clone(),
            bound: existing.org_unit.to_string(),
        });
    }
    let serial = t.credentials.len() as u64 + 1;
    let claims = AgentIdentityClaims {
        tenant: t.id.clone(),
        agent: agent.clone(),
        org_unit: org_unit.clone(),
        agent_key: *public_key,
        serial,
        not_before,
        not_after,
    };
    let credential = AgentCredential::issue(claims, t.key.signer()).map_err(encoding)?;
    let events = vec![Event::CredentialIssued {
        credential: credential.clone(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.agents
            .entry(agent.clone())
            .or_insert_with(|| AgentRecord {
                org_unit: org_unit.clone(),
                owner: None,
                credentials: Vec::new(),
            });
        let record = t.agents.get_mut(agent).expect("inserted above");
        if owner.is_some() {
            record.owner = owner.cloned();
        }
        record.credentials.push(serial);
        t.credentials.insert(
            serial,
            CredentialRecord {
                credential,
                revoked: None,
            },
        );
    })
}

fn revoke_credential(
    t: &mut TenantState,
    c: &Ctx<'_>,
    serial: u64,
    reason: &str,
) -> Result<Vec<Event>, Rejection> {
    let record = t
        .credentials
        .get(&serial)
        .ok_or(Rejection::UnknownCredential(serial))?;
    if record.revoked.is_some() {
        return Err(Rejection::AlreadyRevoked(serial));
    }
    check_text("reason", reason, MAX_NOTE_CHARS)?;
    let events = vec![Event::CredentialRevoked {
        serial,
        agent: record.credential.claims.agent.clone(),
        reason: reason.to_owned(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        let record = t.credentials.get_mut(&serial).expect("checked above");
        record.revoked = Some(Revocation {
            at: c.at,
            by: c.actor.clone(),
            reason: reason.to_owned(),
        });
    })
}

/// Agents act only on their own missions; humans and the runtime are
/// authorized by the API layer before a command is proposed.
pub(super) fn check_actor_may_act(c: &Ctx<'_>, mission_agent: &AgentId) -> Result<(), Rejection> {
    match c.actor {
        Actor::Agent(a) if a != mission_agent => {
            Err(Rejection::NotMissionAgent { actor: a.clone() })
        }
        _ => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn create_mission(
    t: &mut TenantState,
    c: &Ctx<'_>,
    namespace: &NamespaceId,
    mission: &MissionId,
    agent: &AgentId,
    definition: &MissionDefinition,
    context: &MissionContext,
    limits: RuntimeLimits,
) -> Result<Vec<Event>, Rejection> {
    let Some(ns) = t.namespaces.get(namespace) else {
        return Err(Rejection::UnknownNamespace(namespace.clone()));
    };
    if t.missions.contains_key(mission) {
        return Err(Rejection::MissionExists(mission.clone()));
    }
    definition.validate().map_err(Rejection::Definition)?;
    context.validate().map_err(Rejection::Context)?;
    if !limits.is_in_range() {
        return Err(Rejection::LimitsOutOfRange);
    }
    if !t.agents.contains_key(agent) {
        return Err(Rejection::UnknownAgent(agent.clone()));
    }
    check_actor_may_act(c, agent)?;
    if !t.agent_is_active(agent, c.at) {
        return Err(Rejection::NoActiveCredential(agent.clone()));
    }
    // The bundle is chosen once, from a stable hash of the mission id, and
    // frozen: a mission never changes policy version mid-flight.
    let (bundle, release) = match &ns.policy.canary {
        Some(canary) if canary::assign(mission, canary.basis_points) == Release::Canary => {
            (Some(canary.bundle), Release::Canary)
        }
        _ => (ns.policy.stable, Release::Stable),
    };
    let boundary = MissionBoundary {
        authority: AuthorityBoundary {
            required_level: definition.authority,
            config: ns.authority.clone(),
        },
        policy: PolicyBoundary { bundle, release },
        data: DataBoundary {
            classification: context.classification,
            allowed_targets: ns.routing.allowed(context.classification),
        },
        runtime: RuntimeBoundary {
            allowed_tools: definition.tool_set(),
            timeout: definition.timeout,
            deadline: c.at.plus(definition.timeout),
            limits,
        },
    };
    let context = Frozen::freeze(context.clone()).map_err(encoding)?;
    let boundary = Frozen::freeze(boundary).map_err(encoding)?;
    let events = vec![Event::MissionCreated {
        mission: mission.clone(),
        namespace: namespace.clone(),
        agent: agent.clone(),
        definition: definition.clone(),
        context: context.get().clone(),
        context_digest: context.digest(),
        boundary: boundary.get().clone(),
        boundary_digest: boundary.digest(),
    }];
    commit(t, c, c.kind, events, |_, _| {})
}

pub(super) fn mission_for<'t>(
    t: &'t TenantState,
    id: &MissionId,
) -> Result<&'t Mission, Rejection> {
    t.missions
        .get(id)
        .ok_or_else(|| Rejection::UnknownMission(id.clone()))
}

/// Carries a mission whose current run of its record is full into a new
/// run: the entry records the whole mission, so replaying it needs no
/// entry before this one.
fn continue_mission(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    if m.state().is_closed() {
        return Err(Rejection::MissionClosed);
    }
    if !m.run_is_full() {
        let limits = m.boundary().get().runtime.limits;
        return Err(Rejection::RunNotFull {
            entries: m.run().entries,
            bytes: m.run().bytes,
            max_entries: limits.max_run_entries,
            max_bytes: limits.max_run_bytes,
        });
    }
    let events = vec![Event::RunContinued {
        mission: id.clone(),
        run: m.run().number + 1,
        previous: m.run().clone(),
        digest: m.digest(),
        carried: CarriedMission(Box::new(m.clone())),
    }];
    commit(t, c, c.kind, events, |_, _| {})
}

fn advance_mission(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    step: Advance,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    check_actor_may_act(c, m.agent())?;
    let step = Step::from(step);
    let from = m.state();
    let to = m.check_step(step).map_err(Rejection::IllegalTransition)?;
    let deadline = m.boundary().get().runtime.deadline;
    if c.at >= deadline {
        return Err(Rejection::DeadlinePassed { deadline });
    }
    let events = vec![Event::MissionAdvanced {
        mission: id.clone(),
        from,
        to,
        step,
    }];
    commit(t, c, c.kind, events, |_, _| {})
}

fn close_mission(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    closing: &Closing,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    check_actor_may_act(c, m.agent())?;
    let step = closing.step();
    let from = m.state();
    m.check_step(step).map_err(Rejection::IllegalTransition)?;
    if m.execution().is_compensating() {
        return Err(Rejection::Compensating);
    }
    let deadline = m.boundary().get().runtime.deadline;
    let (kind, reason, result) = match closing {
        Closing::Seal { result } => {
            let bytes = canonical::to_bytes(result).map_err(encoding)?.len();
            if bytes > MAX_RESULT_BYTES {
                return Err(Rejection::Encoding(format!(
                    "result takes {bytes} bytes; the limit is {MAX_RESULT_BYTES}"
                )));
            }
            (
                OutcomeKind::Succeeded,
                "completed".to_owned(),
                result.clone(),
            )
        }
        Closing::Abort { reason, note } => {
            if matches!(reason, AbortReason::Denied | AbortReason::Rejected) {
                return Err(Rejection::ReservedOutcome(*reason));
            }
            check_text("note", note, MAX_NOTE_CHARS)?;
            if *reason == AbortReason::TimedOut && c.at < deadline {
                return Err(Rejection::DeadlineNotReached { deadline });
            }
            (OutcomeKind::from(*reason), note.clone(), Value::Null)
        }
    };
    let sealed = seal_outcome(t, m, kind, reason, result, c.at)?;
    let events = vec![Event::MissionClosed {
        mission: id.clone(),
        from,
        step,
        outcome: sealed,
    }];
    commit(t, c, c.kind, events, |_, _| {})
}

/// Seals the outcome of closing `m` now. The audit head is the tenant's
/// newest entry before the closing command's own.
pub(super) fn seal_outcome(
    t: &TenantState,
    m: &Mission,
    kind: OutcomeKind,
    reason: String,
    result: Value,
    at: Timestamp,
) -> Result<SealedOutcome, Rejection> {
    let outcome = MissionOutcome {
        tenant: t.id.clone(),
        namespace: m.namespace().clone(),
        mission: m.id().clone(),
        agent: m.agent().clone(),
        kind,
        left_state: m.state(),
        reason,
        result,
        closed_at: at,
        context_digest: m.context().digest(),
        boundary_digest: m.boundary().digest(),
        state_data_digest: m.state_data().digest(),
        audit_head: t.audit.head_hash(),
    };
    SealedOutcome::seal(outcome, t.key.signer()).map_err(encoding)
}

fn write_state_data(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    key: &str,
    value: &Option<Value>,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    check_actor_may_act(c, m.agent())?;
    if m.state().is_closed() {
        return Err(Rejection::StateDataFrozen(m.state()));
    }
    let deadline = m.boundary().get().runtime.deadline;
    if c.at >= deadline {
        return Err(Rejection::DeadlinePassed { deadline });
    }
    m.state_data()
        .check_write(key, value.as_ref())
        .map_err(Rejection::StateData)?;
    let events = vec![Event::StateDataWritten {
        mission: id.clone(),
        key: key.to_owned(),
        value: value.clone(),
        version: m.state_data().version() + 1,
    }];
    commit(t, c, c.kind, events, |_, _| {})
}

#[allow(clippy::too_many_arguments)]
fn issue_token(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    token: &TokenId,
    tools: &std::collections::BTreeSet<ToolName>,
    parameters: &BTreeMap<ToolName, ParameterRules>,
    expires_at: Timestamp,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    check_actor_may_act(c, m.agent())?;
    if t.tokens.contains_key(token) {
        return Err(Rejection::TokenExists(token.clone()));
    }
    if !matches!(
        m.state(),
        MissionState::Approved | MissionState::PendingExecution | MissionState::InProgress
    ) {
        return Err(Rejection::TokenNotIssuable(m.state()));
    }
    if tools.is_empty() {
        return Err(Rejection::NoTools);
    }
    let boundary = m.boundary().get();
    if let Some(outside) = tools
        .iter()
        .find(|tool| !boundary.runtime.allowed_tools.contains(*tool))
    {
        return Err(Rejection::ToolOutsideBoundary(outside.clone()));
    }
    for (tool, rules) in parameters {
        if !tools.contains(tool) {
            return Err(Rejection::BadParameterRules {
                tool: tool.clone(),
                problem: "rules name a tool the token does not allow".into(),
            });
        }
        rules
            .validate()
            .map_err(|problem| Rejection::BadParameterRules {
                tool: tool.clone(),
                problem,
            })?;
    }
    if expires_at <= c.at {
        return Err(Rejection::TokenAlreadyExpired);
    }
    if expires_at > boundary.runtime.deadline {
        return Err(Rejection::TokenOutlivesMission {
            expires_at,
            deadline: boundary.runtime.deadline,
        });
    }
    if !t.agent_is_active(m.agent(), c.at) {
        return Err(Rejection::NoActiveCredential(m.agent().clone()));
    }
    let claims = ExecutionTokenClaims {
        token: token.clone(),
        tenant: t.id.clone(),
        mission: id.clone(),
        agent: m.agent().clone(),
        allowed_tools: tools.clone(),
        parameters: parameters.clone(),
        issued_at: c.at,
        expires_at,
        boundary_digest: m.boundary().digest(),
    };
    let signed = ExecutionToken::issue(claims, t.key.signer()).map_err(encoding)?;
    let events = vec![Event::ExecutionTokenIssued {
        token: signed.clone(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.tokens.insert(token.clone(), signed);
    })
}

fn sign_checkpoint(t: &mut TenantState, c: &Ctx<'_>) -> Result<Vec<Event>, Rejection> {
    let size = t.audit.len() + 1;
    let events = commit(
        t,
        c,
        c.kind,
        vec![Event::CheckpointSigned { size }],
        |_, _| {},
    )?;
    // Signed after the entry is appended, so the checkpoint covers the
    // whole chain including the entry that announces it.
    debug_assert_eq!(t.audit.len(), size);
    sign_whole_chain(t, c.at);
    Ok(events)
}

/// Signs a checkpoint over the tenant's whole chain with its current key.
pub(super) fn sign_whole_chain(t: &mut TenantState, at: Timestamp) {
    let cp = Checkpoint::sign(
        checkpoint::origin(&t.id),
        t.audit.len(),
        t.audit.tree().root(),
        at,
        checkpoint::key_name(&t.id),
        t.key.signer(),
    );
    t.audit.add_checkpoint(cp);
}
