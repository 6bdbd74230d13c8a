//! `POST /v1/gateway/tool-calls`: the Tool Gateway over HTTP. Agents
//! authenticate with DualToken, not API keys, so this route sits outside
//! the API-key layer (see [`crate::gateway`] for the call path).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::gateway::{CallStatus, GatewayRefusal, ToolCallEnvelope, ToolCallOutcome};
use crate::http::json::Body;
use crate::http::problem::{Problem, retry_after};
use crate::http::server::AppState;

/// Calls a tool for an agent, governed: DualToken, schema, rate limits,
/// policy on the actual arguments, the deployment boundary, and the audit
/// chain before and after the effect.
#[utoipa::path(post, operation_id = "gateway_call_tool", path = "/v1/gateway/tool-calls", tag = "gateway",
    request_body = ToolCallEnvelope,
    responses(
        (status = 200, description = "The tool was called; `result` is its answer", body = ToolCallOutcome),
        (status = 202, description = "Policy escalated: the step waits for approval (`approval`); send the same call again once approved", body = ToolCallOutcome),
        (status = 401, description = "The DualToken check failed (`code` says which check); a tenant that does not exist is refused alike", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Policy denied the call (`decision`), or the token does not allow it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The engine refused the call (mission not executing, tool outside the boundary...)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The arguments do not match the tool's input schema", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "A rate limit was reached (per source address, agent, tool or tenant); see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The tool failed (recorded)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The tool did not answer in time (recorded)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn call_tool(
    State(state): State<AppState>,
    Body(envelope): Body<ToolCallEnvelope>,
) -> Response {
    match state.app.gateway().call(&state.app, &envelope).await {
        Ok(outcome) => {
            let status = match outcome.status {
                CallStatus::Completed => StatusCode::OK,
                CallStatus::AwaitingApproval => StatusCode::ACCEPTED,
            };
            (status, Json(outcome)).into_response()
        }
        Err(refusal) => refused(refusal),
    }
}

/// A refusal as a problem, with `Retry-After` when the call may be sent
/// again later.
pub fn refused(refusal: GatewayRefusal) -> Response {
    let r = Problem::from(refusal.error).into_response();
    match refusal.retry_after_ms {
        Some(ms) => retry_after(r, ms),
        None => r,
    }
}
