//! End-to-end tests of the `aura` binary and the whole server, one module per concern.
//!
//! They are built as one test binary rather than one per file: each binary
//! links the whole dependency tree, and linking thirty of them was a large
//! share of a cold CI build on two cores. Run one module with
//! `cargo test -p <crate> --test integration <module>::`.

mod support;

mod api_end_to_end;
mod api_isolation;
mod api_tls;
mod audit_checkpoints;
mod cli_audit_verify;
mod cli_platform_key;
mod cli_policy_test;
mod cli_serve_flags;
mod cluster_processes;
mod continue_as_new;
mod crash_recovery;
mod data_dir_modes;
mod layout;
mod secret_logs;
mod test_kits;
