//! Events: what an applied command did. They are returned to the proposer
//! and recorded as the payload of the command's audit entry.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::identity::credential::AgentCredential;
use crate::identity::keys::PublicKey;
use crate::identity::token::ExecutionToken;
use crate::ids::{AgentId, MissionId, NamespaceId};
use crate::machine::rejection::Rejection;
use crate::mission::{MissionBoundary, MissionDefinition, MissionState, SealedOutcome, Step};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    TenantCreated {
        display_name: String,
        public_key: PublicKey,
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
    /// A refused command that matters to governance (for example an agent
    /// trying to move its mission illegally).
    CommandRejected {
        command: String,
        rejection: Rejection,
    },
}
