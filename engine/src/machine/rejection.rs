//! Why a command was refused. A refused command changes nothing, except
//! that refusals which matter to governance are recorded in the audit chain.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::directory::{KeyId, KeyRefusal};
use crate::ids::{
    AgentId, GroupId, MissionId, NamespaceId, TenantId, TokenId, ToolName, UserId, WorkerId,
};
use crate::machine::state::ConfigPart;
use crate::mission::{AbortReason, StepTimeout};
use crate::mission::{
    ContextError, DefinitionError, IllegalTransition, MissionState, StateDataError,
};
use crate::policy::authority::VoteRefusal;
use crate::policy::bundle::BundleError;
use crate::secret::SecretName;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code", content = "detail")]
pub enum Rejection {
    #[error("tenant `{0}` already exists")]
    TenantExists(TenantId),
    #[error("tenant `{0}` does not exist")]
    UnknownTenant(TenantId),
    #[error("namespace `{0}` already exists")]
    NamespaceExists(NamespaceId),
    #[error("namespace `{0}` does not exist")]
    UnknownNamespace(NamespaceId),
    #[error("agent `{0}` is not registered")]
    UnknownAgent(AgentId),
    #[error("agent `{0}` has no credential that is valid and unrevoked now")]
    NoActiveCredential(AgentId),
    #[error("agent `{agent}` is already bound to org unit `{bound}`")]
    OrgUnitMismatch { agent: AgentId, bound: String },
    #[error("credential serial {0} does not exist")]
    UnknownCredential(u64),
    #[error("credential serial {0} is already revoked")]
    AlreadyRevoked(u64),
    #[error("a credential's validity must end after it starts")]
    EmptyValidity,
    #[error("mission `{0}` already exists")]
    MissionExists(MissionId),
    #[error("mission `{0}` does not exist")]
    UnknownMission(MissionId),
    #[error("user `{0}` already exists")]
    UserExists(UserId),
    #[error("user name `{0}` is taken")]
    UserNameTaken(String),
    #[error("user `{0}` does not exist")]
    UnknownUser(UserId),
    #[error("user `{0}` is not active")]
    InactiveUser(UserId),
    #[error("group `{0}` already exists")]
    GroupExists(GroupId),
    #[error("group `{0}` does not exist")]
    UnknownGroup(GroupId),
    #[error("user `{user}` is not a member of group `{group}`")]
    NotMember { group: GroupId, user: UserId },
    #[error("key `{0}` already exists")]
    KeyExists(KeyId),
    #[error("key `{0}` does not exist or is already revoked")]
    UnknownKey(KeyId),
    #[error("key `{key}` cannot act: {refusal}")]
    KeyRefused { key: KeyId, refusal: KeyRefusal },
    #[error("only an administrator, with their key, or the platform changes the directory")]
    NotDirectoryAdmin,
    #[error("an administrator cannot remove or deactivate their own user")]
    OwnUser,
    #[error(
        "only an administrator, with their key, or the platform rotates the tenant's signing key"
    )]
    NotSigningKeyAdmin,
    #[error("the new signing key is one the tenant has signed with before")]
    SigningKeyReused,
    #[error("the tenant has signed with {max} keys, the most it may keep published")]
    TooManySigningKeys { max: usize },
    #[error(
        "a tenant's key needs at least one tenant role, and a platform key platform_admin only"
    )]
    KeyRoles,
    #[error("the platform's last working key cannot be revoked: rotate it instead")]
    LastPlatformKey,
    #[error("the key's expiry is not after its minting")]
    KeyExpiry,
    #[error("a directory holds at most {max} users, groups and keys each")]
    DirectoryFull { max: usize },
    #[error("secret `{0}` does not exist")]
    UnknownSecret(SecretName),
    #[error("a tenant holds at most {max} secrets")]
    TooManySecrets { max: usize },
    #[error("a sealed secret takes at most {max} bytes")]
    SecretTooLarge { max: usize },
    #[error(transparent)]
    IllegalTransition(IllegalTransition),
    #[error("agent `{actor}` is not the agent of this mission")]
    NotMissionAgent { actor: AgentId },
    #[error("the mission's deadline {deadline} has not passed yet")]
    DeadlineNotReached { deadline: Timestamp },
    #[error("the mission's deadline {deadline} has passed; it can only time out")]
    DeadlinePassed { deadline: Timestamp },
    #[error("mission is {0}; its working state can no longer change")]
    StateDataFrozen(MissionState),
    #[error("invalid mission definition: {0}")]
    Definition(DefinitionError),
    #[error("invalid mission context: {0}")]
    Context(ContextError),
    #[error("invalid state data write: {0}")]
    StateData(StateDataError),
    #[error(
        "runtime limits must be between 1 and 10000 steps, 1 and 100000 tool calls, 8 and 1000000 entries per run and 4096 and 1073741824 bytes per run"
    )]
    LimitsOutOfRange,
    #[error("execution token `{0}` already exists")]
    TokenExists(TokenId),
    #[error(
        "execution tokens are issued to missions that are APPROVED, PENDING_EXECUTION or IN_PROGRESS, not {0}"
    )]
    TokenNotIssuable(MissionState),
    #[error("tool `{0}` is outside the mission's frozen boundary")]
    ToolOutsideBoundary(ToolName),
    #[error("an execution token must allow at least one tool")]
    NoTools,
    #[error("the token would expire at {expires_at}, after the mission's deadline {deadline}")]
    TokenOutlivesMission {
        expires_at: Timestamp,
        deadline: Timestamp,
    },
    #[error("the token's expiry must be after its issue time")]
    TokenAlreadyExpired,
    #[error("parameter rules for `{tool}`: {problem}")]
    BadParameterRules { tool: ToolName, problem: String },
    #[error("{field} must be 1 to {max} characters")]
    BadText { field: String, max: usize },
    #[error("only the platform may create tenants")]
    NotPlatform,
    /// Why the seed did not open ([`crate::identity::SealError`]).
    #[error("{0}")]
    SealedKey(String),
    #[error("the value cannot be encoded canonically: {0}")]
    Encoding(String),
    #[error("{0}")]
    BadBundle(BundleError),
    #[error("policy bundle {0} has not been uploaded")]
    UnknownBundle(Digest),
    #[error("invalid configuration: {0}")]
    BadConfig(String),
    #[error("a canary release is running in this namespace; promote or roll it back first")]
    CanaryRunning,
    #[error("no canary release is running in this namespace")]
    NoCanary,
    #[error("a canary needs a stable bundle to compare against")]
    NoStableBundle,
    #[error("a plan needs 1 to {max} steps, this one has {steps}")]
    PlanSize { steps: usize, max: u32 },
    #[error("step {step}: arguments must be a JSON object")]
    ArgumentsNotObject { step: usize },
    #[error("{} only follows from a policy decision or from approvers", .0.as_str())]
    ReservedOutcome(AbortReason),
    #[error("only a user from the directory can approve or reject")]
    ApproverNotUser,
    #[error("{0}")]
    Vote(VoteRefusal),
    #[error("there is no pending approval {}", .hold.map(|h| format!("for step {h}")).unwrap_or_else(|| "for the mission".into()))]
    NoPendingApproval { hold: Option<u32> },
    #[error("the approval deadline {deadline} has not passed yet")]
    ApprovalNotDue { deadline: Timestamp },
    #[error("the {part:?} configuration changed since it was read: its version is now {current}")]
    StaleConfig { part: ConfigPart, current: Digest },
    #[error("tool calls are decided only while the mission is IN_PROGRESS, not {0}")]
    NotExecuting(MissionState),
    #[error(
        "credential serial {serial} is not a valid, unrevoked credential of the mission's agent"
    )]
    CredentialNotValid { serial: u64 },
    #[error("execution token `{token}` is not a live token of this mission")]
    TokenNotValid { token: TokenId },
    #[error("tool `{0}` is governed only: it has no invocation for the gateway to call")]
    ToolNotCallable(ToolName),
    #[error("step {step} call {call} already has its result; a new call needs a new call number")]
    CallAlreadyCompleted { step: u32, call: u32 },
    #[error(
        "step {step} call {call} was dispatched with other arguments; a retry must repeat them"
    )]
    CallArgumentsChanged { step: u32, call: u32 },
    #[error("step {step} call {call} was not dispatched or already has its result")]
    NoDispatchedCall { step: u32, call: u32 },
    #[error("the mission may make at most {max} tool calls")]
    ToolCallLimit { max: u32 },
    #[error("the tool's answer is larger than {max} bytes")]
    ResultTooLarge { max: usize },
    #[error(
        "mission is {0}; only PENDING_EXECUTION, IN_PROGRESS and EXECUTED missions are claimed"
    )]
    NotClaimable(MissionState),
    #[error("worker `{worker}` holds the mission until {expires_at}")]
    LeaseHeld {
        worker: WorkerId,
        expires_at: Timestamp,
    },
    #[error("a lease lasts 1 to 600 seconds, not {ms} ms")]
    LeaseOutOfRange { ms: u64 },
    #[error("epoch {epoch} was superseded by a later claim; the mission's epoch is {current}")]
    StaleEpoch { epoch: u64, current: u64 },
    #[error("the lease of epoch {epoch} has run out; claim the mission again")]
    LeaseLost { epoch: u64 },
    #[error("the lease runs until {expires_at}; it has not expired")]
    LeaseNotExpired { expires_at: Timestamp },
    #[error("progress details take {bytes} bytes; the limit is {max}")]
    ProgressTooLarge { bytes: usize, max: usize },
    #[error("step {step} is not the next step; the mission is at step {expected}")]
    StepOutOfOrder { step: u32, expected: u32 },
    #[error("step {step} call {call} did not succeed as a call of the plan's tool `{tool}`")]
    StepCallNotSucceeded {
        step: u32,
        call: u32,
        tool: ToolName,
    },
    #[error("policy has not permitted a call of `{tool}` for step {step}")]
    StepNotPermitted { step: u32, tool: ToolName },
    #[error("step {step} call {call} failed; its next attempt is due at {not_before}")]
    RetryNotDue {
        step: u32,
        call: u32,
        not_before: Timestamp,
    },
    #[error("step {step} call {call} failed {attempts} times and is not retried: {why}")]
    RetriesExhausted {
        step: u32,
        call: u32,
        attempts: u32,
        why: String,
    },
    #[error(
        "the mission is undoing its completed steps after a failure; it closes when that is done"
    )]
    Compensating,
    #[error("the mission has no compensation under way")]
    NotCompensating,
    #[error("step {current} is compensated first (latest first), not step {step}")]
    CompensationOutOfOrder { step: u32, current: u32 },
    #[error("plan step {step}: {reason}")]
    BadStep { step: usize, reason: String },
    #[error("step {step} has no {timeout} timeout")]
    NoStepTimeout { step: u32, timeout: StepTimeout },
    #[error("step {step}'s {timeout} timeout falls due at {due_at}")]
    StepNotDue {
        step: u32,
        timeout: StepTimeout,
        due_at: Timestamp,
    },
    #[error("step {step} stalled and waits for an approver")]
    StepHeld { step: u32 },
    #[error(
        "the mission's run holds {entries} entries of {bytes} bytes; it continues as new at {max_entries} entries or {max_bytes} bytes"
    )]
    RunNotFull {
        entries: u64,
        bytes: u64,
        max_entries: u32,
        max_bytes: u64,
    },
    #[error("the mission is closed: its record is complete")]
    MissionClosed,
}

