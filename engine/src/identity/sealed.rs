//! Tenant signing keys at rest and in the log: every tenant's Ed25519 seed
//! is sealed (ChaCha20-Poly1305) under the cluster's key-encryption key
//! (KEK) before it is proposed, and only the sealed form is ever
//! replicated, logged or written into a snapshot. Each node is given the
//! KEK from outside the log (a file, an environment variable or a
//! command) and opens the seeds in memory, so apply still signs alike on
//! every replica.
//!
//! The associated data names the tenant and the public key, so a sealed
//! seed moved to another tenant, or paired with another public key, does
//! not open. Layout of the sealed bytes: a 12-byte nonce drawn by the
//! proposer, then the ciphertext with its tag.

use std::fmt;

use crate::identity::hex_id::hex_id;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::identity::keys::{KeyPair, PublicKey};
use crate::ids::TenantId;

/// Fewer bytes of key material than this are refused: a KEK is a key, not
/// a password.
pub const MIN_KEK_BYTES: usize = 32;

/// The cluster's key-encryption key. Never printed, never serialized.
#[derive(Clone)]
pub struct Kek {
    key: [u8; 32],
    id: KekId,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek(id: {})", self.id)
    }
}

impl Kek {
    /// The KEK made from key material of at least [`MIN_KEK_BYTES`]: the
    /// SHA-256 of the material under a label of its own, so material of
    /// any length and encoding (hex, base64, raw) gives a 32-byte key.
    pub fn from_material(material: &[u8]) -> Option<Kek> {
        if material.len() < MIN_KEK_BYTES {
            return None;
        }
        let key: [u8; 32] = Sha256::new()
            .chain_update(b"aura key-encryption key v1\n")
            .chain_update(material)
            .finalize()
            .into();
        let id: [u8; 32] = Sha256::new()
            .chain_update(b"aura key-encryption key id v1\n")
            .chain_update(key)
            .finalize()
            .into();
        let mut short = [0u8; 8];
        short.copy_from_slice(&id[..8]);
        Some(Kek {
            key,
            id: KekId(short),
        })
    }

    pub fn id(&self) -> KekId {
        self.id
    }

    /// A 32-byte key for `purpose` (HMAC-SHA256 under the KEK), for other
    /// material the KEK protects, such as tenants' secrets.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.key);
        let tag = ring::hmac::sign(
            &key,
            format!("aura kek-derived key v1\n{purpose}").as_bytes(),
        );
        tag.as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &self.key).expect("a 32-byte key"))
    }
}

/// Which KEK sealed a seed: the first 8 bytes of a hash of the key, so a
/// node can tell "sealed under another KEK" from "damaged" and say which,
/// without the id revealing anything of the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KekId([u8; 8]);

hex_id!(KekId, 8, "a KEK id is 16 lowercase hex digits");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "the tenant signing key is sealed under KEK {sealed}, and this node holds KEK {held}: every node needs the cluster's KEK"
    )]
    OtherKek { sealed: KekId, held: KekId },
    #[error("the tenant signing key is sealed and this node was given no KEK")]
    NoKek,
    #[error(
        "the sealed tenant signing key does not open: it was not sealed for this tenant and public key"
    )]
    DoesNotOpen,
}

/// A tenant's signing seed sealed under a KEK, with the public key it is
/// the seed of.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedSeed {
    pub kek: KekId,
    pub public: PublicKey,
    #[serde(with = "sealed_bytes")]
    sealed: Vec<u8>,
}

impl fmt::Debug for SealedSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SealedSeed(kek: {}, public: {})",
            self.kek,
            self.public.to_base64()
        )
    }
}

fn aad(tenant: &TenantId, public: &PublicKey) -> Vec<u8> {
    format!("aura-tenant-key/1\n{tenant}\n{}", public.to_base64()).into_bytes()
}

