//! A tenant's directory as the engine keeps it: users, groups and their
//! members, and API keys with the roles they carry. Everything that bears
//! on who may do what lives here, in the replicated state and behind the
//! audit chain, so an approval is decided from the same directory on
//! every node and in every replay (docs/security.md).

pub mod change;
pub mod key;
pub mod role;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use change::DirectoryChange;
pub use key::{KeyId, KeyRecord, KeyRefusal};
pub use role::Role;

use crate::ids::{GroupId, UserId};
use crate::time::Timestamp;

/// The tenant that holds the platform's own keys: its directory's users
/// are the platform's operators, its keys carry `platform_admin` only,
/// and its audit chain records every change to them. Not a customer
/// tenant: the API refuses to create one with this id and never lists
/// it.
pub const PLATFORM_TENANT: &str = "aura.platform";

/// Whether `tenant` is the platform's own ([`PLATFORM_TENANT`]).
pub fn is_platform(tenant: &crate::ids::TenantId) -> bool {
    tenant.as_str() == PLATFORM_TENANT
}

/// The role a key needs to change `tenant`'s directory.
pub fn admin_role(tenant: &crate::ids::TenantId) -> Role {
    if is_platform(tenant) {
        Role::PlatformAdmin
    } else {
        Role::Admin
    }
}

/// The most users, groups or keys one tenant's directory holds, each.
pub const MAX_ENTRIES: usize = 100_000;
/// The longest name, display name or e-mail address, in characters.
pub const MAX_TEXT: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// The sign-in name; unique in the tenant, compared without case.
    pub user_name: String,
    pub display_name: String,
    pub email: Option<String>,
    /// An inactive user's keys do not work and their votes are refused.
    pub active: bool,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRecord {
    pub display_name: String,
    pub members: BTreeSet<UserId>,
    pub created_at: Timestamp,
}

/// A new user, as a command carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub user_name: String,
    pub display_name: String,
    pub email: Option<String>,
    pub active: bool,
}

/// A key to record, as a command carries it: the proposer drew its id
/// and secret, and sends only the secret's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub id: KeyId,
    pub name: String,
    pub user: UserId,
    pub roles: BTreeSet<Role>,
    pub secret_hash: crate::digest::Digest,
    pub expires_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    pub(crate) users: BTreeMap<UserId, UserRecord>,
    pub(crate) groups: BTreeMap<GroupId, GroupRecord>,
    pub(crate) keys: BTreeMap<KeyId, KeyRecord>,
}

impl Directory {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.keys.is_empty()
    }

    pub fn users(&self) -> &BTreeMap<UserId, UserRecord> {
        &self.users
    }

    pub fn groups(&self) -> &BTreeMap<GroupId, GroupRecord> {
        &self.groups
    }

    pub fn keys(&self) -> &BTreeMap<KeyId, KeyRecord> {
        &self.keys
    }

    /// The user whose sign-in name is `name`, whatever its case.
    pub fn user_named(&self, name: &str) -> Option<(&UserId, &UserRecord)> {
        self.users
            .iter()
            .find(|(_, u)| u.user_name.eq_ignore_ascii_case(name))
    }

    /// The groups `user` belongs to now, as authority graphs name them.
    pub fn groups_of(&self, user: &UserId) -> BTreeSet<String> {
        self.groups
            .iter()
            .filter(|(_, g)| g.members.contains(user))
            .map(|(id, _)| id.to_string())
            .collect()
    }

    /// The key `id` if it may act at `at`: unrevoked, unexpired, and its
    /// user still in the directory and active.
    pub fn usable_key(&self, id: &KeyId, at: Timestamp) -> Result<&KeyRecord, KeyRefusal> {
        let k = self.keys.get(id).ok_or(KeyRefusal::Unknown)?;
        if k.revoked_at.is_some() {
            return Err(KeyRefusal::Revoked);
        }
        if k.expired_at(at) {
            return Err(KeyRefusal::Expired);
        }
        if !self.users.get(&k.user).is_some_and(|u| u.active) {
            return Err(KeyRefusal::UserInactive);
        }
        Ok(k)
    }

    /// [`Directory::usable_key`] for a key that must act for `user` with
    /// `role`.
    pub fn key_for(
        &self,
        id: &KeyId,
        user: &UserId,
        role: Role,
        at: Timestamp,
    ) -> Result<&KeyRecord, KeyRefusal> {
        let k = self.usable_key(id, at)?;
        if &k.user != user {
            return Err(KeyRefusal::OtherUser);
        }
        if !role.held_by(&k.roles) {
            return Err(KeyRefusal::MissingRole(role));
        }
        Ok(k)
    }
}
