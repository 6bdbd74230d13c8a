//! The changes a tenant's directory can go through, each one engine
//! command and one audit entry.

use serde::{Deserialize, Serialize};

use super::{KeyId, NewKey, NewUser};
use crate::ids::{GroupId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "change", deny_unknown_fields)]
pub enum DirectoryChange {
    CreateUser {
        user: UserId,
        details: NewUser,
    },
    /// Turns a user's access off (their keys stop, their votes are
    /// refused) or back on.
    SetUserActive {
        user: UserId,
        active: bool,
    },
    /// Removes a user and their memberships, and revokes their keys.
    DeleteUser {
        user: UserId,
    },
    CreateGroup {
        group: GroupId,
        display_name: String,
    },
    /// Removes a group and its memberships.
    DeleteGroup {
        group: GroupId,
    },
    AddMember {
        group: GroupId,
        user: UserId,
    },
    RemoveMember {
        group: GroupId,
        user: UserId,
    },
    MintKey {
        key: NewKey,
    },
    RevokeKey {
        key: KeyId,
    },
}

impl DirectoryChange {
    /// The audit kind recorded for the change.
    pub fn kind(&self) -> &'static str {
        match self {
            DirectoryChange::CreateUser { .. } => "directory.user_create",
            DirectoryChange::SetUserActive { .. } => "directory.user_active",
            DirectoryChange::DeleteUser { .. } => "directory.user_delete",
            DirectoryChange::CreateGroup { .. } => "directory.group_create",
            DirectoryChange::DeleteGroup { .. } => "directory.group_delete",
            DirectoryChange::AddMember { .. } => "directory.member_add",
            DirectoryChange::RemoveMember { .. } => "directory.member_remove",
            DirectoryChange::MintKey { .. } => "directory.key_mint",
            DirectoryChange::RevokeKey { .. } => "directory.key_revoke",
        }
    }
}
