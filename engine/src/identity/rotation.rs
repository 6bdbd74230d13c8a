//! A tenant's signing keys over time. Rotation puts a new key in force
//! from a point in the audit chain on; the keys before it stay published
//! so that what they signed still verifies. The chain itself records each
//! rotation, and the outgoing key signs a checkpoint over the entry that
//! names its successor, so trust passes from one key to the next through
//! signatures an auditor can check (`aura audit verify`).

use serde::{Deserialize, Serialize};

use crate::identity::key_id::SigningKeyId;
use crate::identity::keys::PublicKey;
use crate::ids::TenantId;
use crate::time::Timestamp;

/// Why a key was retired, which says whether what it signed still holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Retirement {
    /// Routine rotation: credentials and tokens the old key signed stay
    /// valid until they expire.
    Scheduled,
    /// The old key may be in other hands: credentials and tokens it signed
    /// are refused from the rotation on, so agents need new credentials.
    /// Checkpoints it signed still verify, since the chain records the
    /// point after which it signs nothing.
    Compromised,
}

/// A key that signed before the tenant's current one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetiredKey {
    pub public_key: PublicKey,
    pub key_id: SigningKeyId,
    pub retired_at: Timestamp,
    /// The size of the audit tree its last checkpoint covers: the
    /// checkpoint over the rotation entry that names its successor.
    pub last_checkpoint: u64,
    pub retirement: Retirement,
}

/// The keys whose credentials and tokens a tenant still honours, as the
/// gateway checks them outside the state's lock.
#[derive(Clone, Debug)]
pub struct Keyring {
    /// Oldest first; the first also stands for "no key named", which is
    /// what everything signed before keys were named says.
    keys: Vec<(SigningKeyId, PublicKey, Retirement)>,
}

/// Why a keyring gave no key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotHonoured {
    /// No key of the tenant has that id: to a caller, the same as a
    /// signature that does not verify.
    Unknown,
    /// The key was retired as compromised.
    Compromised,
}

impl Keyring {
    /// One key, which is all a tenant that never rotated has.
    pub fn single(tenant: &TenantId, key: PublicKey) -> Keyring {
        Keyring::of((SigningKeyId::of(tenant, &key), key), &[])
    }

    /// `current` and the keys retired before it, oldest first.
    pub fn of(current: (SigningKeyId, PublicKey), retired: &[RetiredKey]) -> Keyring {
        let retired = retired
            .iter()
            .map(|r| (r.key_id, r.public_key, r.retirement));
        // The current key is honoured; "scheduled" says just that.
        let current = (current.0, current.1, Retirement::Scheduled);
        Keyring {
            keys: retired.chain([current]).collect(),
        }
    }

    /// The key named `id` (no id: the tenant's first key), if honoured.
    pub fn get(&self, id: Option<&SigningKeyId>) -> Result<PublicKey, NotHonoured> {
        let found = match id {
            None => self.keys.first(),
            Some(id) => self.keys.iter().find(|(k, ..)| k == id),
        };
        match found {
            None => Err(NotHonoured::Unknown),
            Some((_, _, Retirement::Compromised)) => Err(NotHonoured::Compromised),
            Some((_, key, Retirement::Scheduled)) => Ok(*key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::keys::KeyPair;

    fn retired(seed: u8, retirement: Retirement) -> RetiredKey {
        let public_key = KeyPair::from_seed([seed; 32]).public();
        RetiredKey {
            public_key,
            key_id: SigningKeyId::named("aura-acme", &public_key),
            retired_at: Timestamp(seed as i64),
            last_checkpoint: seed as u64,
            retirement,
        }
    }

    #[test]
    fn a_compromised_key_is_not_honoured_and_unnamed_means_the_first_key() {
        let current = KeyPair::from_seed([9; 32]).public();
        let cur = (SigningKeyId::named("aura-acme", &current), current);
        let (a, b) = (
            retired(1, Retirement::Scheduled),
            retired(2, Retirement::Compromised),
        );
        let ring = Keyring::of(cur, &[a.clone(), b.clone()]);
        assert_eq!(ring.get(None), Ok(a.public_key));
        assert_eq!(ring.get(Some(&a.key_id)), Ok(a.public_key));
        assert_eq!(ring.get(Some(&b.key_id)), Err(NotHonoured::Compromised));
        assert_eq!(ring.get(Some(&cur.0)), Ok(current));
        assert_eq!(
            ring.get(Some(&SigningKeyId([0; 4]))),
            Err(NotHonoured::Unknown)
        );
        let ring = Keyring::of(cur, std::slice::from_ref(&b));
        assert_eq!(ring.get(None), Err(NotHonoured::Compromised));
        assert_eq!(Keyring::of(cur, &[]).get(None), Ok(current));
    }
}
