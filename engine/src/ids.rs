//! Typed identifiers. Each kind of id is its own type so a mission id can
//! never be passed where an agent id is expected, and every id is validated
//! once, when it is made or parsed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid {kind} `{value}`: use 1 to 128 characters from a-z, 0-9, '-', '_' and '.', starting with a letter or digit"
)]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
}

fn valid_id(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        /// Written as the string it is. (`#[serde(into = "String")]`
        /// would copy the id first, every time one is written: a tenth of
        /// the time of a snapshot went to such copies.)
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl $name {
            pub const KIND: &'static str = $kind;

            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                if valid_id(&value) {
                    Ok(Self(value))
                } else {
                    Err(IdError { kind: $kind, value })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::openapi::id($kind)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

typed_id!(
    /// A tenant (an organisation); the root of isolation.
    TenantId, "tenant id"
);
typed_id!(
    /// A namespace inside a tenant (business unit, department, environment).
    NamespaceId, "namespace id"
);
typed_id!(
    /// An agent registered with a tenant.
    AgentId, "agent id"
);
typed_id!(
    /// A unit of the tenant's organisation that agents are bound to.
    OrgUnitId, "org unit id"
);
typed_id!(
    /// A mission.
    MissionId, "mission id"
);
typed_id!(
    /// An execution token.
    TokenId, "token id"
);
typed_id!(
    /// A tool, by its registered name.
    ToolName, "tool name"
);
typed_id!(
    /// A human user of the directory.
    UserId, "user id"
);
typed_id!(
    /// A group of the directory; authority graphs grant levels to groups
    /// by this id.
    GroupId, "group id"
);
typed_id!(
    /// A worker process executing missions, named by itself (host and
    /// process, say); recorded with every claim so a lease says who held it.
    WorkerId, "worker id"
);

impl WorkerId {
    /// The name the runtime reports under when it ends a step itself (a
    /// stalled step an approver would not let go on).
    pub fn runtime() -> WorkerId {
        WorkerId::new("runtime").expect("a valid worker id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated_on_construction_and_deserialization() {
        assert!(TenantId::new("acme-corp").is_ok());
        assert!(MissionId::new("0192f0c4-5b6e-7c1d-8e9f-a0b1c2d3e4f5").is_ok());
        let err = TenantId::new("Acme Corp").unwrap_err();
        assert_eq!(err.kind, "tenant id");
        assert!(err.to_string().contains("Acme Corp"));
        assert!(TenantId::new("").is_err());
        assert!(TenantId::new("-x").is_err());
        assert!(TenantId::new("x".repeat(129)).is_err());
        assert!(serde_json::from_str::<AgentId>("\"ok.agent_1\"").is_ok());
        // Written as the string, in JSON and in the canonical encoding.
        let id = AgentId::new("ok.agent_1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"ok.agent_1\"");
        assert_eq!(
            crate::canonical::to_bytes(&id).unwrap(),
            crate::canonical::to_bytes("ok.agent_1").unwrap()
        );
        assert!(serde_json::from_str::<AgentId>("\"../etc\"").is_err());
    }
}
