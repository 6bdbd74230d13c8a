//! Events: what an applied command did. They are returned to the proposer
//! and recorded as the payload of the command's audit entry.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actor::Actor;
use crate::digest::Digest;
use crate::directory::{KeyId, Role};
use crate::identity::credential::AgentCredential;
use crate::identity::keys::PublicKey;
use crate::identity::token::ExecutionToken;
use crate::identity::{Retirement, SigningKeyId};
use crate::ids::{AgentId, GroupId, MissionId, NamespaceId, ToolName, UserId, WorkerId};
use crate::machine::rejection::Rejection;
use crate::mission::AuthorityLevel;
use crate::mission::{
    CallResult, HoldKind, Mission, MissionBoundary, MissionContext, MissionDefinition,
    MissionState, PlanStep, Run, SealedOutcome, Step, StepReport,
};
use crate::policy::authority::{ApprovalState, ApprovalStatus, AuthorityConfig, Vote};
use crate::policy::canary::{ReleaseAnalysis, ShadowDiff, ShadowStats};
use crate::policy::decision::DecisionRecord;
use crate::policy::reasoner::ReasonerConfig;
use crate::policy::routing::{DeploymentTarget, RoutingTable};
use crate::secret::SecretName;
use crate::tool::ToolSpec;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    TenantCreated {
        display_name: String,
        public_key: PublicKey,
    },
    /// `public_key` signs from the next entry on. The checkpoint over
    /// this entry is the last that `previous` signs.
    SigningKeyRotated {
        previous: PublicKey,
        public_key: PublicKey,
        key_id: SigningKeyId,
        retirement: Retirement,
    },
    NamespaceCreated {
        namespace: NamespaceId,
        display_name: String,
    },
    CredentialIssued {
        credential: AgentCredential,
    },
    CredentialRevoked {
        serial: u64,
        agent: AgentId,
        reason: String,
    },
    MissionCreated {
        mission: MissionId,
        namespace: NamespaceId,
        agent: AgentId,
        definition: MissionDefinition,
        context: MissionContext,
        context_digest: Digest,
        boundary: MissionBoundary,
        boundary_digest: Digest,
    },
    MissionAdvanced {
        mission: MissionId,
        from: MissionState,
        to: MissionState,
        step: Step,
    },
    MissionClosed {
        mission: MissionId,
        from: MissionState,
        step: Step,
        outcome: SealedOutcome,
    },
    StateDataWritten {
        mission: MissionId,
        key: String,
        value: Option<Value>,
        version: u64,
    },
    ExecutionTokenIssued {
        token: ExecutionToken,
    },
    /// The checkpoint covers the tree up to and including this entry, so
    /// its root is not (and cannot be) part of the payload.
    CheckpointSigned {
        size: u64,
    },
    BundleStored {
        version: Digest,
        policies: Vec<String>,
    },
    ToolRegistered {
        tool: ToolName,
        spec: ToolSpec,
    },
    AuthoritySet {
        namespace: NamespaceId,
        config: AuthorityConfig,
    },
    RoutingSet {
        namespace: NamespaceId,
        routing: RoutingTable,
    },
    ReasonerSet {
        namespace: NamespaceId,
        reasoner: ReasonerConfig,
    },
    /// A secret was put: its name and version, never its value.
    UserCreated {
        user: UserId,
        user_name: String,
        display_name: String,
        email: Option<String>,
        active: bool,
    },
    UserActiveSet {
        user: UserId,
        active: bool,
    },
    /// The user's memberships end and their keys are revoked with them.
    UserDeleted {
        user: UserId,
        groups_left: Vec<GroupId>,
        keys_revoked: Vec<KeyId>,
    },
    GroupCreated {
        group: GroupId,
        display_name: String,
    },
    GroupDeleted {
        group: GroupId,
        members: Vec<UserId>,
    },
    MemberAdded {
        group: GroupId,
        user: UserId,
    },
    MemberRemoved {
        group: GroupId,
        user: UserId,
    },
    /// A key minted for `user` with `roles`; `for_another_user` when the
    /// minter was not that user. Never the key's secret or its hash.
    KeyMinted {
        key: KeyId,
        name: String,
        user: UserId,
        roles: Vec<Role>,
        expires_at: Option<crate::time::Timestamp>,
        minted_by: Actor,
        for_another_user: bool,
    },
    KeyRevoked {
        key: KeyId,
        user: UserId,
    },
    SecretPut {
        name: SecretName,
        version: u32,
    },
    /// A secret was deleted, at the version it had.
    SecretDeleted {
        name: SecretName,
        version: u32,
    },
    StableBundleSet {
        namespace: NamespaceId,
        version: Digest,
    },
    CanaryStarted {
        namespace: NamespaceId,
        version: Digest,
        basis_points: u32,
        analysis: ReleaseAnalysis,
    },
    CanaryPromoted {
        namespace: NamespaceId,
        version: Digest,
        stats: ShadowStats,
    },
    CanaryRolledBack {
        namespace: NamespaceId,
        version: Digest,
        stats: ShadowStats,
    },
    /// The decision on a plan: one record per step and the strictest.
    PlanDecided {
        mission: MissionId,
        plan: Vec<PlanStep>,
        steps: Vec<DecisionRecord>,
        decision: DecisionRecord,
        shadow: Option<ShadowDiff>,
    },
    /// An approval opened: the plan's (`hold` is none), or a step's, which
    /// `held` then describes.
    ApprovalOpened {
        mission: MissionId,
        hold: Option<u32>,
        approval: ApprovalState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        held: Option<HeldStep>,
    },
    /// The key a vote was cast with, and who minted it: a vote cast with
    /// a key an administrator minted for the approver says so here.
    VoteKey {
        mission: MissionId,
        hold: Option<u32>,
        key: KeyId,
        minted_by: Actor,
    },
    VoteRecorded {
        mission: MissionId,
        hold: Option<u32>,
        vote: Vote,
        status: ApprovalStatus,
    },
    ApprovalExpired {
        mission: MissionId,
        hold: Option<u32>,
        status: ApprovalStatus,
        required_level: AuthorityLevel,
    },
    ToolCallDecided {
        mission: MissionId,
        step: u32,
        tool: ToolName,
        decision: DecisionRecord,
        shadow: Option<ShadowDiff>,
    },
    /// A permitted call, committed before the tool is called.
    ToolCallDispatched {
        mission: MissionId,
        step: u32,
        call: u32,
        tool: ToolName,
        idempotency_key: String,
        arguments_digest: Digest,
        target: DeploymentTarget,
        endpoint: String,
        /// Where a saga would send the call to be undone.
        compensation_endpoint: Option<String>,
        /// 1 for the first dispatch; more for retries of the same call.
        dispatch: u32,
    },
    ToolCallCompleted {
        mission: MissionId,
        step: u32,
        call: u32,
        tool: ToolName,
        result: CallResult,
        /// After a failure: when the call may be sent again, or that it
        /// will not be.
        retry: Option<crate::mission::RetryState>,
    },
    ToolCallRefused {
        mission: MissionId,
        step: u32,
        tool: ToolName,
        claimed_agent: Option<AgentId>,
        code: String,
        reason: String,
    },
    /// A step failed for good: the steps completed before it are undone,
    /// latest first.
    SagaStarted {
        mission: MissionId,
        failed_step: u32,
        reason: String,
        compensations: Vec<u32>,
        not_compensable: Vec<u32>,
    },
    CompensationDispatched {
        mission: MissionId,
        step: u32,
        idempotency_key: String,
        endpoint: String,
        dispatch: u32,
    },
    CompensationCompleted {
        mission: MissionId,
        step: u32,
        result: CallResult,
        retry: Option<crate::mission::RetryState>,
    },
    MissionClaimed {
        mission: MissionId,
        worker: WorkerId,
        epoch: u64,
        expires_at: crate::time::Timestamp,
        /// The worker's token for this claim.
        token: ExecutionToken,
        /// The epoch this claim took over from, when its lease had run out
        /// without being released.
        superseded: Option<u64>,
        /// The step the worker resumes from: every earlier step is done.
        next_step: u32,
    },
    HeartbeatRecorded {
        mission: MissionId,
        epoch: u64,
        expires_at: crate::time::Timestamp,
        progress: Option<Value>,
    },
    StepReported {
        mission: MissionId,
        report: StepReport,
    },
    LeaseExpired {
        mission: MissionId,
        epoch: u64,
        worker: WorkerId,
    },
    /// A step overran a timeout. For start-to-close, `worker` lost its
    /// lease of `epoch` and `stalls` counts the step's stalls; `escalated`
    /// says the step now waits for an approver (an `approval_opened`
    /// follows in the same entry).
    StepTimedOut {
        mission: MissionId,
        step: u32,
        timeout: crate::mission::StepTimeout,
        epoch: u64,
        worker: Option<WorkerId>,
        stalls: u32,
        escalated: bool,
    },
    /// The mission's record continues in a new run: `carried` is the
    /// whole mission as the previous run left it (its digest is
    /// `digest`), so the new run replays from here alone.
    RunContinued {
        mission: MissionId,
        run: u32,
        previous: Run,
        digest: Digest,
        carried: CarriedMission,
    },
    /// A refused command that matters to governance (for example an agent
    /// trying to move its mission illegally).
    CommandRejected {
        command: String,
        rejection: Rejection,
    },
}

