//! A mission as the engine keeps it: definition, frozen context and
//! boundary, lifecycle position, working state and, once closed, its
//! sealed outcome.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actor::Actor;
use crate::canonical::{self, Domain};
use crate::digest::Digest;
use crate::ids::{AgentId, MissionId, NamespaceId, ToolName};
use crate::mission::boundary::AuthorityLevel;
use crate::mission::boundary::MissionBoundary;
use crate::mission::closed_form::{ClosedForm, Encodings};
use crate::mission::context::MissionContext;
use crate::mission::definition::MissionDefinition;
use crate::mission::execution::Execution;
use crate::mission::frozen::Frozen;
use crate::mission::outcome::SealedOutcome;
use crate::mission::retry::RetryPolicy;
use crate::mission::state::{IllegalTransition, MissionState, Step};
use crate::mission::timeouts::{StepTimeout, StepTimeouts};
use crate::mission::tool_call::ToolCallRecord;
use crate::mission::tool_call_book::ToolCallBook;
use crate::policy::authority::ApprovalState;
use crate::policy::decision::DecisionRecord;
use crate::time::Timestamp;

pub const STATE_DATA_DOMAIN: Domain = Domain::new("aura.mission-state-data/1");
pub const MISSION_DOMAIN: Domain = Domain::new("aura.mission/1");
pub const MAX_STATE_DATA_KEY: usize = 128;
pub const MAX_STATE_DATA_VALUE_BYTES: usize = 64 * 1024;
pub const MAX_STATE_DATA_BYTES: usize = 1024 * 1024;

/// One move in a mission's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateChange {
    pub from: MissionState,
    pub to: MissionState,
    pub step: Step,
    pub at: Timestamp,
    pub by: Actor,
    /// The tenant audit entry that recorded the move.
    pub audit_seq: u64,
}

/// The current run of the mission's record: the entries since it was
/// created or last continued as new.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    /// 1 for the run that starts at creation.
    pub number: u32,
    /// The entry that started the run (the creation or the continuation).
    pub first_seq: u64,
    /// Entries that changed the mission since, and their payloads' bytes.
    pub entries: u64,
    pub bytes: u64,
}

/// The mission's mutable working memory. Each write is a command, so each
/// write is audited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MissionStateData {
    entries: BTreeMap<String, Value>,
    /// Encoded size of all values, kept to enforce the total limit.
    bytes: usize,
    version: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Serialize, Deserialize)]
pub enum StateDataError {
    #[error("state data keys are 1 to {MAX_STATE_DATA_KEY} characters")]
    BadKey,
    #[error("state data value takes {bytes} bytes; the limit is {MAX_STATE_DATA_VALUE_BYTES}")]
    ValueTooLarge { bytes: usize },
    #[error("state data would take {bytes} bytes; the mission limit is {MAX_STATE_DATA_BYTES}")]
    TotalTooLarge { bytes: usize },
    #[error("state data value cannot be encoded: {0}")]
    NotEncodable(String),
}

impl MissionStateData {
    pub fn entries(&self) -> &BTreeMap<String, Value> {
        &self.entries
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn digest(&self) -> Digest {
        canonical::digest(STATE_DATA_DOMAIN, &self.entries)
            .expect("stored state data was encodable when written")
    }

    fn encoded_len(value: &Value) -> Result<usize, StateDataError> {
        canonical::to_bytes(value)
            .map(|b| b.len())
            .map_err(|e| StateDataError::NotEncodable(e.to_string()))
    }

    /// Checks a write (`None` deletes) without applying it.
    pub fn check_write(&self, key: &str, value: Option<&Value>) -> Result<(), StateDataError> {
        if key.is_empty() || key.chars().count() > MAX_STATE_DATA_KEY {
            return Err(StateDataError::BadKey);
        }
        let new = value.map(Self::encoded_len).transpose()?.unwrap_or(0);
        if new > MAX_STATE_DATA_VALUE_BYTES {
            return Err(StateDataError::ValueTooLarge { bytes: new });
        }
        let old = self
            .entries
            .get(key)
            .map(Self::encoded_len)
            .transpose()?
            .unwrap_or(0);
        let total = self.bytes - old + new;
        if total > MAX_STATE_DATA_BYTES {
            return Err(StateDataError::TotalTooLarge { bytes: total });
        }
        Ok(())
    }

    fn write(&mut self, key: String, value: Option<Value>) {
        self.check_write(&key, value.as_ref())
            .expect("write was checked");
        let old = self.entries.remove(&key);
        self.bytes -= old
            .as_ref()
            .map_or(0, |v| Self::encoded_len(v).unwrap_or(0));
        if let Some(v) = value {
            self.bytes += Self::encoded_len(&v).unwrap_or(0);
            self.entries.insert(key, v);
        }
        self.version += 1;
    }
}

/// One step of a mission's plan: a tool and its arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanStep {
    pub tool: ToolName,
    /// The call's arguments: a JSON object, free-form (the tool's input
    /// schema says what it takes).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub arguments: Value,
    /// How this step's calls are retried, when not as the tool says.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// This step's timeouts, when not as the tool says.
    #[serde(default)]
    pub timeouts: Option<StepTimeouts>,
}

