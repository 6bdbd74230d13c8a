//! The mission fold: the one way a mission changes.
//!
//! Handlers decide; they never touch a mission themselves. They return
//! events, [`commit`](super::apply::commit) records them in the tenant's
//! audit entry and then folds each mission event into its mission,
//! stamped with that entry. So a mission is derived data of its audit
//! record: folding the record again, as [`replay_mission`] does, rebuilds
//! the mission exactly, and its digest proves it.
//!
//! Events therefore carry everything the fold needs; what they leave out
//! must follow from the mission as it stood (an approval's new state from
//! the vote, a retry's record from the previous attempt).

use std::collections::BTreeMap;

use crate::actor::Actor;
use crate::audit::{AuditRecord, Payload};
use crate::digest::Digest;
use crate::ids::{MissionId, TenantId};
use crate::machine::event::{Event, HeldStep};
use crate::machine::missions::Missions;
use crate::machine::saga;
use crate::machine::state::TenantState;
use crate::mission::{
    CallDecision, Frozen, HoldKind, Lease, Mission, MissionState, Plan, StateChange, Step,
    StepHold, StepTimeout, ToolCallRecord,
};
use crate::policy::authority::{ApprovalState, ApprovalStatus};
use crate::time::Timestamp;

/// The audit entry an event is recorded in: what its changes are stamped
/// with.
#[derive(Clone, Copy, Debug)]
pub struct Stamp<'a> {
    pub tenant: &'a TenantId,
    pub seq: u64,
    pub at: Timestamp,
    pub actor: &'a Actor,
}

/// Why a record does not fold into a mission.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FoldError {
    #[error("entry {seq}: the record does not start with the mission's creation")]
    NotCreated { seq: u64 },
    #[error("entry {seq}: the mission is created twice")]
    CreatedTwice { seq: u64 },
    #[error("entry {seq}: {what}")]
    Inconsistent { seq: u64, what: String },
    #[error("entry {seq}: the payload is not a list of events: {error}")]
    BadPayload { seq: u64, error: String },
    #[error("mission `{0}` has no entries in this record")]
    NoEntries(MissionId),
    #[error(
        "mission `{mission}` rebuilt from its record has digest {replayed}, the live one {live}"
    )]
    Diverged {
        mission: MissionId,
        live: Digest,
        replayed: Digest,
    },
    #[error("mission `{0}` is live but its record never created it")]
    Missing(MissionId),
}

fn inconsistent(s: &Stamp<'_>, what: impl Into<String>) -> FoldError {
    FoldError::Inconsistent {
        seq: s.seq,
        what: what.into(),
    }
}

/// Folds one event into `missions`. Returns the mission whose current run
/// the event's entry counts in: none for events that change no mission,
/// and none for the events that start a run.
pub(crate) fn absorb<'e>(
    missions: &mut Missions,
    event: &'e Event,
    s: &Stamp<'_>,
) -> Result<Option<&'e MissionId>, FoldError> {
    if let Event::MissionCreated {
        mission,
        namespace,
        agent,
        definition,
        context,
        boundary,
        ..
    } = event
    {
        if missions.contains_key(mission) {
            return Err(FoldError::CreatedTwice { seq: s.seq });
        }
        let freeze = |e: crate::canonical::CanonicalError| inconsistent(s, e.to_string());
        let m = Mission::launch(
            mission.clone(),
            namespace.clone(),
            agent.clone(),
            s.actor.clone(),
            s.at,
            definition.clone(),
            Frozen::freeze(context.clone()).map_err(freeze)?,
            Frozen::freeze(boundary.clone()).map_err(freeze)?,
            s.seq,
        );
        missions.insert(m);
        return Ok(None);
    }
    if let Event::RunContinued {
        mission,
        run,
        digest,
        carried,
        ..
    } = event
    {
        if carried.0.digest() != *digest {
            return Err(inconsistent(
                s,
                "the carried mission does not match its digest",
            ));
        }
        // Replaying from this run on, the carried mission is the start;
        // replaying from creation, it must be the mission as rebuilt.
        let m = match missions.get_mut(mission) {
            Some(m) if *carried.0 != *m => {
                return Err(inconsistent(
                    s,
                    "the carried mission differs from the record",
                ));
            }
            Some(m) => m,
            None => missions.insert((*carried.0).clone()),
        };
        if *run != m.run().number + 1 {
            return Err(inconsistent(s, "runs are numbered in order"));
        }
        m.start_run(*run, s.seq);
        return Ok(None);
    }
    let Some(id) = event.mission() else {
        return Ok(None);
    };
    if !changes_mission(event) {
        return Ok(None);
    }
    let m = missions
        .get_mut(id)
        .ok_or(FoldError::NotCreated { seq: s.seq })?;
    absorb_into(m, event, s)?;
    Ok(Some(id))
}

