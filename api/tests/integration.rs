//! The API crate's integration tests, one module per concern.
//!
//! They are built as one test binary rather than one per file: each binary
//! links the whole dependency tree, and linking thirty of them was a large
//! share of a cold CI build on two cores. Run one module with
//! `cargo test -p <crate> --test integration <module>::`.

mod access;
mod anonymous;
mod directory;
mod egress;
mod executor;
mod follower_writes;
mod gateway;
mod gateway_shared;
mod missions;
mod openapi;
mod platform_keys;
mod reasoners;
mod retries_and_sagas;
mod runtime;
mod sealed_keys;
mod secrets;
mod server;
mod signing_keys;
mod stored_requests;
mod work;
