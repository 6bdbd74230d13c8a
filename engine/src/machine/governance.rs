//! Handlers for the control plane: bundles, tools, authority, routing,
//! canary releases, and the decisions that move a mission through
//! WAITING_APPROVAL and gate its tool calls.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use crate::actor::Actor;
use crate::canonical::{self, Domain};
use crate::digest::Digest;
use crate::directory::{KeyId, Role};
use crate::ids::{MissionId, NamespaceId, ToolName, UserId, WorkerId};
use crate::machine::apply::{
    Ctx, MAX_NOTE_CHARS, check_actor_may_act, check_text, commit, encoding, mission_for,
    seal_outcome,
};
use crate::machine::event::{Event, HeldStep};
use crate::machine::rejection::Rejection;
use crate::machine::saga;
use crate::machine::state::{Namespace, RECENT_DECISIONS, RecentDecision, TenantState};
use crate::machine::tool_calls::{self, Dispatch};
use crate::mission::{
    AuthorityLevel, HoldKind, Mission, MissionState, OutcomeKind, PlanStep, RuntimeLimits, Step,
    StepOutcome, StepReport,
};
use crate::policy::authority::{ApprovalState, ApprovalStatus, AuthorityConfig, Vote};
use crate::policy::bundle::{BundleSource, CompiledBundle};
use crate::policy::canary::{self, Canary, Release, ReleaseAnalysis, ShadowDiff, ShadowStats};
use crate::policy::decision::{Decision, DecisionRecord, PolicyRequest, PreparedEntities, decide};
use crate::policy::entities::{EntitiesJson, MissionSubject, SubjectCache};
use crate::policy::reasoner::ReasonerConfig;
use crate::policy::routing::RoutingTable;
use crate::tool::{ToolSpec, boundary_violation};

const FALLBACK_INPUT_DOMAIN: Domain = Domain::new("aura.decision-input-unevaluated/1");

fn namespace<'t>(t: &'t TenantState, ns: &NamespaceId) -> Result<&'t Namespace, Rejection> {
    t.namespaces
        .get(ns)
        .ok_or_else(|| Rejection::UnknownNamespace(ns.clone()))
}

