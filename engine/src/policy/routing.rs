//! The deployment boundary: where data of each classification may go, and
//! the tools' own clearance and placement.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::mission::{AuthorityLevel, DataClassification};

/// Where a tool or reasoner runs: `on-prem`, `cloud`, or a region name
/// such as `region:eu-west-1`.
pub type DeploymentTarget = String;

pub fn validate_target(t: &str) -> Result<(), String> {
    let ok = t == "on-prem"
        || t == "cloud"
        || t.strip_prefix("region:").is_some_and(|r| {
            !r.is_empty()
                && r.len() <= 64
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{t}` is not a deployment target: use on-prem, cloud or region:<name>"
        ))
    }
}

/// Per namespace: which targets data of each classification may reach. A
/// classification with no entry may go nowhere.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoutingTable(pub BTreeMap<DataClassification, BTreeSet<DeploymentTarget>>);

impl RoutingTable {
    pub fn allowed(&self, c: DataClassification) -> BTreeSet<DeploymentTarget> {
        self.0.get(&c).cloned().unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), String> {
        for t in self.0.values().flatten() {
            validate_target(t)?;
        }
        Ok(())
    }
}

/// A registered tool, as the engine needs to know it for decisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// 1 (harmless) to 4 (critical); policies may look at it.
    pub risk: AuthorityLevel,
    /// The most sensitive data the tool is cleared to receive.
    pub classification: DataClassification,
    pub target: DeploymentTarget,
}

/// Why a call would cross the deployment boundary.
pub fn boundary_violation(
    data: DataClassification,
    allowed_targets: &BTreeSet<DeploymentTarget>,
    tool: &ToolSpec,
) -> Option<String> {
    if tool.classification < data {
        return Some(format!(
            "{data:?} data may not go to a tool cleared only for {:?} data",
            tool.classification
        ));
    }
    if !allowed_targets.contains(&tool.target) {
        return Some(format!(
            "{data:?} data may not go to target `{}` (allowed: {})",
            tool.target,
            if allowed_targets.is_empty() {
                "none".to_owned()
            } else {
                allowed_targets
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    None
}
