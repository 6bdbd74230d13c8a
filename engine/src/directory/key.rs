//! API keys as the directory records them: the public id, the user the
//! key acts for, its roles, who minted it, and the SHA-256 of its secret
//! half (a 256-bit random secret, so the hash gives nothing to guess
//! from). The secret itself never reaches the engine.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::role::Role;
use crate::actor::Actor;
use crate::digest::Digest;
use crate::ids::UserId;
use crate::time::Timestamp;

/// A key's public id: 16 lowercase hex digits.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("key id `{0}` must be 16 lowercase hex digits")]
pub struct KeyIdError(pub String);

impl KeyId {
    pub fn new(id: impl Into<String>) -> Result<KeyId, KeyIdError> {
        let id = id.into();
        let ok = id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(KeyId(id))
        } else {
            Err(KeyIdError(id))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyId {
    type Error = KeyIdError;
    fn try_from(s: String) -> Result<KeyId, KeyIdError> {
        KeyId::new(s)
    }
}

impl From<KeyId> for String {
    fn from(k: KeyId) -> String {
        k.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for KeyId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::string("An API key's public id.".to_owned(), "^[0-9a-f]{16}$")
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for KeyId {}

/// A key as minted, with its revocation once revoked. Never deleted: a
/// vote or a change made with a key stays attributable to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// What the key is for, for people reading the key list.
    pub name: String,
    /// The directory user the key acts for.
    pub user: UserId,
    pub roles: BTreeSet<Role>,
    pub secret_hash: Digest,
    /// Who minted it: the user themself, an administrator for them, or
    /// the platform (a tenant's first administrator).
    pub minted_by: Actor,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// Why a key cannot act now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum KeyRefusal {
    #[error("no such key")]
    Unknown,
    #[error("the key has been revoked")]
    Revoked,
    #[error("the key has expired")]
    Expired,
    #[error("the key's user is no longer active")]
    UserInactive,
    #[error("the key does not act for this user")]
    OtherUser,
    #[error("the key lacks the `{0}` role")]
    MissingRole(Role),
}

impl KeyRecord {
    /// Whether the key was minted by someone other than the user it acts
    /// for (an administrator or the platform).
    pub fn minted_for_another(&self) -> bool {
        self.minted_by != Actor::User(self.user.clone())
    }

    pub(crate) fn expired_at(&self, at: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= at)
    }
}