impl SealedSeed {
    /// Seals `pair`'s seed for `tenant`. The nonce must be fresh random
    /// bytes from the proposer: the engine draws none.
    pub fn seal(kek: &Kek, tenant: &TenantId, pair: &KeyPair, nonce: [u8; NONCE_LEN]) -> Self {
        let public = pair.public();
        let mut body = pair.seed().to_vec();
        kek.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(tenant, &public)),
                &mut body,
            )
            .expect("32 bytes are far below the cipher's limit");
        let mut sealed = Vec::with_capacity(NONCE_LEN + body.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&body);
        SealedSeed {
            kek: kek.id(),
            public,
            sealed,
        }
    }

    /// The key pair, if `kek` sealed it for `tenant` and its public key.
    pub fn open(&self, kek: Option<&Kek>, tenant: &TenantId) -> Result<KeyPair, SealError> {
        let kek = kek.ok_or(SealError::NoKek)?;
        if kek.id() != self.kek {
            return Err(SealError::OtherKek {
                sealed: self.kek,
                held: kek.id(),
            });
        }
        if self.sealed.len() < NONCE_LEN {
            return Err(SealError::DoesNotOpen);
        }
        let (nonce, body) = self.sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::DoesNotOpen)?;
        let mut body = body.to_vec();
        let seed = kek
            .aead()
            .open_in_place(nonce, Aad::from(aad(tenant, &self.public)), &mut body)
            .map_err(|_| SealError::DoesNotOpen)?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| SealError::DoesNotOpen)?;
        let pair = KeyPair::from_seed(seed);
        if pair.public() != self.public {
            return Err(SealError::DoesNotOpen);
        }
        Ok(pair)
    }
}

mod sealed_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        STANDARD
            .decode(String::deserialize(d)?)
            .map_err(serde::de::Error::custom)
    }
}

/// A tenant's signing key as the state holds it: sealed, or (for tenants
/// created before keys were sealed, and in engine-only tests and
/// simulations) the plain seed, written as it always was. The opened pair
/// is kept in memory only.
#[derive(Clone)]
pub struct TenantKey {
    stored: StoredKey,
    pair: Option<KeyPair>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum StoredKey {
    Sealed(SealedSeed),
    Plain(KeyPair),
}

/// The seed a `CreateTenant` command carries: sealed as the API proposes
/// it, or plain as logs written before sealing (and engine-only tests) do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TenantSeed {
    Sealed(SealedSeed),
    Plain(crate::machine::SigningSeed),
}

impl From<crate::machine::SigningSeed> for TenantSeed {
    fn from(seed: crate::machine::SigningSeed) -> Self {
        TenantSeed::Plain(seed)
    }
}

impl TenantKey {
    /// The key a new tenant's seed gives; a sealed one must open.
    pub(crate) fn of(
        seed: &TenantSeed,
        kek: Option<&Kek>,
        tenant: &TenantId,
    ) -> Result<TenantKey, SealError> {
        Ok(match seed {
            TenantSeed::Plain(seed) => TenantKey::plain(KeyPair::from_seed(seed.0)),
            TenantSeed::Sealed(sealed) => TenantKey {
                pair: Some(sealed.open(kek, tenant)?),
                stored: StoredKey::Sealed(sealed.clone()),
            },
        })
    }

    fn plain(pair: KeyPair) -> TenantKey {
        TenantKey {
            pair: Some(pair.clone()),
            stored: StoredKey::Plain(pair),
        }
    }

    pub fn public(&self) -> PublicKey {
        match &self.stored {
            StoredKey::Sealed(s) => s.public,
            StoredKey::Plain(p) => p.public(),
        }
    }

    pub fn is_sealed(&self) -> bool {
        matches!(self.stored, StoredKey::Sealed(_))
    }

    pub fn sealed(&self) -> Option<&SealedSeed> {
        match &self.stored {
            StoredKey::Sealed(s) => Some(s),
            StoredKey::Plain(_) => None,
        }
    }

