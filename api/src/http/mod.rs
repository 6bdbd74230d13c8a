//! The HTTP edge: parses requests, calls one application function
//! ([`crate::app`]) and maps its answer. Nothing here decides anything a
//! use case decides; the one place where domain errors become RFC 9457
//! problems is [`error`].
//!
//! - [`server`]: the axum router and the middleware every request passes
//!   through (request ids, tracing, metrics, security headers, problem
//!   details for every error, timeouts, body limits, optional CORS);
//! - [`auth`]: the authentication middleware, and the scopes handlers
//!   declare, taken from the request;
//! - [`consistency`]: linearizable reads by default, stale on request;
//! - [`idempotency`]: `Idempotency-Key` replays for writes;
//! - [`source`]: where a request comes from, and the gateway's limit per
//!   source;
//! - [`json`]: request bodies, with field-level errors;
//! - [`problem`]: RFC 9457 problem details with a stable type per error;
//! - [`error`]: domain errors as problems;
//! - [`health`] and [`metrics`]: `/healthz`, `/readyz`, `/metrics`;
//! - [`v1`]: the resources, one module per use-case family;
//! - [`openapi`]: the generated OpenAPI document, served at
//!   `/openapi.json` and browsable at `/docs`.

pub mod auth;
pub mod consistency;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod server;
pub mod source;
pub mod tls;
pub mod v1;