/// Folds the events of one audit entry and counts the entry, with its
/// payload's size, in the current run of each mission it changed.
pub(crate) fn absorb_entry(
    missions: &mut Missions,
    events: &[Event],
    s: &Stamp<'_>,
    payload: &Payload,
) -> Result<(), FoldError> {
    let mut changed: Vec<&MissionId> = Vec::new();
    for event in events {
        if let Some(id) = absorb(missions, event, s)?
            && !changed.contains(&id)
        {
            changed.push(id);
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    let bytes = payload.json_len();
    for id in changed {
        if let Some(m) = missions.get_mut(id) {
            m.count_entry(bytes);
        }
    }
    Ok(())
}

/// Whether the event changes its mission (rather than only naming it).
fn changes_mission(event: &Event) -> bool {
    !matches!(
        event,
        Event::ToolCallRefused { .. } | Event::ExecutionTokenIssued { .. }
    )
}

fn change(m: &Mission, step: Step, s: &Stamp<'_>) -> Result<StateChange, FoldError> {
    let from = m.state();
    let to = from
        .next(step)
        .map_err(|e| inconsistent(s, e.to_string()))?;
    Ok(StateChange {
        from,
        to,
        step,
        at: s.at,
        by: s.actor.clone(),
        audit_seq: s.seq,
    })
}

fn absorb_into(m: &mut Mission, event: &Event, s: &Stamp<'_>) -> Result<(), FoldError> {
    match event {
        Event::MissionAdvanced { from, step, .. } => {
            check_from(m, *from, s)?;
            let ch = change(m, *step, s)?;
            if ch.to.is_closed() {
                return Err(inconsistent(s, "a mission closes only with its outcome"));
            }
            m.advance(ch, None);
        }
        Event::MissionClosed {
            from,
            step,
            outcome,
            ..
        } => {
            check_from(m, *from, s)?;
            let ch = change(m, *step, s)?;
            if !ch.to.is_closed() {
                return Err(inconsistent(
                    s,
                    format!("{step:?} does not close a mission"),
                ));
            }
            m.advance(ch, Some(outcome.clone()));
        }
        Event::StateDataWritten {
            key,
            value,
            version,
            ..
        } => {
            m.state_data()
                .check_write(key, value.as_ref())
                .map_err(|e| inconsistent(s, e.to_string()))?;
            m.write_state_data(key.clone(), value.clone());
            if m.state_data().version() != *version {
                return Err(inconsistent(s, "state data version out of step"));
            }
        }
        Event::PlanDecided {
            plan,
            steps,
            decision,
            ..
        } => {
            if m.plan().is_some() {
                return Err(inconsistent(s, "a plan is decided once"));
            }
            m.set_plan(Plan {
                steps: plan.clone(),
                decisions: steps.clone(),
                decision: decision.clone(),
            });
        }
        Event::ApprovalOpened {
            hold,
            approval,
            held,
            ..
        } => match (hold, held) {
            (None, _) => m.set_approval(Some(approval.clone())),
            (
                Some(step),
                Some(HeldStep {
                    tool,
                    decision,
                    kind,
                }),
            ) => m.set_hold(
                *step,
                StepHold {
                    tool: tool.clone(),
                    decision: decision.clone(),
                    approval: approval.clone(),
                    kind: *kind,
                    granted: None,
                },
            ),
            (Some(_), None) => {
                return Err(inconsistent(s, "a step's approval opens with its hold"));
            }
        },
        Event::VoteRecorded {
            hold, vote, status, ..
        } => decide(m, *hold, s, "vote", |a| {
            a.record(vote.clone());
            a.status == *status
        })?,
        Event::ApprovalExpired {
            hold,
            status,
            required_level,
            ..
        } => {
            let rules = m.boundary().get().authority.config.rules;
            decide(m, *hold, s, "expiry", |a| {
                a.expire(&rules, s.at);
                a.status == *status && a.required_level == *required_level
            })?;
        }
        Event::ToolCallDecided {
            step,
            tool,
            decision,
            ..
        } => m.record_call(CallDecision {
            step: *step,
            tool: tool.clone(),
            at: s.at,
            decision: decision.clone(),
        }),
        Event::ToolCallDispatched {
            step,
            call,
            tool,
            idempotency_key,
            arguments_digest,
            target,
            endpoint,
            compensation_endpoint,
            dispatch,
            ..
        } => {
            let record = ToolCallRecord::dispatch(
                m.tool_call(*step, *call),
                *step,
                *call,
                tool,
                idempotency_key,
                *arguments_digest,
                s.at,
            );
            if record.dispatches != *dispatch || &record.idempotency_key != idempotency_key {
                return Err(inconsistent(
                    s,
                    "the dispatch differs from the call's record",
                ));
            }
            m.put_tool_call(record.with_route(
                target.clone(),
                endpoint.clone(),
                compensation_endpoint.clone(),
            ));
        }
        Event::ToolCallCompleted {
            step,
            call,
            result,
            retry,
            ..
        } => {
            let record = m
                .tool_call(*step, *call)
                .filter(|r| r.result.is_none())
                .ok_or_else(|| inconsistent(s, "a result for a call not out"))?
                .completed_with(result.clone(), s.at, retry.clone());
            m.put_tool_call(record);
        }
        Event::SagaStarted {
            failed_step,
            reason,
            compensations,
            ..
        } => {
            let planned = saga::plan(s.tenant, m, *failed_step, reason, s.at)
                .map_err(|e| inconsistent(s, e.to_string()))?;
            let steps: Vec<u32> = planned.compensations.iter().map(|c| c.step).collect();
            if &steps != compensations {
                return Err(inconsistent(s, "the saga's steps differ from the record"));
            }
            m.execution_mut().start_saga(planned);
        }
        Event::CompensationDispatched { step, dispatch, .. } => {
            let current = current_compensation(m, *step, s)?;
            let mut record = current.resent(s.at);
            if current.dispatches == 0 {
                record.first_dispatched_at = s.at;
            }
            if record.dispatches != *dispatch {
                return Err(inconsistent(
                    s,
                    "the compensation's dispatch is out of step",
                ));
            }
            set_compensation(m, record);
        }
        Event::CompensationCompleted {
            step,
            result,
            retry,
            ..
        } => {
            let record = current_compensation(m, *step, s)
                .ok()
                .filter(|c| c.dispatches > 0 && c.result.is_none())
                .ok_or_else(|| inconsistent(s, "a result for a compensation not out"))?
                .completed_with(result.clone(), s.at, retry.clone());
            set_compensation(m, record);
        }
        Event::MissionClaimed {
            worker,
            epoch,
            expires_at,
            token,
            ..
        } => {
            if *epoch != m.execution().epoch() + 1 {
                return Err(inconsistent(s, "claims raise the epoch one at a time"));
            }
            m.execution_mut().claim(Lease {
                worker: worker.clone(),
                epoch: *epoch,
                token: token.claims.token.clone(),
                claimed_at: s.at,
                expires_at: *expires_at,
                heartbeat_at: None,
            });
        }
        Event::HeartbeatRecorded {
            expires_at,
            progress,
            ..
        } => {
            if m.execution().lease().is_none() {
                return Err(inconsistent(s, "a heartbeat without a lease"));
            }
            m.execution_mut()
                .heartbeat(s.at, *expires_at, progress.clone());
        }
        Event::StepReported { report, .. } => {
            if report.step != m.execution().next_step() {
                return Err(inconsistent(s, "steps are reported in order"));
            }
            m.execution_mut().report(report.clone());
        }
        Event::LeaseExpired { .. } => {
            if m.execution().lease().is_none() {
                return Err(inconsistent(s, "an expiry without a lease"));
            }
            m.execution_mut().release(s.at);
        }
        Event::StepTimedOut { step, timeout, .. } if *timeout == StepTimeout::StartToClose => {
            if m.execution().lease().is_none() {
                return Err(inconsistent(s, "a stall without a lease"));
            }
            m.execution_mut().stall(*step, s.at);
        }
        // A schedule-to-start timeout changes nothing by itself: the hold
        // it opens is its own event.
        Event::StepTimedOut { .. }
        // Naming a mission without changing it.
        | Event::MissionCreated { .. }
        | Event::RunContinued { .. }
        | Event::ToolCallRefused { .. }
        | Event::ExecutionTokenIssued { .. }
        | Event::VoteKey { .. }
        // About the tenant, not a mission.
        | Event::TenantCreated { .. }
        | Event::SigningKeyRotated { .. }
        | Event::NamespaceCreated { .. }
        | Event::CredentialIssued { .. }
        | Event::CredentialRevoked { .. }
        | Event::CheckpointSigned { .. }
        | Event::BundleStored { .. }
        | Event::ToolRegistered { .. }
        | Event::AuthoritySet { .. }
        | Event::RoutingSet { .. }
        | Event::ReasonerSet { .. }
        | Event::SecretPut { .. }
        | Event::SecretDeleted { .. }
        | Event::UserCreated { .. }
        | Event::UserActiveSet { .. }
        | Event::UserDeleted { .. }
        | Event::GroupCreated { .. }
        | Event::GroupDeleted { .. }
        | Event::MemberAdded { .. }
        | Event::MemberRemoved { .. }
        | Event::KeyMinted { .. }
        | Event::KeyRevoked { .. }
        | Event::StableBundleSet { .. }
        | Event::CanaryStarted { .. }
        | Event::CanaryPromoted { .. }
        | Event::CanaryRolledBack { .. }
        | Event::CommandRejected { .. } => {}
    }
    Ok(())
}

fn check_from(m: &Mission, from: MissionState, s: &Stamp<'_>) -> Result<(), FoldError> {
    if m.state() != from {
        return Err(inconsistent(
            s,
            format!("the mission is {:?}, not {from:?}", m.state()),
        ));
    }
    Ok(())
}

/// A vote or an expiry on the open approval of `hold`: `apply` changes
/// the approval and says whether the outcome is the one recorded.
fn decide(
    m: &mut Mission,
    hold: Option<u32>,
    s: &Stamp<'_>,
    what: &str,
    apply: impl FnOnce(&mut ApprovalState) -> bool,
) -> Result<(), FoldError> {
    let mut approval = m
        .open_approval(hold)
        .ok_or_else(|| inconsistent(s, "a decision on an approval that is not open"))?
        .clone();
    if !apply(&mut approval) {
        return Err(inconsistent(
            s,
            format!("the {what}'s outcome differs from the record"),
        ));
    }
    settle(m, hold, approval, s);
    Ok(())
}

/// An approval's new state, and what approving a held step gives it: the
/// plan's approval grants its level to the mission; a step held for
/// retries gets fresh attempts, a stalled one is free again.
fn settle(m: &mut Mission, hold: Option<u32>, approval: ApprovalState, s: &Stamp<'_>) {
    let approved = approval.status == ApprovalStatus::Approved;
    match hold {
        None => {
            if approved {
                m.grant(approval.required_level);
            }
            m.set_approval(Some(approval));
        }
        Some(step) => {
            let mut h = m.holds().get(&step).cloned().expect("an open approval");
            if approved {
                match h.kind {
                    HoldKind::RetriesExhausted { call } => m.renew_attempts(step, call, s.at),
                    HoldKind::Stalled { .. } => m.execution_mut().unstall(step, s.at),
                    HoldKind::Policy => {}
                }
            }
            h.approval = approval;
            m.set_hold(step, h);
        }
    }
}

fn current_compensation<'m>(
    m: &'m Mission,
    step: u32,
    s: &Stamp<'_>,
) -> Result<&'m ToolCallRecord, FoldError> {
    m.execution()
        .saga()
        .and_then(|saga| saga.current())
        .filter(|c| c.step == step)
        .map(|c| &c.call)
        .ok_or_else(|| inconsistent(s, "a compensation that is not under way"))
}

