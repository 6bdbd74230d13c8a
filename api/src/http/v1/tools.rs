//! Tools over REST ([`crate::app::tools`] holds the use cases).

use aura_engine::ids::ToolName;
use aura_engine::tool::ToolSpec;
use axum::Json;
use axum::extract::{Path, State};

use crate::app::tools;
pub use crate::app::tools::Tool;
use crate::http::auth::{Admin, Member, TenantScope};
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

fn tool_name(raw: &str) -> Result<ToolName, Problem> {
    ToolName::new(raw).map_err(|e| Problem::invalid("/name", e.to_string()))
}

/// Registers a tool or updates its governance attributes.
#[utoipa::path(put, operation_id = "tools_put", path = "/v1/tenants/{tenant}/tools/{tool}", tag = "tools",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("tool" = ToolName, Path)),
    request_body = ToolSpec,
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
    Ok(Json(tools::register(&state.app, &scope, tool, spec).await?))
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
    Ok(Json(tools::list(&state.app, &scope)?))
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
    let name = ToolName::new(raw.clone()).map_err(|_| Problem::not_found("tool", &raw))?;
    Ok(Json(tools::get(&state.app, &scope, &name)?))
}
