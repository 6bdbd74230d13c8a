//! Ed25519 keys and signatures as AURA stores and shows them.
//!
//! Signatures are made over AURA-CE/1 framed messages (see
//! [`crate::canonical`]), never over JSON. Ed25519 signing is deterministic
//! (RFC 8032 §5.1.6): the same key and message always give the same
//! signature, which is what lets the replicated state machine sign outcomes,
//! credentials and checkpoints inside `apply` and still replay byte for byte.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::canonical::{self, CanonicalError, Domain};

/// Why a signature or key was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signature does not verify")]
    Invalid,
    #[error("public key is malformed or weak")]
    BadKey,
    #[error(transparent)]
    Encoding(#[from] CanonicalError),
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, SignatureError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| SignatureError::BadKey)?;
        // A small-order key would let anyone forge signatures that pass
        // non-strict verification; such keys are never a real agent's.
        if key.is_weak() {
            return Err(SignatureError::BadKey);
        }
        Ok(PublicKey(key))
    }

    pub fn from_base64(s: &str) -> Result<PublicKey, SignatureError> {
        let bytes = B64.decode(s).map_err(|_| SignatureError::BadKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SignatureError::BadKey)?;
        PublicKey::from_bytes(&bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.0.as_bytes())
    }

    /// Verifies a signature over raw bytes (strict RFC 8032 verification:
    /// no malleable or small-order components).
    pub fn verify_raw(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0
            .verify_strict(message, &sig)
            .map_err(|_| SignatureError::Invalid)
    }

    /// Verifies a signature over `value` framed in `domain`.
    pub fn verify<T: Serialize + ?Sized>(
        &self,
        domain: Domain,
        value: &T,
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        self.verify_raw(&canonical::message(domain, value)?, signature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_base64())
        } else {
            s.serialize_bytes(self.as_bytes())
        }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PublicKey::from_base64(&s)
            .map_err(|_| serde::de::Error::custom("public key must be 32 bytes of base64 Ed25519"))
    }
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    pub fn from_base64(s: &str) -> Result<Signature, SignatureError> {
        let bytes = B64.decode(s).map_err(|_| SignatureError::Invalid)?;
        Ok(Signature(
            bytes.try_into().map_err(|_| SignatureError::Invalid)?,
        ))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", &self.to_base64()[..12])
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_base64())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Signature::from_base64(&s)
            .map_err(|_| serde::de::Error::custom("signature must be 64 bytes of base64"))
    }
}

/// A private Ed25519 key: a tenant's org signing key or, in tests and in
/// agent SDKs, an agent's own key. Its seed is never shown in `Debug`.
#[derive(Clone)]
pub struct KeyPair {
    seed: [u8; 32],
    signing: SigningKey,
}

impl KeyPair {
    /// The seed must come from a cryptographic random source outside the
    /// engine (the proposer stamps it into the command).
    pub fn from_seed(seed: [u8; 32]) -> KeyPair {
        KeyPair {
            seed,
            signing: SigningKey::from_bytes(&seed),
        }
    }

    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    pub fn sign_raw(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }

    pub fn sign<T: Serialize + ?Sized>(
        &self,
        domain: Domain,
        value: &T,
    ) -> Result<Signature, CanonicalError> {
        Ok(self.sign_raw(&canonical::message(domain, value)?))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair(public: {})", self.public().to_base64())
    }
}

impl PartialEq for KeyPair {
    fn eq(&self, other: &Self) -> bool {
        self.seed == other.seed
    }
}
impl Eq for KeyPair {}

/// Key pairs live in engine state (so that any replica can sign after a
/// failover); the snapshot therefore holds the seed, as hex.
impl Serialize for KeyPair {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&crate::digest::Digest(self.seed).to_hex())
        } else {
            s.serialize_bytes(&self.seed)
        }
    }
}

impl<'de> Deserialize<'de> for KeyPair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let seed = crate::digest::Digest::from_hex(&s).map_err(serde::de::Error::custom)?;
        Ok(KeyPair::from_seed(seed.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Domain = Domain::new("aura.test/1");

    #[test]
    fn signs_deterministically_and_verifies() {
        let kp = KeyPair::from_seed([7; 32]);
        let a = kp.sign(D, &("hello", 1u32)).unwrap();
        let b = kp.sign(D, &("hello", 1u32)).unwrap();
        assert_eq!(a, b);
        kp.public().verify(D, &("hello", 1u32), &a).unwrap();
        assert_eq!(
            kp.public().verify(D, &("hello", 2u32), &a),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            kp.public()
                .verify(Domain::new("aura.other/1"), &("hello", 1u32), &a),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn rejects_weak_and_malformed_keys() {
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert_eq!(
            PublicKey::from_bytes(&identity_point),
            Err(SignatureError::BadKey)
        );
        assert_eq!(PublicKey::from_base64("AAAA"), Err(SignatureError::BadKey));
        let kp = KeyPair::from_seed([1; 32]);
        assert_eq!(
            PublicKey::from_base64(&kp.public().to_base64()),
            Ok(kp.public())
        );
    }
}
