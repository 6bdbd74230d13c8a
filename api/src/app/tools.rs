//! The tool registry: what a tool risks, which data it is cleared for,
//! where it runs and how the gateway calls it. Registering again with the
//! same name updates it.

use aura_engine::ids::ToolName;
use aura_engine::machine::CommandBody;
use aura_engine::machine::rejection::Rejection;
use aura_engine::tool::ToolSpec;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scope::{Admin, Member, TenantScope};
use super::{App, AppError};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Tool {
    pub name: String,
    /// The tool's governance attributes and how it is called (see
    /// docs/gateway.md and docs/runtime.md).
    pub spec: ToolSpec,
}

/// Registers a tool or updates its governance attributes. The engine's
/// own checks run first (it applies them again), so a spec that is wrong
/// in several ways is refused the same way here; the input schema must be
/// one the gateway can check arguments against, and an endpoint at an
/// address the egress policy refuses is refused now.
pub async fn register(
    app: &App,
    scope: &TenantScope<Admin>,
    tool: ToolName,
    spec: ToolSpec,
) -> Result<Tool, AppError> {
    spec.validate().map_err(Rejection::BadConfig)?;
    if let Some(invocation) = &spec.invocation {
        crate::gateway::schema::check(&invocation.input_schema)
            .map_err(|why| AppError::invalid("/invocation/input_schema", why))?;
    }
    app.check_destinations(spec.endpoints())?;
    let body = CommandBody::RegisterTool {
        tool: tool.clone(),
        spec: spec.clone(),
    };
    app.propose(&scope.tenant, scope.actor(), body).await?;
    Ok(Tool {
        name: tool.to_string(),
        spec,
    })
}

/// The tenant's tools, by name.
pub fn list(app: &App, scope: &TenantScope<Member>) -> Result<Vec<Tool>, AppError> {
    scope.read(app, |t| {
        t.tools()
            .iter()
            .map(|(n, s)| Tool {
                name: n.to_string(),
                spec: s.clone(),
            })
            .collect()
    })
}

/// One tool.
pub fn get(app: &App, scope: &TenantScope<Member>, name: &ToolName) -> Result<Tool, AppError> {
    scope
        .read(app, |t| {
            t.tools().get(name).map(|s| Tool {
                name: name.to_string(),
                spec: s.clone(),
            })
        })?
        .ok_or_else(|| AppError::not_found("tool", name.as_str()))
}
