//! The `/v1` API. Every route of [`router`] sits behind API-key
//! authentication (and idempotency for POST); each handler's first
//! extractor declares the scope and role it needs (see [`crate::http::auth`]).
//! [`agent_router`] holds the routes agents call with DualToken instead.

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod cluster;
pub(crate) mod config;
pub mod directory;
pub mod events;
pub mod gateway;
pub mod keys;
pub mod missions;
pub mod namespaces;
pub mod platform;
pub mod policy;
pub mod secrets;
pub mod signing_keys;
pub mod tenants;
pub mod tools;
pub mod work;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Serialize;

use crate::http::server::AppState;

/// Routes agents call, authenticated by DualToken in the request itself,
/// behind a limit per source address.
pub fn agent_router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(crate::gateway::TOOL_CALLS_PATH, post(gateway::call_tool))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::http::source::gateway_admission,
        ))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", post(tenants::create).get(tenants::list))
        .route("/v1/tenants/{tenant}", get(tenants::get))
        .route("/v1/platform", get(tenants::platform))
        .route("/v1/platform/keys", get(platform::list_keys))
        .route("/v1/platform/keys/rotate", post(platform::rotate))
        .route("/v1/platform/keys/{key}", delete(platform::revoke_key))
        .route("/v1/platform/audit/entries", get(platform::audit_entries))
        .route("/v1/platform/audit/export", get(platform::audit_export))
        .route(
            "/v1/tenants/{tenant}/namespaces",
            post(namespaces::create).get(namespaces::list),
        )
        .route(
            "/v1/tenants/{tenant}/namespaces/{namespace}",
            get(namespaces::get),
        )
        .route(
            "/v1/tenants/{tenant}/api-keys",
            post(keys::create).get(keys::list),
        )
        .route("/v1/tenants/{tenant}/api-keys/{key}", delete(keys::revoke))
        .route(
            "/v1/tenants/{tenant}/users",
            post(directory::create_user).get(directory::list_users),
        )
        .route(
            "/v1/tenants/{tenant}/users/{user}",
            get(directory::get_user)
                .patch(directory::update_user)
                .delete(directory::delete_user),
        )
        .route(
            "/v1/tenants/{tenant}/groups",
            post(directory::create_group).get(directory::list_groups),
        )
        .route(
            "/v1/tenants/{tenant}/groups/{group}",
            get(directory::get_group).delete(directory::delete_group),
        )
        .route(
            "/v1/tenants/{tenant}/groups/{group}/members/{user}",
            put(directory::add_member).delete(directory::remove_member),
        )
        .route(
            "/v1/tenants/{tenant}/agents",
            post(agents::register).get(agents::list),
        )
        .route("/v1/tenants/{tenant}/agents/{agent}", get(agents::get))
        .route(
            "/v1/tenants/{tenant}/credentials/{serial}/revoke",
            post(agents::revoke),
        )
        .route(
            "/v1/tenants/{tenant}/signing-keys",
            get(signing_keys::list).post(signing_keys::rotate),
        )
        .route("/v1/tenants/{tenant}/secrets", get(secrets::list))
        .route(
            "/v1/tenants/{tenant}/secrets/{name}",
            put(secrets::put).delete(secrets::delete),
        )
        .route("/v1/tenants/{tenant}/tools", get(tools::list))
        .route(
            "/v1/tenants/{tenant}/tools/{tool}",
            put(tools::put).get(tools::get),
        )
        .route(
            "/v1/tenants/{tenant}/policy-bundles",
            post(policy::upload).get(policy::list),
        )
        .route(
            "/v1/tenants/{tenant}/policy-bundles/{version}",
            get(policy::get),
        )
        .route(
            "/v1/tenants/{tenant}/policy-bundles/{version}/diff/{other}",
            get(policy::diff),
        )
        .route(
            "/v1/tenants/{tenant}/policy-bundles/{version}/tests",
            post(policy::run_tests),
        )
        .route(
            "/v1/tenants/{tenant}/namespaces/{namespace}/policy",
            get(policy::get_policy),
        )
        .route(
            "/v1/tenants/{tenant}/namespaces/{namespace}/policy/stable",
            put(policy::set_stable),
        )
        .route(
            "/v1/tenants/{tenant}/namespaces/{namespace}/policy/canary",
            post(policy::start_canary),
        )
        .route(
            "/v1/tenants/{tenant}/namespaces/{namespace}/policy/canary/promote",
            post(policy::promote),
        )
        .route(
            "/v1/tenants/{tenant}/namespaces/{namespace}/policy/canary/rollback",
            post(policy::rollback),
        )
        .route(
            "/v1/tenants/{tenant}/namespaces/{namespace}/authority",
            get(policy::get_authority).put(policy::put_authority),
        )
        .route(
            "/v1/tenants/{tenant}/namespaces/{namespace}/routing",
            get(policy::get_routing).put(policy::put_routing),
        )
        .route(
            "/v1/tenants/{tenant}/namespaces/{namespace}/reasoner",
            get(policy::get_reasoner).put(policy::put_reasoner),
        )
        .route(
            "/v1/tenants/{tenant}/missions",
            post(missions::create).get(missions::list),
        )
        .route(
            "/v1/tenants/{tenant}/missions/{mission}",
            get(missions::get),
        )
        .route(
            "/v1/tenants/{tenant}/missions/{mission}/plan",
            post(missions::submit_plan),
        )
        .route(
            "/v1/tenants/{tenant}/missions/{mission}/cancel",
            post(missions::cancel),
        )
        .route(
            "/v1/tenants/{tenant}/missions/{mission}/tokens",
            post(missions::issue_token),
        )
        .route(
            "/v1/tenants/{tenant}/missions/{mission}/decisions",
            post(approvals::decide),
        )
        .route("/v1/tenants/{tenant}/approvals", get(approvals::inbox))
        .route("/v1/tenants/{tenant}/audit/entries", get(audit::entries))
        .route(
            "/v1/tenants/{tenant}/audit/checkpoints",
            get(audit::checkpoints).post(audit::sign_checkpoint),
        )
        .route(
            "/v1/tenants/{tenant}/audit/proofs/inclusion",
            get(audit::inclusion),
        )
        .route(
            "/v1/tenants/{tenant}/audit/proofs/consistency",
            get(audit::consistency),
        )
        .route("/v1/tenants/{tenant}/audit/export", get(audit::export))
        .route(
            "/v1/tenants/{tenant}/missions/{mission}/events",
            get(events::stream),
        )
        .route(
            "/v1/tenants/{tenant}/namespaces/{namespace}/claims",
            post(work::claim),
        )
        .route(
            "/v1/tenants/{tenant}/missions/{mission}/heartbeat",
            post(work::heartbeat),
        )
        .route(
            "/v1/tenants/{tenant}/missions/{mission}/steps/{step}/report",
            post(work::report_step),
        )
        .route(
            "/v1/tenants/{tenant}/missions/{mission}/execution",
            get(work::execution),
        )
}

/// Routes about this node itself, which answer from its own view even
/// without a leader: no read index before them.
pub fn node_router() -> Router<AppState> {
    Router::new().route("/v1/cluster", get(cluster::status))
}

/// 201 Created with a `Location` header and the created resource.
pub fn created<T: Serialize>(location: String, body: &T) -> Response {
    let mut r = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// [`created`] for a body holding a secret shown this once (a minted
/// key): the response says so, and an `Idempotency-Key` retry is answered
/// that `what` exists rather than replaying the secret, which is never
/// kept.
pub fn created_once<T: Serialize>(location: String, body: &T, what: String) -> Response {
    let mut r = created(location, body);
    r.extensions_mut()
        .insert(crate::http::idempotency::ShownOnce(what));
    r
}

/// A list response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
