//! A tenant's signing keys: listed for anyone who verifies what the
//! tenant signed, rotated by its administrators. Only the public halves
//! ever leave the engine; a new key's seed is sealed under the cluster's
//! KEK before it is proposed, as a tenant's first key is.

use aura_engine::identity::{
    KeyPair, PublicKey, RetiredKey, Retirement, SealedSeed, SigningKeyId, TenantSeed,
};
use aura_engine::ids::TenantId;
use aura_engine::machine::{CommandBody, TenantState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scope::{Admin, Member, TenantScope};
use super::{App, AppError};

/// One of the keys a tenant signed with.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SigningKey {
    /// What credentials, tokens, outcomes and checkpoints name it by.
    pub key_id: SigningKeyId,
    pub public_key: PublicKey,
    /// Whether it signs from now on.
    pub current: bool,
    /// Whether credentials and tokens it signed are still accepted: the
    /// current key, and keys retired on schedule.
    pub honoured: bool,
    /// Why it was retired; absent for the current key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retirement: Option<Retirement>,
    /// RFC 3339; absent for the current key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
    /// The size of the audit tree its last checkpoint covers; absent for
    /// the current key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub last_checkpoint: Option<u64>,
}

/// A rotation of the tenant's signing key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSigningKey {
    /// `scheduled` keeps credentials and tokens the old key signed valid
    /// until they expire; `compromised` refuses them from now on.
    pub retirement: Retirement,
}

fn retired(r: &RetiredKey) -> SigningKey {
    SigningKey {
        key_id: r.key_id,
        public_key: r.public_key,
        current: false,
        honoured: r.retirement == Retirement::Scheduled,
        retirement: Some(r.retirement),
        retired_at: Some(r.retired_at.to_rfc3339()),
        last_checkpoint: Some(r.last_checkpoint),
    }
}

fn current(t: &TenantState) -> SigningKey {
    SigningKey {
        key_id: t.signing_key_id(),
        public_key: t.public_key(),
        current: true,
        honoured: true,
        retirement: None,
        retired_at: None,
        last_checkpoint: None,
    }
}

/// A fresh signing key for `tenant`, sealed under the cluster's KEK: only
/// the sealed seed leaves this function, so the log, every snapshot and
/// the cluster link carry nothing a disk or a wire could sign with.
pub(crate) fn fresh_seed(app: &App, tenant: &TenantId) -> TenantSeed {
    let (mut seed, mut nonce) = ([0u8; 32], [0u8; 12]);
    getrandom::fill(&mut seed).expect("the OS random source works");
    getrandom::fill(&mut nonce).expect("the OS random source works");
    let pair = KeyPair::from_seed(seed);
    TenantSeed::Sealed(SealedSeed::seal(app.engine().kek(), tenant, &pair, nonce))
}

/// Every key the tenant signed with, oldest first; the last is current.
pub fn list(app: &App, scope: &TenantScope<Member>) -> Result<Vec<SigningKey>, AppError> {
    scope.read(app, |t| {
        t.retired_keys()
            .iter()
            .map(retired)
            .chain([current(t)])
            .collect()
    })
}

/// Puts a new signing key in force; the old one signs a last checkpoint
/// over the rotation and stays published.
pub async fn rotate(
    app: &App,
    scope: &TenantScope<Admin>,
    req: RotateSigningKey,
) -> Result<SigningKey, AppError> {
    let body = CommandBody::RotateSigningKey {
        seed: fresh_seed(app, &scope.tenant),
        retirement: req.retirement,
        key: Some(scope.caller.key_id.clone()),
    };
    app.propose(&scope.tenant, scope.actor(), body).await?;
    scope.read(app, current)
}
