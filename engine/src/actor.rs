//! Who asked for a command. Recorded in every audit entry.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Actor {
    /// The platform operator (creates tenants).
    Platform,
    /// A human from the tenant's directory.
    User(UserId),
    /// An agent, authenticated by its credential.
    Agent(AgentId),
    /// The runtime itself: timers, lease expiry, sealing.
    Runtime,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Platform => f.write_str("platform"),
            Actor::User(u) => write!(f, "user:{u}"),
            Actor::Agent(a) => write!(f, "agent:{a}"),
            Actor::Runtime => f.write_str("runtime"),
        }
    }
}
