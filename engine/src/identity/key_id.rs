//! Which of a tenant's signing keys signed something. A tenant's key can
//! rotate, so everything it signs names its key: the first four bytes of
//! SHA-256(key name || "\n" || 0x01 || public key), the key id the C2SP
//! signed-note format gives an Ed25519 key, so a checkpoint's signature
//! line and a credential name the same key alike.

use serde::{Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::identity::hex_id::hex_id;
use crate::identity::keys::PublicKey;
use crate::ids::TenantId;

/// A tenant signing key's id, written as 8 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SigningKeyId(pub [u8; 4]);

/// The signed-note key name of a tenant's signing key.
pub fn key_name(tenant: &TenantId) -> String {
    format!("aura-{tenant}")
}

impl SigningKeyId {
    /// The id of `key` under the signed-note key name `name`.
    pub fn named(name: &str, key: &PublicKey) -> SigningKeyId {
        let d = Sha256::new()
            .chain_update(name.as_bytes())
            .chain_update(b"\n")
            .chain_update([0x01])
            .chain_update(key.as_bytes())
            .finalize();
        SigningKeyId([d[0], d[1], d[2], d[3]])
    }

    /// The id of `tenant`'s signing key `key`.
    pub fn of(tenant: &TenantId, key: &PublicKey) -> SigningKeyId {
        SigningKeyId::named(&key_name(tenant), key)
    }
}

hex_id!(
    SigningKeyId,
    4,
    "a signing key id is 8 lowercase hex digits"
);

/// Writes something the tenant signed: `body` under `body_field`, the
/// signature, and the key id when there is one. The key id is written
/// only in human-readable forms (JSON: snapshots, the API, the log), not
/// in the canonical encoding that state digests take: there the struct
/// keeps the shape it had before keys were named, so states written
/// before still restore against their digests. Nothing is lost by it:
/// the signature, which the digest covers, fixes which key signed, and
/// the engine's invariants check the id against it.
pub(crate) fn serialize_signed<S: Serializer, B: Serialize + ?Sized>(
    s: S,
    name: &'static str,
    body_field: &'static str,
    body: &B,
    signature: &crate::identity::keys::Signature,
    key_id: Option<&SigningKeyId>,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct as _;
    let key_id = key_id.filter(|_| s.is_human_readable());
    let mut st = s.serialize_struct(name, 2 + usize::from(key_id.is_some()))?;
    st.serialize_field(body_field, body)?;
    st.serialize_field("signature", signature)?;
    if let Some(id) = key_id {
        st.serialize_field("key_id", id)?;
    }
    st.end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::keys::KeyPair;

    #[test]
    fn ids_are_per_tenant_and_read_back() {
        let key = KeyPair::from_seed([7; 32]).public();
        let acme: TenantId = "acme".parse().unwrap();
        let beta: TenantId = "beta".parse().unwrap();
        let id = SigningKeyId::of(&acme, &key);
        assert_ne!(id, SigningKeyId::of(&beta, &key));
        let text = id.to_string();
        assert_eq!(text.len(), 8);
        assert_eq!(text.parse::<SigningKeyId>(), Ok(id));
        assert!("0A0B0C0D".parse::<SigningKeyId>().is_err());
        assert!("0a0b0c".parse::<SigningKeyId>().is_err());
    }
}
