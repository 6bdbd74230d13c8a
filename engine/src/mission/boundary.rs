//! MissionBoundary: the four constraint groups (authority, policy, data,
//! runtime) frozen when a mission is launched.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::canonical::Domain;
use crate::digest::Digest;
use crate::ids::ToolName;
use crate::policy::authority::AuthorityConfig;
use crate::policy::canary::Release;
use crate::policy::routing::DeploymentTarget;
use crate::time::{Millis, Timestamp};

pub const BOUNDARY_DOMAIN: Domain = Domain::new("aura.mission-boundary/1");

/// Authority levels, L1 (self-authorized, low risk) to L4 (board level).
/// Ordered: a higher level may approve whatever a lower one may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuthorityLevel {
    L1,
    L2,
    L3,
    L4,
}

impl AuthorityLevel {
    pub const ALL: [AuthorityLevel; 4] = [
        AuthorityLevel::L1,
        AuthorityLevel::L2,
        AuthorityLevel::L3,
        AuthorityLevel::L4,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthorityLevel::L1 => "L1",
            AuthorityLevel::L2 => "L2",
            AuthorityLevel::L3 => "L3",
            AuthorityLevel::L4 => "L4",
        }
    }
}

impl fmt::Display for AuthorityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How sensitive data is. Ordered from least to most sensitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DataClassification {
    Public,
    Internal,
    Confidential,
    Restricted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorityBoundary {
    /// The level the mission declared it needs; escalations without a
    /// level of their own ask for this one.
    pub required_level: AuthorityLevel,
    /// The namespace's authority graph and approval rules at launch.
    pub config: AuthorityConfig,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyBoundary {
    /// The bundle every decision for this mission uses; none means the
    /// namespace had no bundle at launch, and every decision is DENY.
    pub bundle: Option<Digest>,
    /// Which release the mission was assigned to (sticky by mission id).
    pub release: Release,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataBoundary {
    pub classification: DataClassification,
    /// Where data of this classification may go, per the namespace's
    /// routing table at launch.
    pub allowed_targets: BTreeSet<DeploymentTarget>,
}

/// Runtime limits a caller may ask for at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuntimeLimits {
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10_000))]
    pub max_steps: u32,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100_000))]
    pub max_tool_calls: u32,
    /// A run of the mission's record holding this many entries is
    /// continued as new.
    #[serde(default = "default_max_run_entries")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 8, maximum = 1_000_000, default = 10_000)
    )]
    pub max_run_entries: u32,
    /// Likewise for the bytes of those entries' payloads (as JSON).
    #[serde(default = "default_max_run_bytes")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 4096, maximum = 1_073_741_824, default = 16_777_216)
    )]
    pub max_run_bytes: u64,
}

pub const MAX_RUN_ENTRIES: std::ops::RangeInclusive<u32> = 8..=1_000_000;
pub const MAX_RUN_BYTES: std::ops::RangeInclusive<u64> = 4096..=(1 << 30);

fn default_max_run_entries() -> u32 {
    10_000
}

fn default_max_run_bytes() -> u64 {
    16 << 20
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        RuntimeLimits {
            max_steps: 64,
            max_tool_calls: 256,
            max_run_entries: default_max_run_entries(),
            max_run_bytes: default_max_run_bytes(),
        }
    }
}

impl RuntimeLimits {
    pub fn is_in_range(&self) -> bool {
        (1..=10_000).contains(&self.max_steps)
            && (1..=100_000).contains(&self.max_tool_calls)
            && MAX_RUN_ENTRIES.contains(&self.max_run_entries)
            && MAX_RUN_BYTES.contains(&self.max_run_bytes)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuntimeBoundary {
    pub allowed_tools: BTreeSet<ToolName>,
    pub timeout: Millis,
    /// Creation time plus timeout: after it, only TIMED_OUT closes remain.
    pub deadline: Timestamp,
    pub limits: RuntimeLimits,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MissionBoundary {
    pub authority: AuthorityBoundary,
    pub policy: PolicyBoundary,
    pub data: DataBoundary,
    pub runtime: RuntimeBoundary,
}
