//! The deployment boundary: where data of each classification may go, and
//! the tools' own clearance and placement.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::mission::{AuthorityLevel, DataClassification, RetryPolicy, StepTimeouts};

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
    /// How long a step with this tool may wait for a worker, take, and go
    /// without a heartbeat (whoever performs it: the gateway's executor or
    /// an external worker).
    #[serde(default)]
    pub timeouts: Option<StepTimeouts>,
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
    /// The same tool deployed elsewhere: where the tool's own `target` may
    /// not receive a call's data, the gateway uses the first placement
    /// whose target may (an on-prem instance for confidential data, say).
    #[serde(default)]
    pub placements: Vec<ToolPlacement>,
    /// How a failed call is retried (same idempotency key), unless the
    /// plan step says otherwise.
    #[serde(default)]
    pub retry: RetryPolicy,
}

/// Another deployment of a tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolPlacement {
    pub target: DeploymentTarget,
    pub endpoint: String,
    #[serde(default)]
    pub compensation_endpoint: Option<String>,
}

/// Where one call goes: the deployment its data may reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub target: DeploymentTarget,
    /// Absent for a tool that is governed but not called through AURA.
    pub endpoint: Option<String>,
    pub compensation_endpoint: Option<String>,
}

const MAX_PLACEMENTS: usize = 16;

const MAX_URL: usize = 2048;
/// The call timeout of a tool that declares none.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 30_000;

pub(crate) fn validate_url(field: &str, url: &str) -> Result<(), String> {
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
        if let Some(t) = &self.timeouts {
            t.validate()?;
        }
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
            i.retry.validate()?;
            if i.placements.len() > MAX_PLACEMENTS {
                return Err(format!("at most {MAX_PLACEMENTS} placements"));
            }
            for p in &i.placements {
                validate_target(&p.target)?;
                validate_url("placement endpoint", &p.endpoint)?;
                if let Some(c) = &p.compensation_endpoint {
                    validate_url("placement compensation_endpoint", c)?;
                }
            }
        }
        Ok(())
    }

    /// How long the gateway (or the compensator) waits for one call of
    /// this tool; a tool without an invocation is never called, and gets
    /// the gateway's default.
    pub fn call_timeout_ms(&self) -> u64 {
        self.invocation
            .as_ref()
            .map_or(DEFAULT_CALL_TIMEOUT_MS, |i| i.timeout_ms)
    }

    /// Every deployment of the tool, its own first.
    fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        let own = Route {
            target: self.target.clone(),
            endpoint: self.invocation.as_ref().map(|i| i.endpoint.clone()),
            compensation_endpoint: self
                .invocation
                .as_ref()
                .and_then(|i| i.compensation_endpoint.clone()),
        };
        let others = self
            .invocation
            .iter()
            .flat_map(|i| i.placements.iter())
            .map(|p| Route {
                target: p.target.clone(),
                endpoint: Some(p.endpoint.clone()),
                compensation_endpoint: p.compensation_endpoint.clone(),
            });
        std::iter::once(own).chain(others)
    }

    /// The first deployment that data of the given classification may
    /// reach, or why there is none.
    pub fn route(
        &self,
        data: DataClassification,
        allowed_targets: &BTreeSet<DeploymentTarget>,
    ) -> Result<Route, String> {
        if self.classification < data {
            return Err(format!(
                "{data:?} data may not go to a tool cleared only for {:?} data",
                self.classification
            ));
        }
        self.routes()
            .find(|r| allowed_targets.contains(&r.target))
            .ok_or_else(|| {
                let deployed: Vec<String> = self
                    .routes()
                    .map(|r| format!("target `{}`", r.target))
                    .collect();
                format!(
                    "{data:?} data may not go to {} (allowed: {})",
                    deployed.join(" or "),
                    if allowed_targets.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed_targets
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )
            })
    }
}

/// Why a call would cross the deployment boundary: no deployment of the
/// tool may receive the data.
pub fn boundary_violation(
    data: DataClassification,
    allowed_targets: &BTreeSet<DeploymentTarget>,
    tool: &ToolSpec,
) -> Option<String> {
    tool.route(data, allowed_targets).err()
}
