//! AURA's HTTP API.
//!
//! - [`server`]: the axum router and the middleware every request passes
//!   through (request ids, tracing, metrics, security headers, problem
//!   details for every error, timeouts, body limits, optional CORS);
//! - [`problem`]: RFC 9457 problem details with a stable type per error;
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`;
//! - [`openapi`]: the generated OpenAPI document, served at
//!   `/openapi.json` and browsable at `/docs`.

pub mod health;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod server;

pub use server::{ApiConfig, AppState, router};

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
