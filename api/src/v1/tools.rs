//! Tools: what a tool risks, which data it is cleared for and where it
//! runs. Registering again with the same name updates it.

use aura_engine::ids::ToolName;
use aura_engine::machine::CommandBody;
use aura_engine::machine::rejection::Rejection;
use aura_engine::policy::routing::ToolSpec;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Admin, Member, TenantScope};
use crate::json::Body;
use crate::problem::Problem;
use crate::server::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Tool {
    pub name: String,
    /// `risk` (L1 to L4), `classification` (public, internal, confidential,
    /// restricted: the most sensitive data it is cleared for), `target`
    /// (`on-prem`, `cloud` or `region:<name>`) and optionally `invocation`:
    /// `endpoint` (http/https URL), `input_schema` (JSON Schema object,
    /// self-contained), `compensation_endpoint`, `timeout_ms`, and
    /// `placements` (the same tool on other targets:
    /// `[{target, endpoint, compensation_endpoint?}]`; a call goes to the
    /// first deployment, own target first, that its data may reach), and
    /// `retry` (`{initial_interval_ms, backoff_coefficient,
    /// maximum_interval_ms, maximum_attempts, maximum_duration_ms?,
    /// non_retryable, on_exhaustion}`, every field defaulted; see
    /// docs/runtime.md).
    #[schema(value_type = Object)]
    pub spec: ToolSpec,
}

fn tool_name(raw: &str) -> Result<ToolName, Problem> {
    ToolName::new(raw).map_err(|e| Problem::invalid("/name", e.to_string()))
}

/// Registers a tool or updates its governance attributes.
#[utoipa::path(put, operation_id = "tools_put", path = "/v1/tenants/{tenant}/tools/{tool}", tag = "tools",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("tool" = String, Path)),
    request_body(content = Object, description = "The tool's spec: {risk, classification, target, invocation?: {endpoint, input_schema, compensation_endpoint?, timeout_ms, placements?, retry?}}"),
    responses(
        (status = 200, description = "Registered", body = Tool),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    Body(spec): Body<ToolSpec>,
) -> Result<Json<Tool>, Problem> {
    let (_, raw) = path;
    let tool = tool_name(&raw)?;
    // The engine's own checks first (it applies them again), so a spec
    // that is wrong in several ways is refused the same way here.
    spec.validate()
        .map_err(|e| crate::error::rejection(Rejection::BadConfig(e)))?;
    if let Some(invocation) = &spec.invocation {
        crate::gateway::schema::check(&invocation.input_schema)
            .map_err(|why| Problem::invalid("/invocation/input_schema", why))?;
    }
    state
        .app
        .propose(
            &scope.tenant,
            scope.actor(),
            CommandBody::RegisterTool {
                tool: tool.clone(),
                spec: spec.clone(),
            },
        )
        .await?;
    Ok(Json(Tool {
        name: tool.to_string(),
        spec,
    }))
}

/// Lists the tenant's tools.
#[utoipa::path(get, operation_id = "tools_list", path = "/v1/tenants/{tenant}/tools", tag = "tools",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "Tools", body = Vec<Tool>)))]
pub async fn list(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
) -> Result<Json<Vec<Tool>>, Problem> {
    let found = scope.read(&state.app, |t| {
        t.tools()
            .iter()
            .map(|(n, s)| Tool {
                name: n.to_string(),
                spec: s.clone(),
            })
            .collect()
    })?;
    Ok(Json(found))
}

/// Shows a tool.
#[utoipa::path(get, operation_id = "tools_get", path = "/v1/tenants/{tenant}/tools/{tool}", tag = "tools",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("tool" = String, Path)),
    responses(
        (status = 200, description = "The tool", body = Tool),
        (status = 404, description = "No such tool", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Json<Tool>, Problem> {
    let (_, raw) = path;
    let missing = || Problem::not_found("tool", &raw);
    let name = ToolName::new(raw.clone()).map_err(|_| missing())?;
    scope
        .read(&state.app, |t| {
            t.tools().get(&name).map(|s| Tool {
                name: name.to_string(),
                spec: s.clone(),
            })
        })?
        .map(Json)
        .ok_or_else(missing)
}
