//! Policy bundles and each namespace's policy configuration: the stable
//! bundle, canary releases, the authority graph with its approval rules,
//! deployment routing and the reasoner. Configuration reads carry an ETag; changes
//! need `If-Match` with it.

use std::collections::BTreeMap;

use aura_engine::Digest;
use aura_engine::ids::NamespaceId;
use aura_engine::machine::{CommandBody, ConfigPart, Namespace as EngineNamespace};
use aura_engine::policy::authority::AuthorityConfig;
use aura_engine::policy::reasoner::ReasonerConfig;
use aura_engine::policy::routing::RoutingTable;
use aura_engine::policy::testing::{CaseOutcome, TestCase, run_case};
use aura_engine::policy::{BundleSource, CompiledBundle};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::config::{if_match, tagged};
use super::created;
use super::namespaces::no_such_namespace;
use crate::auth::{Admin, Member, TenantScope};
use crate::json::Body;
use crate::problem::{FieldError, Problem, ProblemKind};
use crate::server::AppState;

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
pub struct BundleSummary {
    /// The bundle's version: the digest of its content.
    pub version: String,
    pub policies: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Bundle {
    pub version: String,
    pub policy_ids: Vec<String>,
    pub policies: String,
    pub schema: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BundleDiff {
    pub from: String,
    pub to: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Policies whose text differs.
    pub changed: Vec<String>,
    pub schema_changed: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunTests {
    /// Test cases: request, entities and the expected decision (see
    /// docs/policy.md).
    #[schema(value_type = Vec<Object>)]
    pub cases: Vec<TestCase>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseResult {
    pub name: String,
    /// `pass`, `fail` or `invalid`.
    pub outcome: String,
    /// For failures, what differed (expected first); for invalid cases,
    /// why.
    pub details: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestReport {
    pub passed: usize,
    pub failed: usize,
    pub invalid: usize,
    pub cases: Vec<CaseResult>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NamespacePolicy {
    pub stable: Option<String>,
    /// The running canary release with its shadow statistics and the
    /// analysis made before it started.
    #[schema(value_type = Option<Object>)]
    pub canary: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStable {
    pub version: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCanary {
    pub version: String,
    /// Share of new missions, in basis points (1 % = 100).
    pub basis_points: u32,
}

fn digest_param(pointer: &str, raw: &str) -> Result<Digest, Problem> {
    Digest::from_hex(raw)
        .map_err(|_| Problem::invalid(pointer, "not a bundle version (64 hex digits)"))
}

fn bundle_missing(raw: &str) -> Problem {
    Problem::new(
        ProblemKind::NotFound,
        format!("policy bundle {raw} does not exist"),
    )
}

fn compiled<R>(
    state: &AppState,
    scope: &TenantScope<R>,
    raw: &str,
) -> Result<std::sync::Arc<CompiledBundle>, Problem> {
    let version = Digest::from_hex(raw).map_err(|_| bundle_missing(raw))?;
    scope
        .read(&state.app, |t| t.compiled_bundle(&version).cloned())?
        .ok_or_else(|| bundle_missing(raw))
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
    // Compiled here first so that each problem becomes a field error; the
    // engine compiles it again on apply, on every replica.
    let bundle = CompiledBundle::compile(&source).map_err(|e| {
        Problem::new(ProblemKind::Validation, e.to_string()).with_errors(
            e.problems
                .iter()
                .map(|p| FieldError {
                    pointer: format!("/{}", p.file),
                    detail: p.to_string(),
                })
                .collect(),
        )
    })?;
    let version = bundle.version();
    state
        .app
        .propose(
            &scope.tenant,
            scope.actor(),
            CommandBody::PutPolicyBundle { source },
        )
        .await?;
    Ok(created(
        format!(
            "/v1/tenants/{}/policy-bundles/{}",
            scope.tenant,
            version.to_hex()
        ),
        &BundleSummary {
            version: version.to_hex(),
            policies: bundle.policy_ids().to_vec(),
        },
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
    let found = scope.read(&state.app, |t| {
        t.bundles()
            .keys()
            .filter_map(|v| {
                t.compiled_bundle(v).map(|b| BundleSummary {
                    version: v.to_hex(),
                    policies: b.policy_ids().to_vec(),
                })
            })
            .collect()
    })?;
    Ok(Json(found))
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
    let (_, raw) = path;
    let b = compiled(&state, &scope, &raw)?;
    let version = b.version();
    let source = scope
        .read(&state.app, |t| t.bundles().get(&version).cloned())?
        .ok_or_else(|| bundle_missing(&raw))?;
    Ok(Json(Bundle {
        version: version.to_hex(),
        policy_ids: b.policy_ids().to_vec(),
        policies: source.policies,
        schema: source.schema,
    }))
}

fn policy_texts(b: &CompiledBundle) -> BTreeMap<String, String> {
    b.policies()
        .policies()
        .map(|p| (p.id().to_string(), p.to_string()))
        .collect()
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
    let a = compiled(&state, &scope, &from)?;
    let b = compiled(&state, &scope, &to)?;
    let (ta, tb) = (policy_texts(&a), policy_texts(&b));
    let schema_changed = scope.read(&state.app, |t| {
        let sa = t
            .bundles()
            .get(&a.version())
            .map(|s| s.schema_text().to_owned());
        let sb = t
            .bundles()
            .get(&b.version())
            .map(|s| s.schema_text().to_owned());
        sa != sb
    })?;
    Ok(Json(BundleDiff {
        from: a.version().to_hex(),
        to: b.version().to_hex(),
        added: tb
            .keys()
            .filter(|k| !ta.contains_key(*k))
            .cloned()
            .collect(),
        removed: ta
            .keys()
            .filter(|k| !tb.contains_key(*k))
            .cloned()
            .collect(),
        changed: ta
            .iter()
            .filter(|(k, v)| tb.get(*k).is_some_and(|w| w != *v))
            .map(|(k, _)| k.clone())
            .collect(),
        schema_changed,
    }))
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
    let (_, raw) = path;
    let b = compiled(&state, &scope, &raw)?;
    let mut report = TestReport {
        passed: 0,
        failed: 0,
        invalid: 0,
        cases: Vec::new(),
    };
    for case in &req.cases {
        let (outcome, details) = match run_case(&b, case) {
            CaseOutcome::Pass => {
                report.passed += 1;
                ("pass", Vec::new())
            }
            CaseOutcome::Fail(d) => {
                report.failed += 1;
                ("fail", d)
            }
            CaseOutcome::Invalid(why) => {
                report.invalid += 1;
                ("invalid", vec![why])
            }
        };
        report.cases.push(CaseResult {
            name: case.name.clone(),
            outcome: outcome.into(),
            details,
        });
    }
    Ok(Json(report))
}

fn read_ns<S, R>(
    state: &AppState,
    scope: &TenantScope<S>,
    raw: &str,
    f: impl FnOnce(&EngineNamespace) -> R,
) -> Result<(NamespaceId, R), Problem> {
    let id = NamespaceId::new(raw).map_err(|_| no_such_namespace(raw))?;
    let r = scope
        .read(&state.app, |t| t.namespaces().get(&id).map(f))?
        .ok_or_else(|| no_such_namespace(raw))?;
    Ok((id, r))
}

fn policy_view(n: &EngineNamespace) -> NamespacePolicy {
    NamespacePolicy {
        stable: n.policy.stable.map(|d| d.to_hex()),
        canary: n
            .policy
            .canary
            .as_ref()
            .map(|c| serde_json::to_value(c).expect("canaries serialize")),
    }
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
    show_config(&state, &scope, &path.1, ConfigPart::Releases, policy_view)
}

/// Which change to the namespace's policy releases.
enum Release {
    Stable(Digest),
    Canary(Digest, u32),
    Promote,
    Rollback,
}

async fn release(
    scope: &TenantScope<Admin>,
    state: &AppState,
    headers: &HeaderMap,
    ns: &str,
    change: Release,
) -> Result<Response, Problem> {
    let body = |namespace| match change {
        Release::Stable(version) => CommandBody::SetStableBundle { namespace, version },
        Release::Canary(version, basis_points) => CommandBody::StartCanary {
            namespace,
            version,
            basis_points,
        },
        Release::Promote => CommandBody::PromoteCanary { namespace },
        Release::Rollback => CommandBody::RollbackCanary { namespace },
    };
    change_config(
        scope,
        state,
        headers,
        ns,
        ConfigPart::Releases,
        body,
        policy_view,
    )
    .await
}

/// A configuration part with its ETag.
fn show_config<S, V: Serialize>(
    state: &AppState,
    scope: &TenantScope<S>,
    ns: &str,
    part: ConfigPart,
    view: impl FnOnce(&EngineNamespace) -> V,
) -> Result<Response, Problem> {
    let (_, (v, version)) = read_ns(state, scope, ns, |n| (view(n), n.config_version(part)))?;
    Ok(tagged(&v, version))
}

/// Changes a configuration part under `If-Match`: the ETag becomes the
/// command's precondition, and the answer is the part as now applied.
async fn change_config<V: Serialize>(
    scope: &TenantScope<Admin>,
    state: &AppState,
    headers: &HeaderMap,
    ns: &str,
    part: ConfigPart,
    body: impl FnOnce(NamespaceId) -> CommandBody,
    view: impl FnOnce(&EngineNamespace) -> V,
) -> Result<Response, Problem> {
    let (id, current) = read_ns(state, scope, ns, |n| n.config_version(part))?;
    let precondition = if_match(headers, &id, part, current)?;
    state
        .app
        .propose_if(&scope.tenant, scope.actor(), body(id), precondition)
        .await?;
    show_config(state, scope, ns, part, view)
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
    let version = digest_param("/version", &req.version)?;
    release(&scope, &state, &headers, &path.1, Release::Stable(version)).await
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
    let version = digest_param("/version", &req.version)?;
    if !(1..=10_000).contains(&req.basis_points) {
        return Err(Problem::invalid("/basis_points", "must be 1 to 10000"));
    }
    let change = Release::Canary(version, req.basis_points);
    release(&scope, &state, &headers, &path.1, change).await
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
    release(&scope, &state, &headers, &path.1, Release::Promote).await
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
    release(&scope, &state, &headers, &path.1, Release::Rollback).await
}

/// The authority graph (users and groups → L1..L4) and approval rules.
#[utoipa::path(get, operation_id = "policy_get_authority", path = "/v1/tenants/{tenant}/namespaces/{namespace}/authority", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path)),
    responses(
        (status = 200, description = "The authority configuration", body = Object, headers(("ETag" = String))),
        (status = 404, description = "No such namespace", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_authority(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Response, Problem> {
    show_config(&state, &scope, &path.1, ConfigPart::Authority, |n| {
        n.authority.clone()
    })
}

/// Replaces the authority graph and approval rules.
#[utoipa::path(put, operation_id = "policy_put_authority", path = "/v1/tenants/{tenant}/namespaces/{namespace}/authority", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path), ("If-Match" = String, Header)),
    request_body(content = Object, description = "{graph: {users, groups}, rules: {min_level, quorum, separation_of_duties, deadline, at_deadline}}"),
    responses(
        (status = 200, description = "Replaced", body = Object, headers(("ETag" = String))),
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
    let body = |namespace| CommandBody::SetAuthority { namespace, config };
    let view = |n: &EngineNamespace| n.authority.clone();
    change_config(
        &scope,
        &state,
        &headers,
        &path.1,
        ConfigPart::Authority,
        body,
        view,
    )
    .await
}

/// Deployment routing: which targets each data classification may reach.
#[utoipa::path(get, operation_id = "policy_get_routing", path = "/v1/tenants/{tenant}/namespaces/{namespace}/routing", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path)),
    responses(
        (status = 200, description = "The routing table", body = Object, headers(("ETag" = String))),
        (status = 404, description = "No such namespace", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_routing(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Response, Problem> {
    show_config(&state, &scope, &path.1, ConfigPart::Routing, |n| {
        n.routing.clone()
    })
}

/// Replaces the routing table.
#[utoipa::path(put, operation_id = "policy_put_routing", path = "/v1/tenants/{tenant}/namespaces/{namespace}/routing", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path), ("If-Match" = String, Header)),
    request_body(content = Object, description = "classification → allowed targets, e.g. {\"confidential\": [\"on-prem\"]}"),
    responses(
        (status = 200, description = "Replaced", body = Object, headers(("ETag" = String))),
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
    let body = |namespace| CommandBody::SetRouting { namespace, routing };
    let view = |n: &EngineNamespace| n.routing.clone();
    change_config(
        &scope,
        &state,
        &headers,
        &path.1,
        ConfigPart::Routing,
        body,
        view,
    )
    .await
}

/// Which reasoner plans the namespace's missions run by the built-in
/// executor.
#[utoipa::path(get, operation_id = "policy_get_reasoner", path = "/v1/tenants/{tenant}/namespaces/{namespace}/reasoner", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path)),
    responses(
        (status = 200, description = "The reasoner configuration", body = Object, headers(("ETag" = String))),
        (status = 404, description = "No such namespace", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_reasoner(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Response, Problem> {
    show_config(&state, &scope, &path.1, ConfigPart::Reasoner, |n| {
        n.reasoner.clone()
    })
}

/// Replaces the reasoner configuration. A model provider's API key is
/// named, not sent: `api_key_secret` is a file in each node's secrets
/// directory.
#[utoipa::path(put, operation_id = "policy_put_reasoner", path = "/v1/tenants/{tenant}/namespaces/{namespace}/reasoner", tag = "policy",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path), ("If-Match" = String, Header)),
    request_body(content = Object, description = "{\"provider\": \"scripted\"}, or {\"provider\": \"anthropic\" | \"openai-compatible\", \"url\", \"model\", \"target\", \"timeout_ms\", \"api_key_secret\", \"retry\"}"),
    responses(
        (status = 200, description = "Replaced", body = Object, headers(("ETag" = String))),
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
    let body = |namespace| CommandBody::SetReasoner {
        namespace,
        reasoner,
    };
    let view = |n: &EngineNamespace| n.reasoner.clone();
    change_config(
        &scope,
        &state,
        &headers,
        &path.1,
        ConfigPart::Reasoner,
        body,
        view,
    )
    .await
}