fn set_compensation(m: &mut Mission, record: ToolCallRecord) {
    m.execution_mut()
        .saga_mut()
        .current_mut()
        .expect("checked")
        .call = record;
}

/// Rebuilds the missions of a tenant's audit records that `wanted` picks:
/// the fold of every event about them, in order.
fn replay(
    tenant: &TenantId,
    records: impl IntoIterator<Item = impl std::borrow::Borrow<AuditRecord>>,
    wanted: impl Fn(&MissionId) -> bool,
) -> Result<BTreeMap<MissionId, Mission>, FoldError> {
    let mut missions = Missions::default();
    for record in records {
        let record = record.borrow();
        let e = &record.entry;
        if !e.mission.as_ref().is_some_and(&wanted) {
            continue;
        }
        let events: Vec<Event> = record
            .payload
            .decode()
            .map_err(|err| FoldError::BadPayload {
                seq: e.seq,
                error: err.to_string(),
            })?;
        let stamp = Stamp {
            tenant,
            seq: e.seq,
            at: e.time,
            actor: &e.actor,
        };
        let ours: Vec<Event> = events
            .into_iter()
            .filter(|ev| ev.mission().is_some_and(&wanted))
            .collect();
        absorb_entry(&mut missions, &ours, &stamp, &record.payload)?;
    }
    Ok(missions.into_map())
}