impl Rejection {
    /// Refusals worth a permanent record: attempts against a governed
    /// mission or credential, as opposed to malformed setup requests.
    pub fn is_audited(&self) -> bool {
        matches!(
            self,
            Rejection::IllegalTransition(_)
                | Rejection::NotMissionAgent { .. }
                | Rejection::DeadlinePassed { .. }
                | Rejection::StateDataFrozen(_)
                | Rejection::TokenNotIssuable(_)
                | Rejection::ToolOutsideBoundary(_)
                | Rejection::TokenOutlivesMission { .. }
                | Rejection::NoActiveCredential(_)
                | Rejection::Vote(_)
                | Rejection::KeyRefused { .. }
                | Rejection::NotDirectoryAdmin
                | Rejection::NotSigningKeyAdmin
                | Rejection::ReservedOutcome(_)
                | Rejection::ApproverNotUser
                | Rejection::NotExecuting(_)
                | Rejection::CredentialNotValid { .. }
                | Rejection::TokenNotValid { .. }
                | Rejection::CallArgumentsChanged { .. }
                | Rejection::ToolCallLimit { .. }
                | Rejection::StaleEpoch { .. }
                | Rejection::LeaseLost { .. }
                | Rejection::StepNotPermitted { .. }
                | Rejection::RetriesExhausted { .. }
                | Rejection::Compensating
        )
    }
}
