//! MissionOutcome: the sealed, signed record of how a mission ended.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{CanonicalError, Domain};
use crate::digest::Digest;
use crate::identity::key_id::{SigningKeyId, serialize_signed};
use crate::identity::keys::{KeyPair, PublicKey, Signature, SignatureError};
use crate::ids::{AgentId, MissionId, NamespaceId, TenantId};
use crate::mission::state::{AbortReason, MissionState};
use crate::time::Timestamp;

pub const OUTCOME_DOMAIN: Domain = Domain::new("aura.mission-outcome/1");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OutcomeKind {
    Succeeded,
    Denied,
    Rejected,
    Cancelled,
    TimedOut,
    Failed,
}

impl From<AbortReason> for OutcomeKind {
    fn from(r: AbortReason) -> Self {
        match r {
            AbortReason::Denied => OutcomeKind::Denied,
            AbortReason::Rejected => OutcomeKind::Rejected,
            AbortReason::Cancelled => OutcomeKind::Cancelled,
            AbortReason::TimedOut => OutcomeKind::TimedOut,
            AbortReason::Failed => OutcomeKind::Failed,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MissionOutcome {
    pub tenant: TenantId,
    pub namespace: NamespaceId,
    pub mission: MissionId,
    pub agent: AgentId,
    pub kind: OutcomeKind,
    /// The state the mission was in when it closed.
    pub left_state: MissionState,
    pub reason: String,
    pub result: Value,
    pub closed_at: Timestamp,
    pub context_digest: Digest,
    pub boundary_digest: Digest,
    pub state_data_digest: Digest,
    /// Hash of the tenant's newest audit entry before the closing one.
    pub audit_head: Digest,
}

/// An outcome with the tenant's signature. Immutable once made.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SealedOutcome {
    outcome: MissionOutcome,
    signature: Signature,
    /// The tenant key that signed it (absent: the tenant's first key).
    #[serde(default)]
    key_id: Option<SigningKeyId>,
}

impl Serialize for SealedOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let key_id = self.key_id.as_ref();
        serialize_signed(
            s,
            "SealedOutcome",
            "outcome",
            &self.outcome,
            &self.signature,
            key_id,
        )
    }
}

impl SealedOutcome {
    pub fn seal(outcome: MissionOutcome, key: &KeyPair) -> Result<Self, CanonicalError> {
        let signature = key.sign(OUTCOME_DOMAIN, &outcome)?;
        let key_id = Some(SigningKeyId::of(&outcome.tenant, &key.public()));
        Ok(SealedOutcome {
            outcome,
            signature,
            key_id,
        })
    }

    pub fn key_id(&self) -> Option<&SigningKeyId> {
        self.key_id.as_ref()
    }

    pub fn outcome(&self) -> &MissionOutcome {
        &self.outcome
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    pub fn verify(&self, key: &PublicKey) -> Result<(), SignatureError> {
        key.verify(OUTCOME_DOMAIN, &self.outcome, &self.signature)
    }
}
