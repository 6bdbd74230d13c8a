//! Sealing secret values: ChaCha20-Poly1305 under a key of the tenant's,
//! HMAC-SHA256 of the tenant id under a key every member derives alike
//! from the cluster's key-encryption key (`Kek::derive`), the key that
//! also seals tenant signing keys. The associated data names the tenant
//! and the secret, so sealed bytes opened under another tenant or name
//! fail. Layout: format byte, 12-byte random nonce, ciphertext with its
//! tag. Format 1, written by versions before the KEK, is sealed under a
//! key derived from the cluster secret and still opens while that secret
//! is unchanged.

use aura_engine::ids::TenantId;
use aura_engine::secret::{Sealed, SecretName};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;

/// What the cluster's derived key is for.
pub const PURPOSE: &str = "tenant secrets";
const FORMAT: u8 = 2;
const FORMAT_UNDER_CLUSTER_SECRET: u8 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the sealed secret does not open: it was not sealed for this tenant and name by this cluster"
)]
pub struct OpenError;

/// Seals and opens the values of every tenant's secrets.
pub struct Sealer {
    master: hmac::Key,
    /// Opens format 1.
    legacy: hmac::Key,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// `master` seals and opens; `legacy` (derived from the cluster
    /// secret) only opens what versions before the KEK sealed.
    pub fn new(master: [u8; 32], legacy: [u8; 32]) -> Sealer {
        Sealer {
            master: hmac::Key::new(hmac::HMAC_SHA256, &master),
            legacy: hmac::Key::new(hmac::HMAC_SHA256, &legacy),
        }
    }

    fn key(master: &hmac::Key, tenant: &TenantId) -> LessSafeKey {
        let tag = hmac::sign(master, tenant.as_str().as_bytes());
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, tag.as_ref()).expect("a 32-byte key"))
    }

    fn aad(tenant: &TenantId, name: &SecretName) -> Vec<u8> {
        format!("aura-secret/1\n{tenant}\n{name}").into_bytes()
    }

    pub fn seal(&self, tenant: &TenantId, name: &SecretName, value: &str) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random source works");
        let mut body = value.as_bytes().to_vec();
        Self::key(&self.master, tenant)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(tenant, name)),
                &mut body,
            )
            .expect("a secret's length is far below the cipher's limit");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Sealed::new(out)
    }

    pub fn open(
        &self,
        tenant: &TenantId,
        name: &SecretName,
        sealed: &Sealed,
    ) -> Result<String, OpenError> {
        let bytes = sealed.bytes();
        if bytes.len() < 1 + NONCE_LEN {
            return Err(OpenError);
        }
        let master = match bytes[0] {
            FORMAT => &self.master,
            FORMAT_UNDER_CLUSTER_SECRET => &self.legacy,
            _ => return Err(OpenError),
        };
        let nonce =
            Nonce::try_assume_unique_for_key(&bytes[1..1 + NONCE_LEN]).map_err(|_| OpenError)?;
        let mut body = bytes[1 + NONCE_LEN..].to_vec();
        let plain = Self::key(master, tenant)
            .open_in_place(nonce, Aad::from(Self::aad(tenant, name)), &mut body)
            .map_err(|_| OpenError)?;
        String::from_utf8(plain.to_vec()).map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_for_its_tenant_name_and_cluster() {
        let sealer = Sealer::new([7; 32], [6; 32]);
        let acme: TenantId = "acme".parse().unwrap();
        let beta: TenantId = "beta".parse().unwrap();
        let key = SecretName::new("model-key").unwrap();
        let sealed = sealer.seal(&acme, &key, "sk-live-123");
        assert!(!sealed.bytes().windows(11).any(|w| w == b"sk-live-123"));
        assert_eq!(sealer.open(&acme, &key, &sealed).unwrap(), "sk-live-123");
        assert_eq!(sealer.open(&beta, &key, &sealed), Err(OpenError));
        let other = SecretName::new("other").unwrap();
        assert_eq!(sealer.open(&acme, &other, &sealed), Err(OpenError));
        assert_eq!(
            Sealer::new([8; 32], [6; 32]).open(&acme, &key, &sealed),
            Err(OpenError)
        );
        // What a version before the KEK sealed opens under its legacy key.
        let before = Sealer::new([6; 32], [0; 32]).seal(&acme, &key, "old");
        let mut bytes = before.bytes().to_vec();
        bytes[0] = FORMAT_UNDER_CLUSTER_SECRET;
        let before = Sealed::new(bytes);
        assert_eq!(sealer.open(&acme, &key, &before).unwrap(), "old");
        assert_eq!(
            Sealer::new([7; 32], [5; 32]).open(&acme, &key, &before),
            Err(OpenError)
        );
        // Two seals of one value differ (a fresh nonce each).
        assert_ne!(sealer.seal(&acme, &key, "sk-live-123"), sealed);
    }
}
