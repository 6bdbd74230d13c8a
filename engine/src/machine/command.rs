//! Commands: the only way engine state changes. Everything nondeterministic
//! (time, ids, key material) is chosen by the proposer and carried here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::actor::Actor;
use crate::digest::Digest;
use crate::directory::{DirectoryChange, KeyId};
use crate::identity::keys::PublicKey;
use crate::identity::token::ParameterRules;
use crate::identity::{Retirement, TenantSeed};
use crate::ids::{
    AgentId, MissionId, NamespaceId, OrgUnitId, TenantId, TokenId, ToolName, UserId, WorkerId,
};
use crate::machine::state::ConfigPart;
use crate::mission::{
    AbortReason, CallResult, MissionContext, MissionDefinition, PlanStep, RuntimeLimits, Step,
    StepOutcome, StepTimeout,
};
use crate::policy::authority::AuthorityConfig;
use crate::policy::bundle::BundleSource;
use crate::policy::reasoner::ReasonerConfig;
use crate::policy::routing::RoutingTable;
use crate::secret::{Sealed, SecretName};
use crate::time::{Millis, Timestamp};
use crate::tool::ToolSpec;

/// A command for one tenant. Handlers only ever see that tenant's state,
/// which is what makes cross-tenant effects impossible by construction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub tenant: TenantId,
    /// When the proposer accepted the command.
    pub at: Timestamp,
    pub actor: Actor,
    pub body: CommandBody,
    /// Applied only if this still holds; refused (changing nothing)
    /// otherwise. How `If-Match` stays atomic however many API nodes
    /// propose at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precondition: Option<Precondition>,
}

/// A condition on the state a command was written against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Precondition {
    /// The namespace's configuration part is still at this version.
    ConfigVersion {
        namespace: NamespaceId,
        part: ConfigPart,
        version: Digest,
    },
}

/// 32 bytes from a cryptographic random source, chosen by the proposer.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSeed(pub [u8; 32]);

impl fmt::Debug for SigningSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSeed(<redacted>)")
    }
}

impl Serialize for SigningSeed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Digest(self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for SigningSeed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SigningSeed(Digest::deserialize(d)?.0))
    }
}

/// The one forward move of a mission that needs no decision and no worker.
/// Leaving PLANNING takes a plan (`SubmitPlan`); leaving WAITING_APPROVAL
/// takes policy or approvers (`SubmitPlan`, `DecideApproval`), and the
/// approved mission enters its namespace's queue in the same command;
/// starting takes a worker's claim (`ClaimMission`) and completing takes
/// its last step report (`ReportStep`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Advance {
    BeginPlanning,
}

impl From<Advance> for Step {
    fn from(a: Advance) -> Step {
        match a {
            Advance::BeginPlanning => Step::BeginPlanning,
        }
    }
}

/// How a mission is closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Closing {
    /// EXECUTED → CLOSED with the mission's result.
    Seal { result: Value },
    /// Any abnormal end, with a human-readable reason.
    Abort { reason: AbortReason, note: String },
}

