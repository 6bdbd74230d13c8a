//! Authentication and authorization, as two explicit layers.
//!
//! * [`authenticate`] is middleware on every `/v1` route: it turns the
//!   bearer API key into a [`Caller`] (or answers 401) before anything
//!   else, idempotency replays included, sees the request.
//! * Handlers then declare what they need by their first extractor:
//!   [`TenantScope<R>`] for a tenant's resources with role `R`, or
//!   [`PlatformScope`] for tenant management. The scopes are the
//!   application layer's ([`crate::app::scope`]), which checks them; here
//!   they are only taken from the request.

use aura_engine::directory::{self, KeyId, KeyRefusal};
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use crate::app::scope::{
    Admin, AgentManager, Approver, Auditor, Caller, Member, Operator, PlatformScope, Requirement,
    TenantScope, Worker,
};

pub mod throttle;

use crate::app::keys::secret as key;
use crate::http::problem::{Problem, ProblemKind};
use crate::http::server::AppState;
use crate::time::now_millis;

fn unauthorized(detail: &str) -> Response {
    let mut r = Problem::new(ProblemKind::Unauthorized, detail).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"aura\""),
    );
    r
}

/// Middleware: authenticates the bearer key and stores the [`Caller`]. A
/// key that fails counts against its source's limit ([`throttle`]),
/// which is checked before any key is looked up.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return unauthorized("this endpoint needs an API key: `Authorization: Bearer aura_...`");
    };
    let source = crate::http::source::of(&req);
    if let Some(source) = source
        && let Some(refused) = throttle::refused(&state, source).await
    {
        return refused;
    }
    match caller_with_key(&state, value).await {
        Ok(caller) => {
            tracing::Span::current().record("key", caller.key_id.as_str());
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(Refused::Unauthorized(detail)) => {
            if let Some(source) = source {
                throttle::failed(&state, source).await;
            }
            unauthorized(detail)
        }
        Err(Refused::Other(resp)) => resp,
    }
}

/// Why a request was not authenticated: its key failed, or the check
/// could not be made.
enum Refused {
    Unauthorized(&'static str),
    Other(Response),
}

async fn caller_with_key(state: &AppState, value: &HeaderValue) -> Result<Caller, Refused> {
    let text = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some((id, secret)) = text.and_then(key::parse) else {
        return Err(Refused::Unauthorized(
            "the Authorization header does not hold an AURA API key",
        ));
    };
    let hash = key::hash_secret(secret);
    let app = &state.app;
    if let Some(found) = key_in_directory(app, &id, &hash) {
        return found;
    }
    // A key minted through another node that this one has not applied
    // yet: look once more after catching up with the cluster. Unknown
    // keys count against their source's limit, which bounds how often
    // anyone can make a node do this.
    app.engine()
        .catch_up()
        .await
        .map_err(|e| Refused::Other(crate::http::error::cluster(e).into_response()))?;
    key_in_directory(app, &id, &hash).unwrap_or(Err(Refused::Unauthorized(INVALID)))
}

/// Unknown id and wrong secret answer alike.
const INVALID: &str = "the API key is not valid";

/// The key from the replicated directory that holds it: a tenant's, or
/// the platform's (which acts for no tenant); `None` when none holds a
/// key with this id.
fn key_in_directory(
    app: &crate::app::App,
    id: &KeyId,
    hash: &aura_engine::Digest,
) -> Option<Result<Caller, Refused>> {
    let now = aura_engine::Timestamp(now_millis());
    app.read_local(|s| {
        let t = s.key_tenant(id)?;
        let d = t.directory();
        let stored = d.keys().get(id)?;
        if !key::hashes_match(hash, &stored.secret_hash) {
            return Some(Err(Refused::Unauthorized(INVALID)));
        }
        Some(match d.usable_key(id, now) {
            Ok(k) => Ok(Caller {
                key_id: id.clone(),
                tenant: (!directory::is_platform(t.id())).then(|| t.id().clone()),
                user: Some(k.user.clone()),
                roles: k.roles.clone(),
            }),
            Err(KeyRefusal::Revoked) => Err(Refused::Unauthorized("the API key has been revoked")),
            Err(KeyRefusal::Expired) => Err(Refused::Unauthorized("the API key has expired")),
            Err(_) => Err(Refused::Unauthorized(
                "the API key's user is no longer active",
            )),
        })
    })
}

fn caller(parts: &Parts) -> Result<Caller, Problem> {
    parts
        .extensions
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Problem::new(ProblemKind::Unauthorized, "this endpoint needs an API key"))
}

impl<R: Requirement> FromRequestParts<AppState> for TenantScope<R> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let caller = caller(parts)?;
        // The only way the parameters fail to parse is a segment that
        // percent-decodes to bytes that are not UTF-8: the caller's path.
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                Problem::new(
                    ProblemKind::BadRequest,
                    "a path segment is not valid percent-encoded UTF-8",
                )
            })?;
        let raw = params
            .iter()
            .find(|(k, _)| *k == "tenant")
            .map(|(_, v)| v.to_owned())
            .ok_or_else(|| Problem::new(ProblemKind::Internal, "route has no tenant segment"))?;
        Ok(TenantScope::authorize(&state.app, caller, &raw).await?)
    }
}

impl FromRequestParts<AppState> for PlatformScope {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Problem> {
        Ok(PlatformScope::authorize(caller(parts)?)?)
    }
}