/// The plan as submitted, with the decision taken on each step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    pub steps: Vec<PlanStep>,
    pub decisions: Vec<DecisionRecord>,
    /// The strictest of the step decisions: the mission's decision.
    pub decision: DecisionRecord,
}

/// A step held at execution time for an approver: because policy said
/// ESCALATE on a call, because a call used up its retries under a policy
/// that escalates, or because the step stalled. The mission stays IN_PROGRESS; the step waits for its
/// own approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepHold {
    pub tool: ToolName,
    /// The decision the hold follows from (for a retry hold, the one the
    /// exhausted call was sent under).
    pub decision: DecisionRecord,
    pub approval: ApprovalState,
    #[serde(default)]
    pub kind: HoldKind,
    /// The level an earlier, approved policy hold of this step granted its
    /// tool: a later hold (retries used up, a stall) replaces that hold
    /// but not the allowance.
    #[serde(default)]
    pub granted: Option<AuthorityLevel>,
}

impl StepHold {
    /// The level this hold lets calls of `tool` in its step be decided
    /// with.
    pub fn grant(&self, tool: &ToolName) -> Option<AuthorityLevel> {
        if &self.tool != tool {
            return None;
        }
        let approved = (self.kind == HoldKind::Policy
            && self.approval.status == crate::policy::authority::ApprovalStatus::Approved)
            .then_some(self.approval.required_level);
        approved.max(self.granted)
    }
}

/// Why a step is held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HoldKind {
    /// Policy escalated the call: approving grants the required level to
    /// the step's calls.
    #[default]
    Policy,
    /// Call `call` failed every attempt: approving sends it again with a
    /// fresh set of attempts, rejecting fails the step.
    RetriesExhausted { call: u32 },
    /// The step overran `timeout`: no worker started it in time, or it
    /// stalled on one worker after another. Approving frees it for the
    /// next worker with a fresh count; rejecting fails it.
    Stalled { timeout: StepTimeout },
}

/// A tool call decision taken during execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallDecision {
    pub step: u32,
    pub tool: ToolName,
    pub at: Timestamp,
    pub decision: DecisionRecord,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mission {
    id: MissionId,
    namespace: NamespaceId,
    agent: AgentId,
    requester: Actor,
    created_at: Timestamp,
    definition: MissionDefinition,
    context: Frozen<MissionContext>,
    boundary: Frozen<MissionBoundary>,
    state: MissionState,
    timeline: Vec<StateChange>,
    state_data: MissionStateData,
    plan: Option<Plan>,
    /// The mission-level approval, opened when the plan escalated.
    approval: Option<ApprovalState>,
    /// The approval level the mission holds (none when policy permitted
    /// the plan outright).
    granted_level: Option<AuthorityLevel>,
    holds: BTreeMap<u32, StepHold>,
    calls: Vec<CallDecision>,
    /// Calls dispatched through the gateway, by step, then call number.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<u32, BTreeMap<u32, crate::mission::tool_call::ToolCallRecord>>))]
    tool_calls: ToolCallBook,
    /// Who executes the mission and how far they got.
    execution: Execution,
    outcome: Option<SealedOutcome>,
    run: Run,
    #[serde(skip)]
    closed_form: ClosedForm,
}

impl Mission {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn launch(
        id: MissionId,
        namespace: NamespaceId,
        agent: AgentId,
        requester: Actor,
        created_at: Timestamp,
        definition: MissionDefinition,
        context: Frozen<MissionContext>,
        boundary: Frozen<MissionBoundary>,
        created_seq: u64,
    ) -> Mission {
        Mission {
            id,
            namespace,
            agent,
            requester,
            created_at,
            definition,
            context,
            boundary,
            state: MissionState::Created,
            timeline: Vec::new(),
            state_data: MissionStateData::default(),
            plan: None,
            approval: None,
            granted_level: None,
            holds: BTreeMap::new(),
            calls: Vec::new(),
            tool_calls: ToolCallBook::default(),
            execution: Execution::default(),
            outcome: None,
            run: Run {
                number: 1,
                first_seq: created_seq,
                entries: 0,
                bytes: 0,
            },
            closed_form: ClosedForm::default(),
        }
    }

