//! A registered tool as the engine knows it: its risk, clearance and
//! deployment, and how the gateway calls it.

use serde::{Deserialize, Serialize};

use crate::mission::{AuthorityLevel, DataClassification, RetryPolicy, StepTimeouts};
use crate::policy::routing::{DeploymentTarget, validate_target, validate_url};

/// A registered tool, as the engine needs to know it for decisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolSpec {
    /// 1 (harmless) to 4 (critical); policies may look at it.
    pub risk: AuthorityLevel,
    /// The most sensitive data the tool is cleared to receive.
    pub classification: DataClassification,
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, pattern = r"^(on-prem|cloud|region:[a-z0-9-]{1,64})$")
    )]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolInvocation {
    /// `http://` or `https://` URL the gateway POSTs each call to.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^https?://\S+$", max_length = 2048)
    )]
    pub endpoint: String,
    /// JSON Schema of the call's arguments (an object schema).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub input_schema: serde_json::Value,
    /// Called with the original call to undo it when a saga compensates.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^https?://\S+$", max_length = 2048)
    )]
    pub compensation_endpoint: Option<String>,
    /// Longest a call may take, 1 ms to 5 minutes.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 300_000))]
    pub timeout_ms: u64,
    /// The same tool deployed elsewhere: where the tool's own `target` may
    /// not receive a call's data, the gateway uses the first placement
    /// whose target may (an on-prem instance for confidential data, say).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 16))]
    pub placements: Vec<ToolPlacement>,
    /// How a failed call is retried (same idempotency key), unless the
    /// plan step says otherwise.
    #[serde(default)]
    pub retry: RetryPolicy,
}

/// Another deployment of a tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolPlacement {
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, pattern = r"^(on-prem|cloud|region:[a-z0-9-]{1,64})$")
    )]
    pub target: DeploymentTarget,
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^https?://\S+$", max_length = 2048)
    )]
    pub endpoint: String,
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^https?://\S+$", max_length = 2048)
    )]
    pub compensation_endpoint: Option<String>,
}

const MAX_PLACEMENTS: usize = 16;

/// The call timeout of a tool that declares none.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 30_000;

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

    /// Every URL the tool is called at, with the JSON pointer of its
    /// field: what an egress policy judges.
    pub fn endpoints(&self) -> Vec<(String, &str)> {
        let Some(i) = &self.invocation else {
            return Vec::new();
        };
        let mut urls = vec![("/invocation/endpoint".to_owned(), i.endpoint.as_str())];
        if let Some(c) = &i.compensation_endpoint {
            urls.push(("/invocation/compensation_endpoint".to_owned(), c.as_str()));
        }
        for (n, p) in i.placements.iter().enumerate() {
            urls.push((format!("/invocation/placements/{n}/endpoint"), &p.endpoint));
            if let Some(c) = &p.compensation_endpoint {
                urls.push((
                    format!("/invocation/placements/{n}/compensation_endpoint"),
                    c.as_str(),
                ));
            }
        }
        urls
    }

    /// How long the gateway (or the compensator) waits for one call of
    /// this tool; a tool without an invocation is never called, and gets
    /// the gateway's default.
    pub fn call_timeout_ms(&self) -> u64 {
        self.invocation
            .as_ref()
            .map_or(DEFAULT_CALL_TIMEOUT_MS, |i| i.timeout_ms)
    }
}