impl Closing {
    pub fn step(&self) -> Step {
        match self {
            Closing::Seal { .. } => Step::Seal,
            Closing::Abort { reason, .. } => Step::Abort(*reason),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CommandBody {
    CreateTenant {
        display_name: String,
        /// Sealed under the cluster's KEK by the proposer; plain only in
        /// logs written before sealing, and in engine-only tests.
        signing_key_seed: TenantSeed,
    },
    /// Puts a new signing key in force (sealed under the cluster's KEK
    /// by the proposer, as a tenant's first key is). The outgoing key
    /// signs a checkpoint over the entry that names its successor, then
    /// stays published for verifying what it signed.
    RotateSigningKey {
        seed: TenantSeed,
        retirement: Retirement,
        /// The administrator's API key; none when the platform acts.
        key: Option<KeyId>,
    },
    CreateNamespace {
        namespace: NamespaceId,
        display_name: String,
    },
    /// Registers the agent on its first credential.
    IssueCredential {
        agent: AgentId,
        org_unit: OrgUnitId,
        /// The accountable human; separation of duties keeps them from
        /// approving the agent's missions.
        owner: Option<UserId>,
        public_key: PublicKey,
        not_before: Timestamp,
        not_after: Timestamp,
    },
    RevokeCredential {
        serial: u64,
        reason: String,
    },
    CreateMission {
        namespace: NamespaceId,
        mission: MissionId,
        agent: AgentId,
        definition: MissionDefinition,
        context: MissionContext,
        limits: RuntimeLimits,
    },
    AdvanceMission {
        mission: MissionId,
        step: Advance,
    },
    CloseMission {
        mission: MissionId,
        closing: Closing,
    },
    /// Writes (or, with no value, deletes) one key of the mission's
    /// working state.
    WriteStateData {
        mission: MissionId,
        key: String,
        value: Option<Value>,
    },
    IssueExecutionToken {
        mission: MissionId,
        token: TokenId,
        tools: BTreeSet<ToolName>,
        parameters: BTreeMap<ToolName, ParameterRules>,
        expires_at: Timestamp,
    },
    /// Appends a checkpoint entry and signs the tree including it.
    SignCheckpoint,
    /// Stores a policy bundle (validated strictly; addressed by digest).
    PutPolicyBundle {
        source: BundleSource,
    },
    /// Registers or updates a tool's risk, clearance and placement.
    RegisterTool {
        tool: ToolName,
        spec: ToolSpec,
    },
    SetAuthority {
        namespace: NamespaceId,
        config: AuthorityConfig,
    },
    SetRouting {
        namespace: NamespaceId,
        routing: RoutingTable,
    },
    /// Puts a secret of the tenant's, sealed by the API layer: a new one
    /// at version 1, an existing one at its next version.
    PutSecret {
        name: SecretName,
        sealed: Sealed,
    },
    /// Deletes a secret.
    DeleteSecret {
        name: SecretName,
    },
    /// Which reasoner plans the namespace's missions.
    SetReasoner {
        namespace: NamespaceId,
        reasoner: ReasonerConfig,
    },
    SetStableBundle {
        namespace: NamespaceId,
        version: Digest,
    },
    /// Starts a canary release after analysing recent decisions against it.
    StartCanary {
        namespace: NamespaceId,
        version: Digest,
        /// Share of new missions, in basis points (1 % = 100).
        basis_points: u32,
    },
    PromoteCanary {
        namespace: NamespaceId,
    },
    RollbackCanary {
        namespace: NamespaceId,
    },
    /// PLANNING → WAITING_APPROVAL with a plan; policy decides each step and
    /// the strictest decision permits (→ APPROVED), escalates (waits for
    /// approvers) or denies (→ CLOSED).
    SubmitPlan {
        mission: MissionId,
        steps: Vec<PlanStep>,
    },
    /// An approver's vote on the mission (`hold: None`) or on a held step.
    /// The approver is the command's actor, with their groups as the
    /// proposer read them. Written by versions whose directory was not
    /// replicated, and replayed as it was; votes are now `CastVote`.
    DecideApproval {
        mission: MissionId,
        hold: Option<u32>,
        approve: bool,
        groups: BTreeSet<String>,
        reason: String,
    },
    /// An approver's vote, cast with the API key they authenticated with.
    /// The engine checks the key (theirs, usable, with the approver role)
    /// and takes their groups from the tenant's directory, so every node
    /// and every replay counts the vote alike; the audit entry names the
    /// key and who minted it.
    CastVote {
        mission: MissionId,
        hold: Option<u32>,
        approve: bool,
        reason: String,
        key: KeyId,
    },
    /// A change to the tenant's directory. A user makes it with the admin
    /// key they authenticated with; the platform (a tenant's first
    /// administrator) with none.
    ChangeDirectory {
        change: DirectoryChange,
        key: Option<KeyId>,
    },
    /// The runtime's timer: an approval's deadline has passed.
    ExpireApproval {
        mission: MissionId,
        hold: Option<u32>,
    },
    /// Decides one tool call during execution, with its actual arguments.
    EvaluateToolCall {
        mission: MissionId,
        step: u32,
        tool: ToolName,
        arguments: Value,
    },
    /// The gateway's request to call a tool for an agent whose DualToken
    /// verified: decided like `EvaluateToolCall` and, when permitted,
    /// recorded as dispatched to the endpoint the data may reach, before
    /// the tool is called.
    DispatchToolCall {
        mission: MissionId,
        step: u32,
        call: u32,
        tool: ToolName,
        arguments: Value,
        credential_serial: u64,
        token: TokenId,
    },
    /// What a dispatched call came back with.
    CompleteToolCall {
        mission: MissionId,
        step: u32,
        call: u32,
        result: CallResult,
    },
    /// The gateway refused a call before deciding it (a DualToken failure,
    /// arguments outside the tool's schema): recorded so that attempts are
    /// audited as well as calls.
    RefuseToolCall {
        mission: MissionId,
        step: u32,
        tool: ToolName,
        /// The agent the request claimed to be; unproven when the
        /// signature is what failed.
        claimed_agent: Option<AgentId>,
        code: String,
        reason: String,
    },
    /// A worker takes the mission: from its namespace's queue
    /// (PENDING_EXECUTION → IN_PROGRESS), or over from a worker whose lease
    /// ran out. The claim raises the epoch and issues the worker an
    /// ExecutionToken (`token`) for the mission's tools.
    /// A step overran a timeout (its tool's or its plan step's): for
    /// start-to-close, the worker holding `epoch` loses the step to the
    /// next worker, or, past its stalls, to an approver; for
    /// schedule-to-start, the step nobody claimed waits for an approver.
    TimeOutStep {
        mission: MissionId,
        step: u32,
        timeout: StepTimeout,
        epoch: u64,
    },
    ClaimMission {
        mission: MissionId,
        worker: WorkerId,
        lease: Millis,
        token: TokenId,
    },
    /// The lease holder is alive: the lease runs `lease` from now, and the
    /// progress details (if any) are kept.
    Heartbeat {
        mission: MissionId,
        epoch: u64,
        lease: Millis,
        progress: Option<Value>,
    },
    /// The lease holder finished a step. The last step's success moves the
    /// mission to EXECUTED; a failure closes it as failed.
    ReportStep {
        mission: MissionId,
        epoch: u64,
        step: u32,
        outcome: StepOutcome,
    },
    /// The runtime's timer: the lease of `epoch` ran out unrenewed, so the
    /// mission goes back to its namespace's queue.
    ExpireLease {
        mission: MissionId,
        epoch: u64,
    },
    /// The runtime's timer: the mission's current run of its record is
    /// full, so the mission is carried into a new run.
    ContinueMission {
        mission: MissionId,
    },
    /// The runtime sends the saga's current compensation (again, after a
    /// failure whose retry is due, or after a lost answer).
    DispatchCompensation {
        mission: MissionId,
        step: u32,
    },
    /// What the compensation endpoint answered; the last compensation
    /// closes the mission as failed.
    CompleteCompensation {
        mission: MissionId,
        step: u32,
        result: CallResult,
    },
}

/// The audit kind of the entry that starts a mission's new run.
pub const CONTINUE_AS_NEW_KIND: &str = "mission.continue_as_new";

impl CommandBody {
    /// The audit kind recorded for this command.
    pub fn kind(&self) -> &'static str {
        match self {
            CommandBody::CreateTenant { .. } => "tenant.create",
            CommandBody::RotateSigningKey { .. } => "tenant.signing_key_rotate",
            CommandBody::CreateNamespace { .. } => "namespace.create",
            CommandBody::IssueCredential { .. } => "credential.issue",
            CommandBody::RevokeCredential { .. } => "credential.revoke",
            CommandBody::CreateMission { .. } => "mission.create",
            CommandBody::AdvanceMission { .. } => "mission.advance",
            CommandBody::CloseMission { .. } => "mission.close",
            CommandBody::WriteStateData { .. } => "mission.state_data",
            CommandBody::IssueExecutionToken { .. } => "token.issue",
            CommandBody::SignCheckpoint => "audit.checkpoint",
            CommandBody::PutPolicyBundle { .. } => "policy.bundle",
            CommandBody::RegisterTool { .. } => "tool.register",
            CommandBody::SetAuthority { .. } => "namespace.authority",
            CommandBody::SetRouting { .. } => "namespace.routing",
            CommandBody::SetReasoner { .. } => "namespace.reasoner",
            CommandBody::PutSecret { .. } => "secret.put",
            CommandBody::DeleteSecret { .. } => "secret.delete",
            CommandBody::SetStableBundle { .. } => "policy.stable",
            CommandBody::StartCanary { .. } => "policy.canary_start",
            CommandBody::PromoteCanary { .. } => "policy.canary_promote",
            CommandBody::RollbackCanary { .. } => "policy.canary_rollback",
            CommandBody::SubmitPlan { .. } => "mission.plan",
            CommandBody::DecideApproval { .. } | CommandBody::CastVote { .. } => "mission.approval",
            CommandBody::ChangeDirectory { change, .. } => change.kind(),
            CommandBody::ExpireApproval { .. } => "mission.approval_expired",
            CommandBody::EvaluateToolCall { .. } => "mission.tool_call",
            CommandBody::DispatchToolCall { .. } => "tool_call.dispatch",
            CommandBody::CompleteToolCall { .. } => "tool_call.complete",
            CommandBody::RefuseToolCall { .. } => "tool_call.refused",
            CommandBody::ClaimMission { .. } => "execution.claim",
            CommandBody::Heartbeat { .. } => "execution.heartbeat",
            CommandBody::ReportStep { .. } => "execution.report",
            CommandBody::ExpireLease { .. } => "execution.lease_expired",
            CommandBody::ContinueMission { .. } => CONTINUE_AS_NEW_KIND,
            CommandBody::TimeOutStep { .. } => "execution.step_timed_out",
            CommandBody::DispatchCompensation { .. } => "saga.dispatch",
            CommandBody::CompleteCompensation { .. } => "saga.complete",
        }
    }

    /// The mission the command is about, if any.
    pub fn mission(&self) -> Option<&MissionId> {
        match self {
            CommandBody::CreateMission { mission, .. }
            | CommandBody::AdvanceMission { mission, .. }
            | CommandBody::CloseMission { mission, .. }
            | CommandBody::WriteStateData { mission, .. }
            | CommandBody::IssueExecutionToken { mission, .. }
            | CommandBody::SubmitPlan { mission, .. }
            | CommandBody::DecideApproval { mission, .. }
            | CommandBody::CastVote { mission, .. }
            | CommandBody::ExpireApproval { mission, .. }
            | CommandBody::EvaluateToolCall { mission, .. }
            | CommandBody::DispatchToolCall { mission, .. }
            | CommandBody::CompleteToolCall { mission, .. }
            | CommandBody::RefuseToolCall { mission, .. }
            | CommandBody::ClaimMission { mission, .. }
            | CommandBody::Heartbeat { mission, .. }
            | CommandBody::ReportStep { mission, .. }
            | CommandBody::ExpireLease { mission, .. }
            | CommandBody::ContinueMission { mission }
            | CommandBody::TimeOutStep { mission, .. }
            | CommandBody::DispatchCompensation { mission, .. }
            | CommandBody::CompleteCompensation { mission, .. } => Some(mission),
            _ => None,
        }
    }
}
