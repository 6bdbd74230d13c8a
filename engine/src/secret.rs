//! A tenant's secrets as the engine keeps them: by name, versioned, and
//! sealed. The API layer encrypts a value with a key of the tenant's
//! before proposing it (docs/security.md); the engine stores and
//! replicates the sealed bytes without ever seeing the value, and records
//! a put or delete in the audit chain by name and version only.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// The longest secret name.
pub const MAX_NAME: usize = 64;
/// The most sealed bytes one secret may take.
pub const MAX_SEALED_BYTES: usize = 16 * 1024;
/// The most secrets one tenant may hold.
pub const MAX_SECRETS: usize = 256;

/// A secret's name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with a
/// dot.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("secret name `{0}` must be 1 to {MAX_NAME} of A-Z a-z 0-9 . _ - and not start with a dot")]
pub struct SecretNameError(pub String);

impl SecretName {
    pub fn new(name: impl Into<String>) -> Result<SecretName, SecretNameError> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(SecretName(name))
        } else {
            Err(SecretNameError(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SecretName {
    type Error = SecretNameError;
    fn try_from(s: String) -> Result<SecretName, SecretNameError> {
        SecretName::new(s)
    }
}

impl From<SecretName> for String {
    fn from(n: SecretName) -> String {
        n.0
    }
}

impl std::str::FromStr for SecretName {
    type Err = SecretNameError;
    fn from_str(s: &str) -> Result<SecretName, SecretNameError> {
        SecretName::new(s)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for SecretName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::string(
            "A secret's name: 1 to 64 of A-Z a-z 0-9 . _ -, not starting with a dot.".to_owned(),
            "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$",
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for SecretName {}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretName({})", self.0)
    }
}

/// Encrypted bytes, opaque to the engine (base64 when serialized). Never
/// printed: `Debug` shows the length only.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(Vec<u8>);

impl Sealed {
    pub fn new(bytes: Vec<u8>) -> Sealed {
        Sealed(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

impl Serialize for Sealed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Sealed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Sealed, D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text)
            .map(Sealed)
            .map_err(|_| serde::de::Error::custom("sealed bytes must be base64"))
    }
}

/// A secret as the tenant's state holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRecord {
    /// 1 for the first put, one more for each put after it.
    pub version: u32,
    pub sealed: Sealed,
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_sealed_bytes_never_print() {
        assert!(SecretName::new("OPENAI_KEY").is_ok());
        assert!(SecretName::new("model-key.v2").is_ok());
        for bad in ["", ".hidden", "a/b", "../x", "sp ace", &"x".repeat(65)] {
            assert!(SecretName::new(bad).is_err(), "{bad}");
        }
        let sealed = Sealed::new(b"ciphertext".to_vec());
        assert_eq!(format!("{sealed:?}"), "Sealed(10 bytes)");
        let json = serde_json::to_string(&sealed).unwrap();
        assert_eq!(serde_json::from_str::<Sealed>(&json).unwrap(), sealed);
    }
}
