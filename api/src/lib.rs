//! AURA's application layer, its runtime and its HTTP API.
//!
//! - [`app`]: the application layer, one function per use case, which
//!   every front door and the runtime call;
//! - [`runtime`]: what moves missions without a person asking (executor,
//!   reasoners, timers, compensator), on the application layer alone;
//! - [`server`]: the axum router and the middleware every request passes
//!   through (request ids, tracing, metrics, security headers, problem
//!   details for every error, timeouts, body limits, optional CORS);
//! - [`consistency`]: linearizable reads by default, stale on request;
//! - [`problem`]: RFC 9457 problem details with a stable type per error;
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`;
//! - [`auth`]: API keys, the authentication middleware and the scopes
//!   handlers declare;
//! - [`gateway`]: the Tool Gateway every agent tool call goes through;
//! - [`store`]: the SQL store (directory, keys, idempotency records);
//! - [`v1`]: the resources;
//! - [`openapi`]: the generated OpenAPI document, served at
//!   `/openapi.json` and browsable at `/docs`.

// Handlers fail with a `Problem` once per request, on the error path: its
// size (a handful of strings) costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod consistency;
pub mod error;
pub mod gateway;
pub mod health;
pub mod idempotency;
pub mod json;
pub mod memory;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod random;
pub mod runtime;
pub mod server;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;
pub mod v1;

pub use auth::Role;
pub use server::{ApiConfig, AppState, router};

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timers = tokio::spawn(runtime::timers::run(
        state.app.clone(),
        runtime::timers::TICK,
    ));
    let compensator = tokio::spawn(runtime::compensator::run(state.app.clone()));
    let executor = state
        .config
        .executor
        .clone()
        .map(|config| tokio::spawn(runtime::executor::run(state.app.clone(), config)));
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    timers.abort();
    compensator.abort();
    if let Some(executor) = executor {
        executor.abort();
    }
    served
}
