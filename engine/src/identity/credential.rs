//! AgentIdentity credentials: a tenant's signed statement that an agent,
//! bound to an org unit, holds a given Ed25519 key for a period of time.

use serde::{Deserialize, Serialize};

use crate::canonical::{CanonicalError, Domain};
use crate::identity::key_id::{SigningKeyId, serialize_signed};
use crate::identity::keys::{KeyPair, PublicKey, Signature, SignatureError};
use crate::ids::{AgentId, OrgUnitId, TenantId};
use crate::time::Timestamp;

pub const CREDENTIAL_DOMAIN: Domain = Domain::new("aura.agent-credential/1");

/// What the tenant attests about an agent. Field order is part of the
/// signed encoding; changing it means a new [`CREDENTIAL_DOMAIN`] version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentIdentityClaims {
    pub tenant: TenantId,
    pub agent: AgentId,
    pub org_unit: OrgUnitId,
    pub agent_key: PublicKey,
    /// Unique per tenant; revocation names the serial.
    pub serial: u64,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

/// A signed AgentIdentity credential.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentCredential {
    pub claims: AgentIdentityClaims,
    pub signature: Signature,
    /// The tenant key that signed it (absent: the tenant's first key,
    /// which signed everything made before keys were named).
    #[serde(default)]
    pub key_id: Option<SigningKeyId>,
}

impl Serialize for AgentCredential {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let key_id = self.key_id.as_ref();
        serialize_signed(
            s,
            "AgentCredential",
            "claims",
            &self.claims,
            &self.signature,
            key_id,
        )
    }
}

impl AgentCredential {
    pub fn issue(
        claims: AgentIdentityClaims,
        tenant_key: &KeyPair,
    ) -> Result<Self, CanonicalError> {
        let signature = tenant_key.sign(CREDENTIAL_DOMAIN, &claims)?;
        let key_id = Some(SigningKeyId::of(&claims.tenant, &tenant_key.public()));
        Ok(AgentCredential {
            claims,
            signature,
            key_id,
        })
    }

    pub fn verify_signature(&self, tenant_key: &PublicKey) -> Result<(), SignatureError> {
        tenant_key.verify(CREDENTIAL_DOMAIN, &self.claims, &self.signature)
    }
}
