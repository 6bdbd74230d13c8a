//! Policy over REST ([`crate::app::policy`] holds the use cases):
//! bundles, and each namespace's configuration. Configuration reads carry
//! an ETag; changes need `If-Match` with it.

use aura_engine::policy::BundleSource;
use aura_engine::policy::authority::AuthorityConfig;
use aura_engine::policy::reasoner::ReasonerConfig;
use aura_engine::policy::routing::RoutingTable;
use aura_engine::policy::testing::TestCase;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::config::{expected, tagged};
use super::created;
use super::namespaces::namespace_id;
use crate::app::policy::bundles::{self, version_of};
pub use crate::app::policy::bundles::{Bundle, BundleDiff, BundleSummary, CaseResult, TestReport};
pub use crate::app::policy::config::NamespacePolicy;
use crate::app::policy::config::{self, Authority, Reasoner, Release, Releases, Routing};
use crate::http::auth::{Admin, Member, TenantScope};
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadBundle {
    /// Cedar policies; each named by its `@id("…")` annotation.
    pub policies: String,
    /// Cedar schema text; omitted: AURA's base schema.
    #[serde(default)]
    pub schema: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunTests {
    /// Test cases: request, entities and the expected decision (see
    /// docs/policy.md).
    pub cases: Vec<TestCase>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStable {
    /// The bundle's version.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub version: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCanary {
    /// The bundle's version.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub version: String,
    /// Share of new missions, in basis points (1 % = 100).
    #[schema(minimum = 1, maximum = 10_000)]
    pub basis_points: u32,
}

/// A bundle version in a request body: one that is not a version is
/// malformed input there, not a missing bundle.
fn body_version(raw: &str) -> Result<aura_engine::Digest, Problem> {
    aura_engine::Digest::from_hex(raw)
        .map_err(|_| Problem::invalid("/version", "not a bundle version (64 hex digits)"))
}

/// Uploads a policy bundle. It is validated strictly against its schema;
/// each problem is reported with its policy, line and column.
#[utoipa::path(post, operation_id = "policy_upload", path = "/v1/tenants/{tenant}/policy-bundles", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    request_body = UploadBundle,
    responses(
        (status = 201, description = "Stored (uploading the same bundle again is harmless)", body = BundleSummary),
        (status = 422, description = "The bundle is invalid", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn upload(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Body(req): Body<UploadBundle>,
) -> Result<Response, Problem> {
    let source = BundleSource {
        policies: req.policies,
        schema: req.schema,
    };
    let summary = bundles::upload(&state.app, &scope, source).await?;
    Ok(created(
        format!(
            "/v1/tenants/{}/policy-bundles/{}",
            scope.tenant, summary.version
        ),
        &summary,
    ))
}

/// Lists the tenant's bundles.
#[utoipa::path(get, operation_id = "policy_list", path = "/v1/tenants/{tenant}/policy-bundles", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "Bundles", body = Vec<BundleSummary>)))]
pub async fn list(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
) -> Result<Json<Vec<BundleSummary>>, Problem> {
    Ok(Json(bundles::list(&state.app, &scope)?))
}

/// Shows a bundle's source.
#[utoipa::path(get, operation_id = "policy_get", path = "/v1/tenants/{tenant}/policy-bundles/{version}", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("version" = String, Path)),
    responses(
        (status = 200, description = "The bundle", body = Bundle),
        (status = 404, description = "No such bundle", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Json<Bundle>, Problem> {
    let version = version_of(&path.1)?;
    Ok(Json(bundles::get(&state.app, &scope, &version)?))
}

/// What changed between two bundles, policy by policy.
#[utoipa::path(get, operation_id = "policy_diff", path = "/v1/tenants/{tenant}/policy-bundles/{version}/diff/{other}", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("version" = String, Path), ("other" = String, Path, description = "The newer bundle")),
    responses(
        (status = 200, description = "The differences", body = BundleDiff),
        (status = 404, description = "No such bundle", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn diff(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String, String)>,
) -> Result<Json<BundleDiff>, Problem> {
    let (_, from, to) = path;
    let (from, to) = (version_of(&from)?, version_of(&to)?);
    Ok(Json(bundles::diff(&state.app, &scope, &from, &to)?))
}

/// Runs test cases against a bundle (like Cedar's `run-tests`). Nothing
/// is changed.
#[utoipa::path(post, operation_id = "policy_run_tests", path = "/v1/tenants/{tenant}/policy-bundles/{version}/tests", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("version" = String, Path)),
    request_body = RunTests,
    responses(
        (status = 200, description = "Each case's result", body = TestReport),
        (status = 404, description = "No such bundle", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn run_tests(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    Body(req): Body<RunTests>,
) -> Result<Json<TestReport>, Problem> {
    let version = version_of(&path.1)?;
    Ok(Json(bundles::run_tests(
        &state.app, &scope, &version, &req.cases,
    )?))
}

/// The namespace's stable bundle and canary release (with shadow
/// statistics), with its ETag.
#[utoipa::path(get, operation_id = "policy_get_policy", path = "/v1/tenants/{tenant}/namespaces/{namespace}/policy", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path)),
    responses(
        (status = 200, description = "The policy configuration", body = NamespacePolicy, headers(("ETag" = String))),
        (status = 404, description = "No such namespace", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_policy(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Response, Problem> {
    let ns = namespace_id(&path.1)?;
    Ok(tagged(config::read::<Releases, _>(
        &state.app, &scope, &ns,
    )?))
}

/// Sets the namespace's stable bundle (no canary may be running).
#[utoipa::path(put, operation_id = "policy_set_stable", path = "/v1/tenants/{tenant}/namespaces/{namespace}/policy/stable", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path), ("If-Match" = String, Header)),
    request_body = SetStable,
    responses(
        (status = 200, description = "Set", body = NamespacePolicy),
        (status = 412, description = "The configuration changed since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_stable(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    Body(req): Body<SetStable>,
) -> Result<Response, Problem> {
    let change = Release::Stable(body_version(&req.version)?);
    release(&state, &scope, &path.1, &headers, change).await
}

/// Starts a canary release, after replaying the namespace's recent
/// decisions against it (the analysis is in the response).
#[utoipa::path(post, operation_id = "policy_start_canary", path = "/v1/tenants/{tenant}/namespaces/{namespace}/policy/canary", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path), ("If-Match" = String, Header)),
    request_body = StartCanary,
    responses(
        (status = 200, description = "Started", body = NamespacePolicy),
        (status = 409, description = "A canary is running, or there is no stable bundle", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The configuration changed since it was read", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start_canary(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    Body(req): Body<StartCanary>,
) -> Result<Response, Problem> {
    let change = Release::Canary(body_version(&req.version)?, req.basis_points);
    release(&state, &scope, &path.1, &headers, change).await
}

/// Promotes the canary: it becomes the stable bundle.
#[utoipa::path(post, operation_id = "policy_promote", path = "/v1/tenants/{tenant}/namespaces/{namespace}/policy/canary/promote", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path), ("If-Match" = String, Header)),
    responses(
        (status = 200, description = "Promoted", body = NamespacePolicy),
        (status = 409, description = "No canary is running", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn promote(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    release(&state, &scope, &path.1, &headers, Release::Promote).await
}

/// Rolls the canary back: the stable bundle decides everything again.
#[utoipa::path(post, operation_id = "policy_rollback", path = "/v1/tenants/{tenant}/namespaces/{namespace}/policy/canary/rollback", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path), ("If-Match" = String, Header)),
    responses(
        (status = 200, description = "Rolled back", body = NamespacePolicy),
        (status = 409, description = "No canary is running", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rollback(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    release(&state, &scope, &path.1, &headers, Release::Rollback).await
}

/// The authority graph (users and groups → L1..L4) and approval rules.
#[utoipa::path(get, operation_id = "policy_get_authority", path = "/v1/tenants/{tenant}/namespaces/{namespace}/authority", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path)),
    responses(
        (status = 200, description = "The authority configuration", body = AuthorityConfig, headers(("ETag" = String))),
        (status = 404, description = "No such namespace", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_authority(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Response, Problem> {
    let ns = namespace_id(&path.1)?;
    Ok(tagged(config::read::<Authority, _>(
        &state.app, &scope, &ns,
    )?))
}

/// Replaces the authority graph and approval rules.
#[utoipa::path(put, operation_id = "policy_put_authority", path = "/v1/tenants/{tenant}/namespaces/{namespace}/authority", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path), ("If-Match" = String, Header)),
    request_body = AuthorityConfig,
    responses(
        (status = 200, description = "Replaced", body = AuthorityConfig, headers(("ETag" = String))),
        (status = 412, description = "The configuration changed since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid configuration", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_authority(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    Body(config): Body<AuthorityConfig>,
) -> Result<Response, Problem> {
    let ns = namespace_id(&path.1)?;
    let done =
        config::replace::<Authority>(&state.app, &scope, &ns, expected(&headers), config).await?;
    Ok(tagged(done))
}

/// Deployment routing: which targets each data classification may reach.
#[utoipa::path(get, operation_id = "policy_get_routing", path = "/v1/tenants/{tenant}/namespaces/{namespace}/routing", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path)),
    responses(
        (status = 200, description = "The routing table", body = RoutingTable, headers(("ETag" = String))),
        (status = 404, description = "No such namespace", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_routing(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Response, Problem> {
    let ns = namespace_id(&path.1)?;
    Ok(tagged(config::read::<Routing, _>(&state.app, &scope, &ns)?))
}

/// Replaces the routing table.
#[utoipa::path(put, operation_id = "policy_put_routing", path = "/v1/tenants/{tenant}/namespaces/{namespace}/routing", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path), ("If-Match" = String, Header)),
    request_body = RoutingTable,
    responses(
        (status = 200, description = "Replaced", body = RoutingTable, headers(("ETag" = String))),
        (status = 412, description = "The configuration changed since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid configuration", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_routing(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    Body(routing): Body<RoutingTable>,
) -> Result<Response, Problem> {
    let ns = namespace_id(&path.1)?;
    let done =
        config::replace::<Routing>(&state.app, &scope, &ns, expected(&headers), routing).await?;
    Ok(tagged(done))
}

/// Which reasoner plans the namespace's missions run by the built-in
/// executor.
#[utoipa::path(get, operation_id = "policy_get_reasoner", path = "/v1/tenants/{tenant}/namespaces/{namespace}/reasoner", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path)),
    responses(
        (status = 200, description = "The reasoner configuration", body = ReasonerConfig, headers(("ETag" = String))),
        (status = 404, description = "No such namespace", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_reasoner(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Response, Problem> {
    let ns = namespace_id(&path.1)?;
    Ok(tagged(config::read::<Reasoner, _>(
        &state.app, &scope, &ns,
    )?))
}

/// Replaces the reasoner configuration. A model provider's API key is
/// named, not sent: `api_key_secret` is a file in each node's secrets
/// directory.
#[utoipa::path(put, operation_id = "policy_put_reasoner", path = "/v1/tenants/{tenant}/namespaces/{namespace}/reasoner", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path), ("If-Match" = String, Header)),
    request_body = ReasonerConfig,
    responses(
        (status = 200, description = "Replaced", body = ReasonerConfig, headers(("ETag" = String))),
        (status = 412, description = "The configuration changed since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid configuration", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_reasoner(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    Body(reasoner): Body<ReasonerConfig>,
) -> Result<Response, Problem> {
    let ns = namespace_id(&path.1)?;
    let done =
        config::replace::<Reasoner>(&state.app, &scope, &ns, expected(&headers), reasoner).await?;
    Ok(tagged(done))
}

/// A change to the releases, with the `If-Match` the caller sent.
async fn release(
    state: &AppState,
    scope: &TenantScope<Admin>,
    ns: &str,
    headers: &HeaderMap,
    change: Release,
) -> Result<Response, Problem> {
    let ns = namespace_id(ns)?;
    let done = config::release(&state.app, scope, &ns, expected(headers), change).await?;
    Ok(tagged(done))
}