pub(super) fn put_bundle(
    t: &mut TenantState,
    c: &Ctx<'_>,
    source: &BundleSource,
) -> Result<Vec<Event>, Rejection> {
    let compiled = CompiledBundle::compile(source).map_err(Rejection::BadBundle)?;
    let version = compiled.version();
    let events = vec![Event::BundleStored {
        version,
        policies: compiled.policy_ids().to_vec(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.bundles.insert(version, source.clone());
        t.compiled.0.insert(version, Arc::new(compiled));
    })
}

pub(super) fn register_tool(
    t: &mut TenantState,
    c: &Ctx<'_>,
    tool: &ToolName,
    spec: &ToolSpec,
) -> Result<Vec<Event>, Rejection> {
    spec.validate().map_err(Rejection::BadConfig)?;
    let events = vec![Event::ToolRegistered {
        tool: tool.clone(),
        spec: spec.clone(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.tools.insert(tool.clone(), spec.clone());
    })
}

pub(super) fn set_authority(
    t: &mut TenantState,
    c: &Ctx<'_>,
    ns: &NamespaceId,
    config: &AuthorityConfig,
) -> Result<Vec<Event>, Rejection> {
    namespace(t, ns)?;
    config.validate().map_err(Rejection::BadConfig)?;
    let events = vec![Event::AuthoritySet {
        namespace: ns.clone(),
        config: config.clone(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.namespaces.get_mut(ns).expect("checked").authority = config.clone();
    })
}

pub(super) fn set_routing(
    t: &mut TenantState,
    c: &Ctx<'_>,
    ns: &NamespaceId,
    routing: &RoutingTable,
) -> Result<Vec<Event>, Rejection> {
    namespace(t, ns)?;
    routing.validate().map_err(Rejection::BadConfig)?;
    let events = vec![Event::RoutingSet {
        namespace: ns.clone(),
        routing: routing.clone(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.namespaces.get_mut(ns).expect("checked").routing = routing.clone();
    })
}

pub(super) fn set_reasoner(
    t: &mut TenantState,
    c: &Ctx<'_>,
    ns: &NamespaceId,
    reasoner: &ReasonerConfig,
) -> Result<Vec<Event>, Rejection> {
    namespace(t, ns)?;
    reasoner.validate().map_err(Rejection::BadConfig)?;
    let events = vec![Event::ReasonerSet {
        namespace: ns.clone(),
        reasoner: reasoner.clone(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.namespaces.get_mut(ns).expect("checked").reasoner = reasoner.clone();
    })
}

pub(super) fn set_stable(
    t: &mut TenantState,
    c: &Ctx<'_>,
    ns: &NamespaceId,
    version: &Digest,
) -> Result<Vec<Event>, Rejection> {
    if namespace(t, ns)?.policy.canary.is_some() {
        return Err(Rejection::CanaryRunning);
    }
    if !t.bundles.contains_key(version) {
        return Err(Rejection::UnknownBundle(*version));
    }
    let events = vec![Event::StableBundleSet {
        namespace: ns.clone(),
        version: *version,
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.namespaces.get_mut(ns).expect("checked").policy.stable = Some(*version);
    })
}

pub(super) fn start_canary(
    t: &mut TenantState,
    c: &Ctx<'_>,
    ns: &NamespaceId,
    version: &Digest,
    basis_points: u32,
) -> Result<Vec<Event>, Rejection> {
    let n = namespace(t, ns)?;
    if n.policy.canary.is_some() {
        return Err(Rejection::CanaryRunning);
    }
    let stable = n.policy.stable.ok_or(Rejection::NoStableBundle)?;
    if !(1..=10_000).contains(&basis_points) {
        return Err(Rejection::BadConfig(
            "a canary takes 1 to 10000 basis points of new missions".into(),
        ));
    }
    if *version == stable {
        return Err(Rejection::BadConfig(
            "the canary is the stable bundle".into(),
        ));
    }
    let candidate = t
        .compiled
        .0
        .get(version)
        .ok_or(Rejection::UnknownBundle(*version))?;
    // Replay recent decisions of the namespace against the candidate.
    let analysis = ReleaseAnalysis::from_pairs(n.recent.iter().map(|r| {
        let candidate_decision = PreparedEntities::from_json(&r.entities.to_value(), None)
            .map(|e| decide(candidate, &r.request, &e, AuthorityLevel::L1).decision)
            .unwrap_or(Decision::Deny);
        (r.input_digest, r.decision, candidate_decision)
    }));
    let canary = Canary {
        bundle: *version,
        basis_points,
        started_at: c.at,
        stats: ShadowStats::default(),
        analysis: analysis.clone(),
    };
    let events = vec![Event::CanaryStarted {
        namespace: ns.clone(),
        version: *version,
        basis_points,
        analysis,
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.namespaces.get_mut(ns).expect("checked").policy.canary = Some(canary);
    })
}

pub(super) fn end_canary(
    t: &mut TenantState,
    c: &Ctx<'_>,
    ns: &NamespaceId,
    promote: bool,
) -> Result<Vec<Event>, Rejection> {
    let canary = namespace(t, ns)?
        .policy
        .canary
        .clone()
        .ok_or(Rejection::NoCanary)?;
    let event = if promote {
        Event::CanaryPromoted {
            namespace: ns.clone(),
            version: canary.bundle,
            stats: canary.stats.clone(),
        }
    } else {
        Event::CanaryRolledBack {
            namespace: ns.clone(),
            version: canary.bundle,
            stats: canary.stats.clone(),
        }
    };
    commit(t, c, c.kind, vec![event], |t, _| {
        let policy = &mut t.namespaces.get_mut(ns).expect("checked").policy;
        policy.canary = None;
        if promote {
            policy.stable = Some(canary.bundle);
        }
    })
}

/// A decision on one step, with what it was taken over (kept for release
/// analysis).
struct StepEval {
    record: DecisionRecord,
    input: Option<(PolicyRequest, Arc<EntitiesJson>)>,
}

fn unevaluated(
    bundle: Option<Digest>,
    code: &str,
    why: String,
    input: &impl serde::Serialize,
) -> StepEval {
    StepEval {
        record: DecisionRecord {
            decision: Decision::Deny,
            determining: vec![code.to_owned()],
            errors: vec![why],
            bundle: bundle.unwrap_or(Digest::ZERO),
            required_level: None,
            granted_level: None,
            input_digest: canonical::digest(FALLBACK_INPUT_DOMAIN, input).unwrap_or(Digest::ZERO),
        },
        input: None,
    }
}

/// Decides one tool step of `m` under `bundle`. Fails closed: an
/// unregistered tool, a crossed deployment boundary, a missing bundle or
/// anything that cannot be evaluated is a DENY whose record says why. The
/// deployment boundary is checked before policy, so no approval can lift it.
fn evaluate_step(
    subjects: &SubjectCache,
    t: &TenantState,
    m: &Mission,
    action: &str,
    (tool, arguments): (&ToolName, &Value),
    granted: Option<AuthorityLevel>,
    bundle: Option<Digest>,
) -> StepEval {
    let boundary = m.boundary().get();
    let Some(spec) = t.tools.get(tool) else {
        return unevaluated(
            bundle,
            "aura:unknown-tool",
            format!("tool `{tool}` is not registered"),
            &(tool, arguments),
        );
    };
    if let Some(why) = boundary_violation(
        boundary.data.classification,
        &boundary.data.allowed_targets,
        spec,
    ) {
        return unevaluated(bundle, "aura:data-boundary", why, &(tool, arguments));
    }
    let Some(version) = bundle else {
        return unevaluated(
            None,
            "aura:no-bundle",
            "no policy bundle was in effect when the mission launched".into(),
            &(tool, arguments),
        );
    };
    let Some(compiled) = t.compiled.0.get(&version) else {
        return unevaluated(
            bundle,
            "aura:no-bundle",
            format!("policy bundle {version} is not loaded"),
            &(tool, arguments),
        );
    };
    let Some(agent) = t.agents.get(m.agent()) else {
        return unevaluated(
            bundle,
            "aura:unknown-agent",
            format!("agent `{}` is not registered", m.agent()),
            &(tool, arguments),
        );
    };
    let requester = m.requester().to_string();
    let tools = subject_tools(t, m, (tool, spec));
    let subject = MissionSubject {
        tenant: &t.id,
        namespace: m.namespace(),
        agent: m.agent(),
        org_unit: &agent.org_unit,
        owner: agent.owner.as_ref(),
        mission: m.id(),
        classification: boundary.data.classification,
        authority: boundary.authority.required_level,
        requester: &requester,
        tools: &tools,
    };
    let request = subject.request(tool, action, arguments, granted);
    let prepared = match subjects.prepared(&subject) {
        Ok(e) => e,
        Err(e) => return unevaluated(bundle, "aura:bad-entities", e, &(tool, arguments)),
    };
    let mut record = decide(
        compiled,
        &request,
        &prepared.entities,
        boundary.authority.required_level,
    );
    record.granted_level = granted;
    if record.decision == Decision::Escalate
        && let (Some(g), Some(r)) = (granted, record.required_level)
        && g >= r
    {
        record.decision = Decision::Permit;
    }
    StepEval {
        record,
        input: Some((request, Arc::clone(&prepared.json))),
    }
}

/// The tools whose entities a decision about `m` carries: the registered
/// tools of its boundary, and the step's own (which a plan may name from
/// outside the boundary, to be decided and refused), in name order. The
/// same for every step of the mission, so its steps share one set of
/// prepared entities.
fn subject_tools<'t>(
    t: &'t TenantState,
    m: &'t Mission,
    step: (&'t ToolName, &'t ToolSpec),
) -> Vec<(&'t ToolName, &'t ToolSpec)> {
    let mut tools: Vec<(&ToolName, &ToolSpec)> = m
        .boundary()
        .get()
        .runtime
        .allowed_tools
        .iter()
        .filter_map(|name| t.tools.get_key_value(name))
        .collect();
    if let Err(at) = tools.binary_search_by(|(name, _)| (*name).cmp(step.0)) {
        tools.insert(at, step);
    }
    tools
}

fn strictest(records: &[DecisionRecord]) -> DecisionRecord {
    let worst = records
        .iter()
        .map(|r| r.decision)
        .max()
        .unwrap_or(Decision::Deny);
    let mut out = records
        .iter()
        .find(|r| r.decision == worst)
        .cloned()
        .expect("at least one step");
    if worst == Decision::Escalate {
        out.required_level = records.iter().filter_map(|r| r.required_level).max();
    }
    out
}

fn sorted_diff(a: &[String], b: &[String]) -> Vec<String> {
    let b: BTreeSet<_> = b.iter().collect();
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}

/// Evaluates the same steps under the namespace's other release, when a
/// canary runs, and compares. Returns the diff stable → canary.
fn shadow(
    subjects: &SubjectCache,
    t: &TenantState,
    m: &Mission,
    action: &str,
    steps: &[(&ToolName, &Value)],
    granted: Option<AuthorityLevel>,
    main: &DecisionRecord,
) -> Option<ShadowDiff> {
    let ns = t.namespaces.get(m.namespace())?;
    let canary = ns.policy.canary.as_ref()?;
    let stable = ns.policy.stable?;
    let mine = m.boundary().get().policy.bundle?;
    let other = if mine == canary.bundle {
        stable
    } else if mine == stable {
        canary.bundle
    } else {
        return None;
    };
    let others: Vec<_> = steps
        .iter()
        .map(|(tool, args)| {
            evaluate_step(subjects, t, m, action, (tool, args), granted, Some(other)).record
        })
        .collect();
    let other_rec = strictest(&others);
    let (s, k) = if mine == stable {
        (main, &other_rec)
    } else {
        (&other_rec, main)
    };
    Some(ShadowDiff {
        stable: s.decision,
        canary: k.decision,
        direction: canary::direction(s.decision, k.decision),
        only_stable: sorted_diff(&s.determining, &k.determining),
        only_canary: sorted_diff(&k.determining, &s.determining),
    })
}

/// Records stable-bundle decisions for later release analysis, and counts
/// shadow differences.
fn note_decisions(
    ns: &mut Namespace,
    release: Release,
    evals: Vec<StepEval>,
    diff: Option<&ShadowDiff>,
) {
    if release == Release::Stable {
        for e in evals {
            if let Some((request, entities)) = e.input {
                if ns.recent.len() == RECENT_DECISIONS {
                    ns.recent.pop_front();
                }
                ns.recent.push_back(RecentDecision {
                    request,
                    entities,
                    decision: e.record.decision,
                    input_digest: e.record.input_digest,
                });
            }
        }
    }
    if let (Some(diff), Some(canary)) = (diff, ns.policy.canary.as_mut()) {
        canary.stats.count(diff);
    }
}

pub(super) fn check_deadline(m: &Mission, c: &Ctx<'_>) -> Result<(), Rejection> {
    let deadline = m.boundary().get().runtime.deadline;
    if c.at >= deadline {
        return Err(Rejection::DeadlinePassed { deadline });
    }
    Ok(())
}

/// What is wrong with `steps` as a plan for a mission with these limits
/// and tools, whatever else the state holds: its size, each step's
/// arguments, retry policy and timeouts, and its tools. Submitting a plan
/// checks it first; a caller can check a plan with it before committing
/// anything the plan would follow, such as the create of its mission,
/// whose boundary takes its limits and tools from the request.
pub fn check_plan(
    steps: &[PlanStep],
    limits: &RuntimeLimits,
    allowed_tools: &BTreeSet<ToolName>,
) -> Result<(), Rejection> {
    let max = limits.max_steps;
    if steps.is_empty() || steps.len() > max as usize {
        return Err(Rejection::PlanSize {
            steps: steps.len(),
            max,
        });
    }
    if let Some(step) = steps.iter().position(|s| !s.arguments.is_object()) {
        return Err(Rejection::ArgumentsNotObject { step });
    }
    for (step, s) in steps.iter().enumerate() {
        let bad = |reason| Rejection::BadStep { step, reason };
        if let Some(r) = &s.retry {
            r.validate().map_err(bad)?;
        }
        if let Some(t) = &s.timeouts {
            t.validate().map_err(bad)?;
        }
    }
    check_tools(allowed_tools, steps.iter().map(|s| s.tool.clone()))
}

fn check_tools(
    allowed_tools: &BTreeSet<ToolName>,
    tools: impl IntoIterator<Item = ToolName>,
) -> Result<(), Rejection> {
    for tool in tools {
        if !allowed_tools.contains(&tool) {
            return Err(Rejection::ToolOutsideBoundary(tool));
        }
    }
    Ok(())
}

pub(super) fn submit_plan(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    steps: &[PlanStep],
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    check_actor_may_act(c, m.agent())?;
    m.check_step(Step::SubmitPlan)
        .map_err(Rejection::IllegalTransition)?;
    check_deadline(m, c)?;
    let runtime = &m.boundary().get().runtime;
    check_plan(steps, &runtime.limits, &runtime.allowed_tools)?;

    let bundle = m.boundary().get().policy.bundle;
    let evals: Vec<StepEval> = steps
        .iter()
        .map(|s| {
            evaluate_step(
                c.subjects,
                t,
                m,
                "plan_step",
                (&s.tool, &s.arguments),
                None,
                bundle,
            )
        })
        .collect();
    let records: Vec<DecisionRecord> = evals.iter().map(|e| e.record.clone()).collect();
    let mut decision = strictest(&records);
    let pairs: Vec<_> = steps.iter().map(|s| (&s.tool, &s.arguments)).collect();
    let diff = shadow(c.subjects, t, m, "plan_step", &pairs, None, &decision);
    let release = m.boundary().get().policy.release;
    let rules = m.boundary().get().authority.config.rules;
    let mut events = vec![Event::PlanDecided {
        mission: id.clone(),
        plan: steps.to_vec(),
        steps: records,
        decision: decision.clone(),
        shadow: diff.clone(),
    }];
    let from = m.state();
    let mut moves = Vec::new();
    let mut sealed = None;
    match decision.decision {
        Decision::Permit => {
            // PERMIT passes WAITING_APPROVAL at once, with the policy
            // decision recorded as the authority, and the approved mission
            // enters its namespace's queue.
            moves.extend([Step::SubmitPlan, Step::Approve, Step::Enqueue]);
        }
        Decision::Escalate => {
            let required = decision
                .required_level
                .unwrap_or(m.boundary().get().authority.required_level)
                .max(rules.min_level);
            decision.required_level = Some(required);
            events.push(Event::ApprovalOpened {
                mission: id.clone(),
                hold: None,
                approval: ApprovalState::open(required, &rules, c.at),
                held: None,
            });
            moves.push(Step::SubmitPlan);
        }
        Decision::Deny => {
            let result = serde_json::to_value(&decision).map_err(encoding)?;
            let outcome = seal_outcome(
                t,
                m,
                OutcomeKind::Denied,
                "policy denied the plan".into(),
                result,
                c.at,
            )?;
            sealed = Some(outcome);
            moves.push(Step::Abort(crate::mission::AbortReason::Denied));
        }
    }
    let mut state = from;
    for step in &moves {
        let to = state.next(*step).expect("legal by construction");
        if to.is_closed()
            && let Some(outcome) = sealed.take()
        {
            events.push(Event::MissionClosed {
                mission: id.clone(),
                from: state,
                step: *step,
                outcome,
            });
        } else {
            events.push(Event::MissionAdvanced {
                mission: id.clone(),
                from: state,
                to,
                step: *step,
            });
        }
        state = to;
    }
    let ns_id = m.namespace().clone();
    commit(t, c, c.kind, events, |t, _| {
        let ns = t
            .namespaces
            .get_mut(&ns_id)
            .expect("mission's namespace exists");
        note_decisions(ns, release, evals, diff.as_ref());
    })
}

/// The pending approval a vote or expiry is about.
fn pending_approval(m: &Mission, hold: Option<u32>) -> Result<&ApprovalState, Rejection> {
    m.open_approval(hold)
        .ok_or(Rejection::NoPendingApproval { hold })
}

/// The events that follow from an approval's new status.
fn settle(
    t: &TenantState,
    m: &Mission,
    hold: Option<u32>,
    approval: &ApprovalState,
    reason: &str,
    at: crate::time::Timestamp,
) -> Result<Vec<Event>, Rejection> {
    let mut events = Vec::new();
    if let Some(step) = hold {
        // A held step's approval never moves the mission by itself; a
        // rejected stall fails the step as a worker's report would.
        let stalled = m
            .holds()
            .get(&step)
            .and_then(|h| match h.kind {
                HoldKind::Stalled { timeout } => Some(timeout),
                _ => None,
            })
            .filter(|_| approval.status == ApprovalStatus::Rejected);
        if let Some(timeout) = stalled {
            let why =
                format!("the step overran its {timeout} timeout and was not let go on: {reason}");
            events.push(Event::StepReported {
                mission: m.id().clone(),
                report: StepReport {
                    step,
                    epoch: m.execution().epoch(),
                    worker: WorkerId::runtime(),
                    at,
                    outcome: StepOutcome::Failed {
                        reason: why.clone(),
                    },
                    output: Value::Null,
                },
            });
            events.extend(saga::fail_step(t, m, step, &why, at)?);
        }
        return Ok(events);
    }
    let id = m.id().clone();
    match approval.status {
        ApprovalStatus::Approved => {
            // Approved missions enter their namespace's queue at once.
            events.push(Event::MissionAdvanced {
                mission: id.clone(),
                from: m.state(),
                to: MissionState::Approved,
                step: Step::Approve,
            });
            events.push(Event::MissionAdvanced {
                mission: id,
                from: MissionState::Approved,
                to: MissionState::PendingExecution,
                step: Step::Enqueue,
            });
        }
        ApprovalStatus::Rejected => {
            let result = serde_json::to_value(approval).map_err(encoding)?;
            let outcome = seal_outcome(t, m, OutcomeKind::Rejected, reason.to_owned(), result, at)?;
            events.push(Event::MissionClosed {
                mission: id,
                from: m.state(),
                step: Step::Abort(crate::mission::AbortReason::Rejected),
                outcome,
            });
        }
        ApprovalStatus::Pending => {}
    }
    Ok(events)
}

/// An approver's vote as a command carries it.
pub(super) struct VoteCast<'a> {
    pub(super) hold: Option<u32>,
    pub(super) approve: bool,
    pub(super) reason: &'a str,
}

/// A vote cast with `key`: the key must be the approver's own, usable
/// now and carry the approver role, and the approver's groups are the
/// directory's. The entry names the key and who minted it.
pub(super) fn cast_vote(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    vote: VoteCast<'_>,
    key: &KeyId,
) -> Result<Vec<Event>, Rejection> {
    let Actor::User(approver) = c.actor else {
        return Err(Rejection::ApproverNotUser);
    };
    let record = t
        .directory
        .key_for(key, approver, Role::Approver, c.at)
        .map_err(|refusal| Rejection::KeyRefused {
            key: key.clone(),
            refusal,
        })?;
    let noted = Event::VoteKey {
        mission: id.clone(),
        hold: vote.hold,
        key: key.clone(),
        minted_by: record.minted_by.clone(),
    };
    let groups = t.directory.groups_of(approver);
    decide_approval(t, c, id, vote, &groups, vec![noted])
}

/// Records a vote by the command's actor with `groups`, after the events
/// `first`.
pub(super) fn decide_approval(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    vote: VoteCast<'_>,
    groups: &BTreeSet<String>,
    first: Vec<Event>,
) -> Result<Vec<Event>, Rejection> {
    let VoteCast {
        hold,
        approve,
        reason,
    } = vote;
    let Actor::User(approver) = c.actor else {
        return Err(Rejection::ApproverNotUser);
    };
    check_text("reason", reason, MAX_NOTE_CHARS)?;
    let m = mission_for(t, id)?;
    let current = pending_approval(m, hold)?;
    let config = &m.boundary().get().authority.config;
    let owner = t.agents.get(m.agent()).and_then(|a| a.owner.clone());
    let requester = match m.requester() {
        Actor::User(u) => Some(u.clone()),
        _ => None,
    };
    let excluded: Vec<&UserId> = owner.iter().chain(requester.iter()).collect();
    let level = current
        .check_vote(config, approver, groups, &excluded, c.at)
        .map_err(Rejection::Vote)?;
    let vote = Vote {
        approver: approver.clone(),
        groups: groups.clone(),
        level,
        approve,
        reason: reason.to_owned(),
        at: c.at,
    };
    let mut approval = current.clone();
    approval.record(vote.clone());
    let mut events = first;
    events.push(Event::VoteRecorded {
        mission: id.clone(),
        hold,
        vote,
        status: approval.status,
    });
    events.extend(settle(t, m, hold, &approval, reason, c.at)?);
    commit(t, c, c.kind, events, |_, _| {})
}

pub(super) fn expire_approval(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    hold: Option<u32>,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    let current = pending_approval(m, hold)?;
    if c.at < current.deadline {
        return Err(Rejection::ApprovalNotDue {
            deadline: current.deadline,
        });
    }
    let rules = m.boundary().get().authority.config.rules;
    let mut approval = current.clone();
    let status = approval.expire(&rules, c.at);
    let reason = format!("no decision by the deadline at {}", approval.required_level);
    let mut events = vec![Event::ApprovalExpired {
        mission: id.clone(),
        hold,
        status,
        required_level: approval.required_level,
    }];
    events.extend(settle(t, m, hold, &approval, &reason, c.at)?);
    commit(t, c, c.kind, events, |_, _| {})
}

/// Decides one tool call during execution with its actual arguments and
/// the approval already granted. ESCALATE holds the step (the mission stays
/// IN_PROGRESS and never moves back): the step's own approval then lifts
/// the hold, and the same call evaluated again is permitted. With a
/// `dispatch`, a permitted call is also recorded as sent to the endpoint
/// its data may reach, in the same audit entry as the decision.
pub(super) fn evaluate_tool_call(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    step: u32,
    tool: &ToolName,
    arguments: &Value,
    dispatch: Option<&Dispatch<'_>>,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    check_actor_may_act(c, m.agent())?;
    if m.state() != MissionState::InProgress {
        return Err(Rejection::NotExecuting(m.state()));
    }
    check_deadline(m, c)?;
    check_tools(&m.boundary().get().runtime.allowed_tools, [tool.clone()])?;
    if !arguments.is_object() {
        return Err(Rejection::ArgumentsNotObject {
            step: step as usize,
        });
    }
    let prepared = match dispatch {
        Some(d) => Some(tool_calls::prepare_dispatch(
            t, c, m, step, tool, arguments, d,
        )?),
        None => None,
    };
    let held = m.holds().get(&step);
    let step_grant = held.and_then(|h| h.grant(tool));
    let granted = m.granted_level().max(step_grant);
    let bundle = m.boundary().get().policy.bundle;
    let eval = evaluate_step(
        c.subjects,
        t,
        m,
        "call_tool",
        (tool, arguments),
        granted,
        bundle,
    );
    let mut record = eval.record.clone();
    let diff = shadow(
        c.subjects,
        t,
        m,
        "call_tool",
        &[(tool, arguments)],
        granted,
        &record,
    );
    let rules = m.boundary().get().authority.config.rules;
    let mut opened = None;
    if record.decision == Decision::Escalate {
        let already_pending =
            held.is_some_and(|h| h.approval.status == ApprovalStatus::Pending && &h.tool == tool);
        if !already_pending {
            let required = record
                .required_level
                .unwrap_or(m.boundary().get().authority.required_level)
                .max(rules.min_level);
            record.required_level = Some(required);
            opened = Some(Event::ApprovalOpened {
                mission: id.clone(),
                hold: Some(step),
                approval: ApprovalState::open(required, &rules, c.at),
                held: Some(HeldStep {
                    tool: tool.clone(),
                    decision: record.clone(),
                    kind: HoldKind::Policy,
                }),
            });
        }
    }
    let mut events = vec![Event::ToolCallDecided {
        mission: id.clone(),
        step,
        tool: tool.clone(),
        decision: record.clone(),
        shadow: diff.clone(),
    }];
    events.extend(opened);
    if let Some(p) = prepared.filter(|_| record.decision == Decision::Permit) {
        let r = p.permitted();
        events.push(Event::ToolCallDispatched {
            mission: id.clone(),
            step,
            call: r.call,
            tool: tool.clone(),
            idempotency_key: r.idempotency_key,
            arguments_digest: r.arguments_digest,
            target: r.target,
            endpoint: r.endpoint,
            compensation_endpoint: r.compensation_endpoint,
            dispatch: r.dispatches,
        });
    }
    let release = m.boundary().get().policy.release;
    let ns_id = m.namespace().clone();
    commit(t, c, c.kind, events, |t, _| {
        let ns = t
            .namespaces
            .get_mut(&ns_id)
            .expect("mission's namespace exists");
        note_decisions(ns, release, vec![eval], diff.as_ref());
    })
}
