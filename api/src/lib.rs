//! AURA's application layer, its runtime and its HTTP API. Dependencies
//! point one way: [`http`] and [`runtime`] call [`app`]; [`app`] calls the
//! engine (through [`app::Engine`]), the [`store`] and the [`gateway`].
//!
//! - [`app`]: the application layer, one function per use case, which
//!   every front door and the runtime call;
//! - [`runtime`]: what moves missions without a person asking (executor,
//!   reasoners, timers, compensator), on the application layer alone;
//! - [`gateway`]: the Tool Gateway every agent tool call goes through;
//! - [`egress`]: where outbound calls (tools, model providers) may go;
//! - [`store`]: the SQL store (platform keys, idempotency records, and
//!   the directories older versions kept there);
//! - [`http`]: the REST edge, its middleware and its OpenAPI document;
//! - [`bootstrap`]: the platform key a fresh deployment starts with.

// Handlers fail with a `Problem` once per request, on the error path: its
// size (a handful of strings) costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

pub mod app;
pub mod bootstrap;
pub mod egress;
pub mod gateway;
pub mod http;
pub mod memory;
pub mod random;
pub mod runtime;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;

pub use app::role::Role;
pub use http::server::{ApiConfig, AppState, router};

/// Serves the API on `listener` (plain TCP, or [`http::tls::TlsListener`])
/// until `shutdown` completes.
pub async fn serve<L>(
    listener: L,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
    for<'a> http::tls::Peer:
        axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let timers = tokio::spawn(runtime::timers::run(
        state.app.clone(),
        runtime::timers::TICK,
    ));
    let compensator = tokio::spawn(runtime::compensator::run(state.app.clone()));
    let checkpoints = tokio::spawn(runtime::checkpoints::run(
        state.app.clone(),
        state.config.checkpoints,
    ));
    let expiry = tokio::spawn(http::idempotency::expire(
        state.app.clone(),
        state.config.idempotency_retention,
    ));
    let adoption = tokio::spawn(app::adopt::run(state.app.clone()));
    let executor = state
        .config
        .executor
        .clone()
        .map(|config| tokio::spawn(runtime::executor::run(state.app.clone(), config)));
    // With each connection's peer address: limits per source use it.
    let served = axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<http::tls::Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    timers.abort();
    compensator.abort();
    expiry.abort();
    checkpoints.abort();
    adoption.abort();
    if let Some(executor) = executor {
        executor.abort();
    }
    served
}