/// Rebuilds mission `id` from its tenant's audit records (in order; other
/// missions' entries are skipped).
pub fn replay_mission(
    tenant: &TenantId,
    records: impl IntoIterator<Item = impl std::borrow::Borrow<AuditRecord>>,
    id: &MissionId,
) -> Result<Mission, FoldError> {
    let mut missions = replay(tenant, records, |m| m == id)?;
    missions
        .remove(id)
        .ok_or_else(|| FoldError::NoEntries(id.clone()))
}

/// Rebuilds mission `id` from its latest run alone: the records from the
/// last entry that continued it as new (all of them if it never was).
pub fn replay_mission_latest_run(
    tenant: &TenantId,
    records: &[AuditRecord],
    id: &MissionId,
) -> Result<Mission, FoldError> {
    let start = records
        .iter()
        .rposition(|r| {
            r.entry.mission.as_ref() == Some(id)
                && r.entry.kind == crate::machine::command::CONTINUE_AS_NEW_KIND
        })
        .unwrap_or(0);
    replay_mission(tenant, &records[start..], id)
}

/// Rebuilds every mission of `t` from its audit record and checks each
/// against the live one; returns how many were checked.
pub fn verify_replays(t: &TenantState) -> Result<usize, FoldError> {
    let mut replayed = replay(t.id(), t.audit().records(), |_| true)?;
    for (id, live) in t.missions() {
        let rebuilt = replayed
            .remove(id)
            .ok_or_else(|| FoldError::Missing(id.clone()))?;
        let (live, replayed) = (live.digest(), rebuilt.digest());
        if live != replayed {
            return Err(FoldError::Diverged {
                mission: id.clone(),
                live,
                replayed,
            });
        }
    }
    Ok(t.missions().len())
}