    /// The mission's encodings, once it is closed (made on first use and
    /// then kept).
    pub(crate) fn closed_form(&self) -> Option<&Encodings> {
        self.state.is_closed().then(|| self.closed_form.of(self))
    }

    /// Whether encodings of the mission are kept.
    #[cfg(test)]
    pub(crate) fn has_closed_form(&self) -> bool {
        self.closed_form.is_kept()
    }

    /// Drops the encodings kept of the mission, before it is changed.
    pub(crate) fn forget_closed_form(&mut self) {
        self.closed_form = ClosedForm::default();
    }

    pub fn run(&self) -> &Run {
        &self.run
    }

    /// Whether the current run reached a limit of the mission's boundary,
    /// so it is due to continue as new.
    pub fn run_is_full(&self) -> bool {
        let limits = self.boundary.get().runtime.limits;
        self.run.entries >= u64::from(limits.max_run_entries)
            || self.run.bytes >= limits.max_run_bytes
    }

    /// One more entry, of `bytes` payload bytes, changed the mission.
    pub(crate) fn count_entry(&mut self, bytes: u64) {
        self.run.entries += 1;
        self.run.bytes += bytes;
    }

    /// The record continues in run `number` from entry `seq`.
    pub(crate) fn start_run(&mut self, number: u32, seq: u64) {
        assert_eq!(number, self.run.number + 1, "runs are numbered in order");
        self.run = Run {
            number,
            first_seq: seq,
            entries: 0,
            bytes: 0,
        };
    }

    pub fn id(&self) -> &MissionId {
        &self.id
    }

