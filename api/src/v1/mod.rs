//! The `/v1` API. Every route here sits behind authentication (and
//! idempotency for POST); each handler's first extractor declares the
//! scope and role it needs (see [`crate::auth`]).

pub mod directory;
pub mod keys;
pub mod namespaces;
pub mod tenants;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Serialize;

use crate::server::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", post(tenants::create).get(tenants::list))
        .route("/v1/tenants/{tenant}", get(tenants::get))
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
            get(directory::get_user).delete(directory::delete_user),
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
}

/// 201 Created with a `Location` header and the created resource.
pub fn created<T: Serialize>(location: String, body: &T) -> Response {
    let mut r = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
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
