//! The HTTP server: routes and the middleware every request passes
//! through, outermost first:
//!
//! 1. request id (`x-request-id`: the caller's, or a new one) and a
//!    tracing span per request carrying it;
//! 2. metrics by matched route;
//! 3. security headers and compression;
//! 4. problem+json for every error response, whoever produced it;
//! 5. panics become a 500 problem, not a dropped connection;
//! 6. request timeout and body size limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aura_raft::Node;
use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

use super::{auth, consistency, health, idempotency, v1};
use crate::app::App;
use crate::gateway::{Gateway, GatewayConfig, GatewayError};
use crate::http::metrics::Metrics;
use crate::http::openapi::document_json;
use crate::http::problem::{self, Problem, ProblemKind};
use crate::store::Store;

pub const REQUEST_ID: &str = "x-request-id";

/// How the HTTP server behaves; the defaults suit the embedded server.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub request_timeout: Duration,
    pub body_limit: usize,
    /// Origins allowed to call the API from a browser. Empty: no CORS
    /// headers at all, so browsers refuse cross-origin calls.
    pub cors_origins: Vec<HeaderValue>,
    pub gateway: GatewayConfig,
    /// The built-in executor; off when `None`.
    pub executor: Option<crate::runtime::executor::ExecutorConfig>,
    /// How long `Idempotency-Key`s are remembered.
    pub idempotency_retention: Duration,
    /// When the leader signs each tenant's audit chain.
    pub checkpoints: crate::runtime::checkpoints::CheckpointSchedule,
    /// Failed API-key authentications a source address may make before
    /// it is made to wait; unlimited when `None`.
    pub failed_auth_per_source: Option<crate::gateway::limits::Rate>,
    /// `/metrics`, `/docs/` and `/openapi.json` only for a platform key,
    /// instead of for anyone who reaches the listener.
    pub private_metrics_and_docs: bool,
    /// The listener speaks TLS: answers carry `Strict-Transport-Security`,
    /// so browsers never fall back to plain HTTP for this host.
    pub hsts: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            request_timeout: Duration::from_secs(30),
            body_limit: 4 * 1024 * 1024,
            cors_origins: Vec::new(),
            gateway: GatewayConfig::default(),
            executor: None,
            idempotency_retention: super::idempotency::DEFAULT_RETENTION,
            checkpoints: Default::default(),
            failed_auth_per_source: Some(super::auth::throttle::DEFAULT_FAILURES),
            private_metrics_and_docs: false,
            hsts: false,
        }
    }
}

/// What the HTTP edge holds: the application it fronts, the node it runs
/// on (for health, metrics and cluster status), and its own metrics and
/// settings.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub node: Node,
    pub metrics: Arc<Metrics>,
    pub config: Arc<ApiConfig>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("app", &self.app).finish()
    }
}

impl AppState {
    /// Connects what the API needs besides the engine and the database
    /// (Redis for the gateway, when configured).
    pub async fn connect(
        node: Node,
        store: Store,
        config: ApiConfig,
    ) -> Result<AppState, GatewayError> {
        let mut gateway_config = config.gateway.clone();
        // Outbound calls never reach this node's cluster listener; the
        // caller names the API listener (`config.gateway.egress`).
        gateway_config.egress.own_listener(node.local_addr());
        let gateway = Gateway::connect(&gateway_config).await?;
        Ok(AppState {
            app: App::new(Arc::new(node.clone()), store, Arc::new(gateway)),
            node,
            metrics: Arc::new(Metrics::default()),
            config: Arc::new(config),
        })
    }
}

/// Request ids: 128 random bits, hex.
#[derive(Clone, Copy, Debug, Default)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&crate::random::hex(16))
            .ok()
            .map(RequestId::new)
    }
}

pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(operator_routes(&state))
        .merge(
            v1::router()
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    consistency::read_index,
                ))
                .merge(v1::node_router())
                // Outermost first: authenticate, then idempotency, which
                // needs to know whose key it is; reads then catch up with
                // the cluster (all but the node's own status).
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    idempotency::idempotency,
                ))
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    auth::authenticate,
                )),
        )
        .merge(v1::agent_router(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());

    let security = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ];
    // A year, as browsers' preload lists ask; subdomains are the
    // operator's to decide, not AURA's.
    let hsts = (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    let mut routes = routes;
    for (name, value) in security.into_iter().chain(config.hsts.then_some(hsts)) {
        routes = routes.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    let routes = routes
        .layer(RequestBodyLimitLayer::new(config.body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), timeout))
        .layer(CatchPanicLayer::custom(|_| {
            Problem::new(
                ProblemKind::Internal,
                "the server failed while handling this request",
            )
            .into_response()
        }))
        .layer(middleware::from_fn(problem_json))
        .layer(CompressionLayer::new());
    let routes = if config.cors_origins.is_empty() {
        routes
    } else {
        routes.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(config.cors_origins.clone()))
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                ])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::IF_MATCH,
                    HeaderName::from_static(idempotency::HEADER),
                ])
                .expose_headers([header::ETAG, HeaderName::from_static(REQUEST_ID)]),
        )
    };
    let request_id = HeaderName::from_static(REQUEST_ID);
    routes.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), RandomRequestId))
            .layer(
                TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<Body>| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id, key = tracing::field::Empty)
                }),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(middleware::from_fn_with_state(state, record_metrics)),
    )
}

/// `/metrics` and the API's document with its Swagger UI: open to anyone
/// who reaches the listener, or, with `private_metrics_and_docs`, only to
/// a platform key (metrics count missions, decisions and refusals across
/// every tenant; docs/api.md says what each reveals).
fn operator_routes(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/metrics", get(health::metrics))
        .merge(SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", document_json()));
    if !state.config.private_metrics_and_docs {
        return routes;
    }
    routes
        .layer(middleware::from_fn(platform_only))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
}

/// Lets through a request whose authenticated key is a platform key.
async fn platform_only(req: Request, next: Next) -> Response {
    let caller = req.extensions().get::<auth::Caller>().cloned();
    let refused = |detail: &str| Problem::new(ProblemKind::Forbidden, detail).into_response();
    match caller.map(auth::PlatformScope::authorize) {
        Some(Ok(_)) => next.run(req).await,
        Some(Err(e)) => Problem::from(e).into_response(),
        None => refused("this endpoint needs a platform key"),
    }
}

async fn not_found(req: Request) -> Problem {
    Problem::new(
        ProblemKind::NotFound,
        format!("no resource at {}", req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> Problem {
    Problem::new(
        ProblemKind::MethodNotAllowed,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

async fn timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => Problem::new(
            ProblemKind::Timeout,
            format!("the request took longer than {} s", limit.as_secs()),
        )
        .into_response(),
    }
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .record(&method, &route, resp.status().as_u16(), start.elapsed());
    resp
}

/// Turns any error response that is not already problem+json (axum's
/// extractor rejections, the body limit, ...) into one, keeping its status
/// and its text as the detail, and stamps the request id into every
/// problem.
async fn problem_json(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(problem::CONTENT_TYPE.as_bytes()));
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut p: Problem = if is_problem {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => return with_instance(parts, v, request_id),
            Err(_) => Problem::new(ProblemKind::Internal, "malformed problem"),
        }
    } else {
        let kind = match status {
            StatusCode::NOT_FOUND => ProblemKind::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ProblemKind::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ProblemKind::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ProblemKind::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => ProblemKind::Validation,
            s if s.is_server_error() => ProblemKind::Internal,
            _ => ProblemKind::BadRequest,
        };
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        let detail = if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            text
        };
        let mut p = Problem::new(kind, detail);
        p.status = status.as_u16();
        p
    };
    p.instance = request_id;
    let mut out = p.into_response();
    *out.status_mut() = status;
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

fn with_instance(
    parts: axum::http::response::Parts,
    mut v: serde_json::Value,
    id: Option<String>,
) -> Response {
    if let (Some(id), Some(obj)) = (id, v.as_object_mut()) {
        obj.entry("instance")
            .or_insert(serde_json::Value::String(id));
    }
    let body = serde_json::to_vec(&v).expect("json serializes");
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
