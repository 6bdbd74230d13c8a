//! The engine's integration tests, one module per concern.
//!
//! They are built as one test binary rather than one per file: each binary
//! links the whole dependency tree, and linking thirty of them was a large
//! share of a cold CI build on two cores. Run one module with
//! `cargo test -p <crate> --test integration <module>::`.

mod support;

mod audit_tamper;
mod continue_as_new;
mod directory;
mod dualtoken;
mod execution;
mod governance;
mod key_rotation;
mod machine;
mod machine_props;
mod policy_decisions;
mod retries_and_sagas;
mod step_timeouts;
mod tool_calls;
