//! Roles an API key carries: what the holder of the key may do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Tenant roles are scoped to the key's tenant; `admin` includes every
/// other tenant role. `platform_admin` belongs to platform keys only and
/// manages tenants, never their contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    PlatformAdmin,
    Admin,
    Operator,
    Approver,
    Auditor,
    AgentManager,
    /// Executes missions: claims them from a namespace's queue,
    /// heartbeats and reports steps (docs/runtime.md).
    Worker,
}

impl Role {
    pub const TENANT_ROLES: [Role; 6] = [
        Role::Admin,
        Role::Operator,
        Role::Approver,
        Role::Auditor,
        Role::AgentManager,
        Role::Worker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::AgentManager => "agent_manager",
            Role::Worker => "worker",
        }
    }

    pub fn is_tenant_role(self) -> bool {
        self != Role::PlatformAdmin
    }

    /// Whether a holder of `roles` may act as `self`: `admin` stands for
    /// every tenant role.
    pub fn held_by<'a>(self, roles: impl IntoIterator<Item = &'a Role>) -> bool {
        roles
            .into_iter()
            .any(|&r| r == self || (self.is_tenant_role() && r == Role::Admin))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}`: use admin, operator, approver, auditor, agent_manager or worker")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        [Role::PlatformAdmin]
            .into_iter()
            .chain(Role::TENANT_ROLES)
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}