/// A whole mission inside an event. Events are internally tagged, and
/// serde buffers the fields of such enums in a form that has lost the
/// integer keys of the mission's maps (its holds and calls by step); going
/// through a JSON value keeps them.
#[derive(Clone, Debug, PartialEq)]
pub struct CarriedMission(pub Box<Mission>);

impl Serialize for CarriedMission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for CarriedMission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        serde_json::from_value(value)
            .map(|m| CarriedMission(Box::new(m)))
            .map_err(serde::de::Error::custom)
    }
}

/// Why a step is held, as its approval opens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldStep {
    pub tool: ToolName,
    /// The decision the hold follows from.
    pub decision: DecisionRecord,
    pub kind: HoldKind,
}

impl Event {
    /// The mission the event is about, if any.
    pub fn mission(&self) -> Option<&MissionId> {
        match self {
            Event::MissionCreated { mission, .. }
            | Event::MissionAdvanced { mission, .. }
            | Event::MissionClosed { mission, .. }
            | Event::StateDataWritten { mission, .. }
            | Event::PlanDecided { mission, .. }
            | Event::ApprovalOpened { mission, .. }
            | Event::VoteRecorded { mission, .. }
            | Event::VoteKey { mission, .. }
            | Event::ApprovalExpired { mission, .. }
            | Event::ToolCallDecided { mission, .. }
            | Event::ToolCallDispatched { mission, .. }
            | Event::ToolCallCompleted { mission, .. }
            | Event::ToolCallRefused { mission, .. }
            | Event::SagaStarted { mission, .. }
            | Event::CompensationDispatched { mission, .. }
            | Event::CompensationCompleted { mission, .. }
            | Event::MissionClaimed { mission, .. }
            | Event::HeartbeatRecorded { mission, .. }
            | Event::StepReported { mission, .. }
            | Event::LeaseExpired { mission, .. }
            | Event::StepTimedOut { mission, .. }
            | Event::RunContinued { mission, .. } => Some(mission),
            Event::ExecutionTokenIssued { token } => Some(&token.claims.mission),
            Event::TenantCreated { .. }
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
            | Event::CommandRejected { .. } => None,
        }
    }
}
