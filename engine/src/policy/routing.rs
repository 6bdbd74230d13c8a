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
    /// How the gateway calls it; absent for a tool only governed, never
    /// called through AURA.
    #[serde(default)]
    pub invocation: Option<ToolInvocation>,
}

/// Where and how a tool is called.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolInvocation {
    /// `http://` or `https://` URL the gateway POSTs each call to.
    pub endpoint: String,
    /// JSON Schema of the call's arguments (an object schema).
    pub input_schema: serde_json::Value,
    /// Called with the original call to undo it when a saga compensates.
    #[serde(default)]
    pub compensation_endpoint: Option<String>,
    /// Longest a call may take, 1 ms to 5 minutes.
    pub timeout_ms: u64,
}

const MAX_URL: usize = 2048;

fn validate_url(field: &str, url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r)
            if !r.is_empty() && url.len() <= MAX_URL && !url.chars().any(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{field} `{url}` is not an http:// or https:// URL of at most {MAX_URL} characters"
        )),
    }
}

impl ToolSpec {
    pub fn validate(&self) -> Result<(), String> {
        validate_target(&self.target)?;
        if let Some(i) = &self.invocation {
            validate_url("endpoint", &i.endpoint)?;
            if let Some(c) = &i.compensation_endpoint {
                validate_url("compensation_endpoint", c)?;
            }
            if !i.input_schema.is_object() {
                return Err("input_schema must be a JSON Schema object".into());
            }
            if !(1..=300_000).contains(&i.timeout_ms) {
                return Err("timeout_ms must be 1 to 300000".into());
            }
        }
        Ok(())
    }
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