    /// Opens a sealed key restored from a snapshot.
    pub(crate) fn unlock(&mut self, kek: Option<&Kek>, tenant: &TenantId) -> Result<(), SealError> {
        if let StoredKey::Sealed(s) = &self.stored {
            self.pair = Some(s.open(kek, tenant)?);
        }
        Ok(())
    }

    /// The pair that signs. A sealed key is opened when its tenant is
    /// created and whenever a state is restored (`EngineState::unlock`),
    /// and a node whose KEK does not open it refuses to start, so a
    /// running engine always holds it.
    pub(crate) fn signer(&self) -> &KeyPair {
        self.pair
            .as_ref()
            .expect("tenant keys are opened on creation and on restore")
    }
}

impl fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TenantKey(public: {}, sealed: {})",
            self.public().to_base64(),
            self.is_sealed()
        )
    }
}

impl PartialEq for TenantKey {
    fn eq(&self, other: &Self) -> bool {
        self.stored == other.stored
    }
}

impl Serialize for TenantKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.stored.serialize(s)
    }
}

impl<'de> Deserialize<'de> for TenantKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match StoredKey::deserialize(d)? {
            StoredKey::Plain(pair) => TenantKey::plain(pair),
            stored => TenantKey { stored, pair: None },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(b: u8) -> Kek {
        Kek::from_material(&[b; 40]).unwrap()
    }

    #[test]
    fn a_seed_opens_only_under_its_kek_for_its_tenant() {
        let acme: TenantId = "acme".parse().unwrap();
        let beta: TenantId = "beta".parse().unwrap();
        let pair = KeyPair::from_seed([3; 32]);
        let sealed = SealedSeed::seal(&kek(1), &acme, &pair, [9; NONCE_LEN]);
        let json = serde_json::to_string(&sealed).unwrap();
        assert!(!json.contains(&crate::digest::Digest([3; 32]).to_hex()));
        assert!(!sealed.sealed.windows(32).any(|w| w == [3; 32]));
        let read: SealedSeed = serde_json::from_str(&json).unwrap();
        assert_eq!(read.open(Some(&kek(1)), &acme).unwrap(), pair);
        assert_eq!(read.open(Some(&kek(1)), &beta), Err(SealError::DoesNotOpen));
        assert!(matches!(
            read.open(Some(&kek(2)), &acme),
            Err(SealError::OtherKek { .. })
        ));
        assert_eq!(read.open(None, &acme), Err(SealError::NoKek));
        // Another public key beside the same sealed bytes does not open.
        let mut swapped = read.clone();
        swapped.public = KeyPair::from_seed([4; 32]).public();
        assert_eq!(
            swapped.open(Some(&kek(1)), &acme),
            Err(SealError::DoesNotOpen)
        );
        assert!(Kek::from_material(&[1; 31]).is_none());
        assert!(!format!("{:?}", kek(1)).contains("key:"));
    }

    #[test]
    fn a_tenant_key_is_written_sealed_or_as_it_always_was() {
        let acme: TenantId = "acme".parse().unwrap();
        let pair = KeyPair::from_seed([5; 32]);
        let plain = TenantKey::of(
            &TenantSeed::Plain(crate::machine::SigningSeed([5; 32])),
            None,
            &acme,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            serde_json::to_string(&pair).unwrap()
        );
        let sealed = SealedSeed::seal(&kek(1), &acme, &pair, [1; NONCE_LEN]);
        let key = TenantKey::of(&TenantSeed::Sealed(sealed), Some(&kek(1)), &acme).unwrap();
        let json = serde_json::to_string(&key).unwrap();
        let mut read: TenantKey = serde_json::from_str(&json).unwrap();
        assert!(read.pair.is_none() && read == key);
        assert_eq!(
            read.unlock(Some(&kek(2)), &acme),
            Err(SealError::OtherKek {
                sealed: kek(1).id(),
                held: kek(2).id()
            })
        );
        read.unlock(Some(&kek(1)), &acme).unwrap();
        assert_eq!(read.signer(), &pair);
    }
}
