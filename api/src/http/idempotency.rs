//! `Idempotency-Key` on POST: the first response to a (caller, key) is
//! recorded and every retry with the same request gets it back, with
//! nothing done twice. The same key with a different request is refused;
//! a retry while the first is still running waits for nothing and gets a
//! 409 it can retry. A server error is not recorded, so its retry runs
//! again, except one after which the write may have taken effect.

use std::time::Duration;

use aura_engine::Digest;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::http::auth::Caller;
use crate::http::error;
use crate::http::problem::{CONTENT_TYPE, MayHaveTakenEffect, Problem, ProblemKind};
use crate::http::server::AppState;
use crate::store::idempotency::{Claim, RecordedResponse};
use crate::time::now_millis;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";

/// Longest a first attempt may hold its key before it counts as abandoned
/// (its server must have stopped: requests time out well before this).
const STALE_AFTER_MS: i64 = 5 * 60 * 1000;

const REPLAYED_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) => k.to_owned(),
        _ => {
            return Problem::new(
                ProblemKind::BadRequest,
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
            .into_response();
        }
    };
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let limit = state.config.body_limit;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return Problem::new(
                ProblemKind::PayloadTooLarge,
                format!("the request body is larger than {limit} bytes"),
            )
            .into_response();
        }
    };
    let digest = request_digest(&parts.method, &parts.uri.to_string(), &bytes);

    let claim = state
        .app
        .store()
        .claim_idempotent(
            caller.key_id.as_str(),
            &key,
            &digest,
            now_millis(),
            STALE_AFTER_MS,
        )
        .await;
    match claim {
        Err(e) => error::store(e).into_response(),
        Ok(Claim::Replay(r)) => replay(r),
        Ok(Claim::Mismatch) => Problem::new(
            ProblemKind::IdempotencyMismatch,
            "this Idempotency-Key was used for a different request",
        )
        .into_response(),
        Ok(Claim::InProgress) => Problem::new(
            ProblemKind::IdempotencyInProgress,
            "the first request with this Idempotency-Key is still being handled; retry shortly",
        )
        .into_response(),
        Ok(Claim::Abandoned) => {
            let resp = record(
                &state,
                caller.key_id.as_str(),
                &key,
                cut_off().into_response(),
            )
            .await;
            replayed(resp)
        }
        Ok(Claim::Fresh) => {
            let mut unfinished = Unfinished {
                state: state.clone(),
                principal: caller.key_id.to_string(),
                key: key.clone(),
                running: true,
            };
            let resp = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            unfinished.running = false;
            record(&state, caller.key_id.as_str(), &key, resp).await
        }
    }
}

/// Guards a first request while its handler runs. Should the handler be
/// dropped part way (the request timed out, its client went away, it
/// panicked), the write may have been proposed already, so the key is
/// recorded with that unknown outcome instead of being left claimed,
/// which a retry would take over and run again.
struct Unfinished {
    state: AppState,
    principal: String,
    key: String,
    running: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (state, principal, key) = (
            self.state.clone(),
            std::mem::take(&mut self.principal),
            std::mem::take(&mut self.key),
        );
        tracing::warn!(
            key,
            "request with an Idempotency-Key stopped before it finished"
        );
        runtime.spawn(async move {
            record(&state, &principal, &key, cut_off().into_response()).await;
        });
    }
}

/// The answer to a key whose first request stopped part way.
fn cut_off() -> Problem {
    let mut p = Problem::new(
        ProblemKind::Timeout,
        "the first request with this Idempotency-Key stopped before it finished (it timed \
         out, its client went away or its server stopped) and may have taken effect, so it \
         is not run again under this key: read what it would have changed to learn its \
         outcome, or send it with a new key",
    );
    p.may_have_taken_effect = true;
    p
}

/// What identifies a request under its key: method, path and query, and
/// body. A retry must match it exactly.
pub fn request_digest(method: &Method, uri: &str, body: &[u8]) -> String {
    let mut material = Vec::with_capacity(body.len() + uri.len() + 16);
    material.extend_from_slice(method.as_str().as_bytes());
    material.push(b'\n');
    material.extend_from_slice(uri.as_bytes());
    material.push(b'\n');
    material.extend_from_slice(body);
    Digest::of(&material).to_hex()
}

/// Marks a response whose body holds a secret shown this once, naming
/// what was created. The body is not recorded: a retry is answered 409,
/// that this exists, with its `Location`.
#[derive(Clone, Debug)]
pub struct ShownOnce(pub String);

/// What a retry of a request whose answer held a secret gets instead of
/// the secret.
fn shown_once(what: &str) -> Problem {
    Problem::new(
        ProblemKind::Conflict,
        format!(
            "{what} was created by the first request with this Idempotency-Key; its secret \
             was in that response only and is not kept: if it was lost, revoke the key and \
             mint another"
        ),
    )
}

/// Records the response and returns it. A server error is forgotten
/// instead, so that the retry runs again, unless the request may have
/// taken effect: running it again could then do it twice, so retries get
/// that error, which says how to learn the outcome.
async fn record(state: &AppState, principal: &str, key: &str, resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let unsettled = parts.extensions.get::<MayHaveTakenEffect>().is_some();
    if parts.status.is_server_error() && !unsettled {
        if let Err(e) = state.app.store().release_idempotent(principal, key).await {
            tracing::warn!(error = %e, "cannot release idempotency key");
        }
        return Response::from_parts(parts, body);
    }
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => {
            return Problem::new(ProblemKind::Internal, "the response could not be read")
                .into_response();
        }
    };
    let header = |h: &HeaderName| {
        let v = parts.headers.get(h)?.to_str().ok()?;
        Some((h.as_str().to_owned(), v.to_owned()))
    };
    let recorded = match parts.extensions.get::<ShownOnce>() {
        None => RecordedResponse {
            status: parts.status.as_u16(),
            headers: REPLAYED_HEADERS.iter().filter_map(header).collect(),
            body: bytes.to_vec(),
        },
        Some(ShownOnce(what)) => {
            let problem = shown_once(what);
            RecordedResponse {
                status: problem.status,
                headers: [(
                    header::CONTENT_TYPE.as_str().to_owned(),
                    CONTENT_TYPE.to_owned(),
                )]
                .into_iter()
                .chain(header(&header::LOCATION))
                .collect(),
                body: serde_json::to_vec(&problem).expect("a problem serializes"),
            }
        }
    };
    if let Err(e) = state
        .app
        .store()
        .finish_idempotent(principal, key, &recorded)
        .await
    {
        // The effect happened and the caller gets its response; a retry
        // after the stale interval would run again, so say so loudly.
        tracing::error!(error = %e, key, "cannot record idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// How long keys are remembered by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// Forgets the records of keys first used longer than `retention` ago,
/// sweeping a few times per retention period: a retry within the period
/// is answered as promised, and the table holds about one period of
/// requests.
pub async fn expire(app: App, retention: Duration) {
    let every = (retention / 4).clamp(Duration::from_millis(100), Duration::from_secs(15 * 60));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    loop {
        tick.tick().await;
        let before = now_millis().saturating_sub(retention_ms);
        match app.store().expire_idempotent(before).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(records = n, "idempotency records expired"),
            Err(e) => tracing::warn!(error = %e, "idempotency records not expired"),
        }
    }
}

fn replayed(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    resp
}

fn replay(r: RecordedResponse) -> Response {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    for (name, value) in r.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    replayed(resp)
}