    /// The digest of everything the engine keeps about the mission: equal
    /// for the live mission and the one its audit record rebuilds.
    ///
    /// Always encoded afresh: only a mission inside the state's map
    /// ([`crate::machine::missions::Missions`]), whose changes all drop
    /// what is kept of it, reads a kept digest.
    pub fn digest(&self) -> Digest {
        canonical::digest(MISSION_DOMAIN, self).expect("a mission is encodable")
    }
    pub fn namespace(&self) -> &NamespaceId {
        &self.namespace
    }
    pub fn agent(&self) -> &AgentId {
        &self.agent
    }
    pub fn requester(&self) -> &Actor {
        &self.requester
    }
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    pub fn definition(&self) -> &MissionDefinition {
        &self.definition
    }
    pub fn context(&self) -> &Frozen<MissionContext> {
        &self.context
    }
    pub fn boundary(&self) -> &Frozen<MissionBoundary> {
        &self.boundary
    }
    pub fn state(&self) -> MissionState {
        self.state
    }
    pub fn timeline(&self) -> &[StateChange] {
        &self.timeline
    }
    pub fn state_data(&self) -> &MissionStateData {
        &self.state_data
    }
    pub fn outcome(&self) -> Option<&SealedOutcome> {
        self.outcome.as_ref()
    }
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }
    pub fn approval(&self) -> Option<&ApprovalState> {
        self.approval.as_ref()
    }
    pub fn granted_level(&self) -> Option<AuthorityLevel> {
        self.granted_level
    }
    pub fn holds(&self) -> &BTreeMap<u32, StepHold> {
        &self.holds
    }
    pub fn calls(&self) -> &[CallDecision] {
        &self.calls
    }

    pub fn execution(&self) -> &Execution {
        &self.execution
    }
    pub(crate) fn execution_mut(&mut self) -> &mut Execution {
        &mut self.execution
    }

    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCallRecord> {
        self.tool_calls.iter()
    }
    pub fn tool_call(&self, step: u32, call: u32) -> Option<&ToolCallRecord> {
        self.tool_calls.get(step, call)
    }
    /// Dispatches so far, retries included: what `max_tool_calls` bounds.
    pub fn dispatch_count(&self) -> u64 {
        self.tool_calls.dispatches()
    }
    /// [`Self::dispatch_count`] recounted from the records.
    pub(crate) fn dispatch_recount(&self) -> u64 {
        self.tool_calls.recount()
    }

    pub(crate) fn set_plan(&mut self, plan: Plan) {
        assert!(self.plan.is_none(), "a plan is submitted once");
        self.plan = Some(plan);
    }
    pub(crate) fn set_approval(&mut self, approval: Option<ApprovalState>) {
        self.approval = approval;
    }
    pub(crate) fn grant(&mut self, level: AuthorityLevel) {
        self.granted_level = Some(self.granted_level.map_or(level, |l| l.max(level)));
    }
    pub(crate) fn set_hold(&mut self, step: u32, mut hold: StepHold) {
        let carried = self.holds.get(&step).and_then(|h| h.grant(&hold.tool));
        hold.granted = hold.granted.max(carried);
        self.holds.insert(step, hold);
    }
    pub(crate) fn record_call(&mut self, call: CallDecision) {
        self.calls.push(call);
    }
    /// An approver allowed an exhausted call more attempts.
    pub(crate) fn renew_attempts(&mut self, step: u32, call: u32, at: Timestamp) {
        let renewed = self
            .tool_calls
            .update(step, call, |record| record.with_fresh_attempts(at));
        assert!(renewed, "a retry hold names a recorded call");
    }

    pub(crate) fn put_tool_call(&mut self, record: ToolCallRecord) {
        self.tool_calls.put(record);
    }

    /// Since when the step under way has been free for a worker: none
    /// while a lease is held (or a lapsed one awaits its expiry).
    pub fn free_since(&self) -> Option<Timestamp> {
        if self.execution.lease().is_some() {
            return None;
        }
        self.execution.free_since().or_else(|| {
            self.timeline
                .iter()
                .rev()
                .find(|c| c.to == MissionState::PendingExecution)
                .map(|c| c.at)
        })
    }

    /// The approval a decision on `hold` (the plan's approval for `None`,
    /// a held step's otherwise) would count towards: pending, and still
    /// about where the mission is. A step's hold is moot once the step is
    /// reported or the mission has left execution.
    pub fn open_approval(&self, hold: Option<u32>) -> Option<&ApprovalState> {
        let approval = match hold {
            None if self.state == MissionState::WaitingApproval => self.approval.as_ref(),
            // A stalled step may wait before any worker claimed the mission.
            Some(step)
                if matches!(
                    self.state,
                    MissionState::InProgress | MissionState::PendingExecution
                ) && step >= self.execution.next_step() =>
            {
                self.holds.get(&step).map(|h| &h.approval)
            }
            _ => None,
        };
        approval.filter(|a| a.status == crate::policy::authority::ApprovalStatus::Pending)
    }

    /// Every approval an approver may decide now, as [`Mission::open_approval`].
    pub fn open_approvals(&self) -> impl Iterator<Item = (Option<u32>, &ApprovalState)> {
        std::iter::once(None)
            .chain(self.holds.keys().map(|s| Some(*s)))
            .filter_map(|hold| self.open_approval(hold).map(|a| (hold, a)))
    }

    /// Whether `step` waits for an approver.
    pub fn is_held(&self, step: u32) -> bool {
        self.holds
            .get(&step)
            .is_some_and(|h| h.approval.status == crate::policy::authority::ApprovalStatus::Pending)
    }

    /// Whether `step` stalled and waits for an approver before any worker
    /// may take it.
    pub fn is_stalled(&self, step: u32) -> bool {
        self.is_held(step)
            && self
                .holds
                .get(&step)
                .is_some_and(|h| matches!(h.kind, HoldKind::Stalled { .. }))
    }

    /// Where `step` would take the mission, without moving it.
    pub fn check_step(&self, step: Step) -> Result<MissionState, IllegalTransition> {
        self.state.next(step)
    }

    /// Moves the mission. A move into CLOSED must carry the sealed outcome,
    /// and only such a move may; so `outcome.is_some()` exactly when the
    /// mission is CLOSED.
    pub(crate) fn advance(&mut self, change: StateChange, outcome: Option<SealedOutcome>) {
        let to = self.state.next(change.step).expect("step was checked");
        assert_eq!(to, change.to);
        assert_eq!(self.state, change.from);
        assert_eq!(to.is_closed(), outcome.is_some(), "outcome iff closed");
        self.state = to;
        self.timeline.push(change);
        if outcome.is_some() {
            self.outcome = outcome;
        }
    }

    pub(crate) fn write_state_data(&mut self, key: String, value: Option<Value>) {
        assert!(!self.state.is_closed(), "closed missions are immutable");
        self.state_data.write(key, value);
    }
}
