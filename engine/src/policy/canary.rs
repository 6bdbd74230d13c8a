//! Versioned bundles per namespace, canary releases, shadow evaluation and
//! the pre-release analysis.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::ids::MissionId;
use crate::policy::decision::Decision;
use crate::time::Timestamp;

/// Which release a mission was assigned at launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Release {
    Stable,
    Canary,
}

/// A stable bucket in 0..10000 for a mission id: the same id always lands
/// in the same bucket, so assignment is sticky.
pub fn bucket(mission: &MissionId) -> u32 {
    let d = Sha256::new()
        .chain_update(b"aura.canary-bucket/1\0")
        .chain_update(mission.as_str().as_bytes())
        .finalize();
    (u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) % 10_000) as u32
}

pub fn assign(mission: &MissionId, canary_basis_points: u32) -> Release {
    if bucket(mission) < canary_basis_points {
        Release::Canary
    } else {
        Release::Stable
    }
}

/// How the other bundle's decision compares with the one that counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Direction {
    Same,
    /// The canary is stricter than stable.
    Tightening,
    /// The canary is more permissive than stable.
    Loosening,
}

/// Direction from the stable decision to the canary decision.
pub fn direction(stable: Decision, canary: Decision) -> Direction {
    match canary.cmp(&stable) {
        std::cmp::Ordering::Equal => Direction::Same,
        std::cmp::Ordering::Greater => Direction::Tightening,
        std::cmp::Ordering::Less => Direction::Loosening,
    }
}

/// Shadow statistics of a running canary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShadowStats {
    pub evaluated: u64,
    pub same: u64,
    pub tightening: u64,
    pub loosening: u64,
    /// Decisions whose determining policies differ even though the
    /// decision is the same.
    pub same_decision_other_policies: u64,
}

impl ShadowStats {
    pub fn count(&mut self, diff: &ShadowDiff) {
        self.evaluated += 1;
        match diff.direction {
            Direction::Same => {
                self.same += 1;
                if !diff.only_stable.is_empty() || !diff.only_canary.is_empty() {
                    self.same_decision_other_policies += 1;
                }
            }
            Direction::Tightening => self.tightening += 1,
            Direction::Loosening => self.loosening += 1,
        }
    }
}

/// One decision evaluated on both bundles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShadowDiff {
    pub stable: Decision,
    pub canary: Decision,
    pub direction: Direction,
    /// Determining policies only on the stable side, and only on the
    /// canary side.
    pub only_stable: Vec<String>,
    pub only_canary: Vec<String>,
}

/// A namespace's canary release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Canary {
    pub bundle: Digest,
    /// Share of new missions, in basis points (1 % = 100).
    pub basis_points: u32,
    pub started_at: Timestamp,
    pub stats: ShadowStats,
    pub analysis: ReleaseAnalysis,
}

/// How a new bundle compares with recent decisions, before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Classification {
    Unchanged,
    Tightening,
    Loosening,
    Mixed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Example {
    pub input_digest: Digest,
    pub stable: Decision,
    pub candidate: Decision,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleaseAnalysis {
    pub replayed: u64,
    pub tightening: u64,
    pub loosening: u64,
    pub classification: Classification,
    /// Up to three examples of each direction.
    pub examples: Vec<Example>,
}

impl ReleaseAnalysis {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Digest, Decision, Decision)>) -> Self {
        let mut a = ReleaseAnalysis {
            replayed: 0,
            tightening: 0,
            loosening: 0,
            classification: Classification::Unchanged,
            examples: Vec::new(),
        };
        let (mut ex_t, mut ex_l) = (0, 0);
        for (input_digest, stable, candidate) in pairs {
            a.replayed += 1;
            let example = Example {
                input_digest,
                stable,
                candidate,
            };
            match direction(stable, candidate) {
                Direction::Same => {}
                Direction::Tightening => {
                    a.tightening += 1;
                    if ex_t < 3 {
                        ex_t += 1;
                        a.examples.push(example);
                    }
                }
                Direction::Loosening => {
                    a.loosening += 1;
                    if ex_l < 3 {
                        ex_l += 1;
                        a.examples.push(example);
                    }
                }
            }
        }
        a.classification = match (a.tightening > 0, a.loosening > 0) {
            (false, false) => Classification::Unchanged,
            (true, false) => Classification::Tightening,
            (false, true) => Classification::Loosening,
            (true, true) => Classification::Mixed,
        };
        a
    }
}
