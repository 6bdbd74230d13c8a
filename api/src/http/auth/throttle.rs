//! A limit on failed API-key authentications per source address. A source
//! that has failed too often gets 429 with `Retry-After` before its next
//! key is even looked up, right key or not, so guessing keys (or loading
//! the key store with lookups) costs the guesser time.

use std::net::IpAddr;

use axum::response::{IntoResponse, Response};

use crate::gateway::limits::{Cell, Rate, Verdict, source_cell};
use crate::http::problem::{Problem, ProblemKind, retry_after};
use crate::http::server::AppState;

/// The default: a burst of 30 failures, then one every two seconds.
pub const DEFAULT_FAILURES: Rate = Rate {
    count: 30,
    period_ms: 60_000,
};

fn cell(state: &AppState, source: IpAddr) -> Option<Cell> {
    let rate = state.config.failed_auth_per_source?;
    Some(source_cell("failed-authentication", source, rate))
}

/// The answer for a source that may not try again yet, if it may not.
pub async fn refused(state: &AppState, source: IpAddr) -> Option<Response> {
    let cell = cell(state, source)?;
    match state.app.gateway().limiter().peek(&[cell]).await {
        Ok(Verdict::Allowed) => None,
        Ok(Verdict::Limited {
            rate,
            retry_after_ms,
            ..
        }) => {
            let problem = Problem::new(
                ProblemKind::RateLimited,
                format!(
                    "too many failed authentications from this address (the limit is {rate}); \
                     retry in {} s",
                    retry_after_ms.div_ceil(1000).max(1)
                ),
            );
            Some(retry_after(problem.into_response(), retry_after_ms))
        }
        // The limit is a defence, not a dependency: a shared limiter that
        // does not answer lets authentication go on.
        Err(e) => {
            tracing::warn!(error = %e, "failed-authentication limit unavailable");
            None
        }
    }
}

/// Charges a failed authentication to its source.
pub async fn failed(state: &AppState, source: IpAddr) {
    if let Some(cell) = cell(state, source)
        && let Err(e) = state.app.gateway().limiter().check(&[cell]).await
    {
        tracing::warn!(error = %e, "failed authentication not counted");
    }
}
