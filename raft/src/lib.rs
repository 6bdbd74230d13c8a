//! AURA's replicated engine.
//!
//! The engine's deterministic state machine runs on [openraft]: commands
//! are proposed to the Raft log, committed by a quorum, and applied in log
//! order on every node. The embedded default is a one-node cluster on the
//! same code path as a multi-region production cluster.
//!
//! - [`log_file`], [`log_writer`], [`log_store`]: the log on local disk,
//!   checksummed records, acknowledged only after `fdatasync`, with group
//!   commit.
//! - [`state_machine`]: the engine state and its snapshots;
//!   [`snapshot_schedule`]: when to build one; [`snapshot_file`]: the
//!   latest on disk, sealed audit segments written once.
//! - [`auth`], [`network`], [`service`], [`replay`]: HTTP transport
//!   between peers, requests and responses authenticated with an HMAC
//!   under the cluster secret, replays refused.
//! - [`cpu_clock`]: the CPU clocks behind the counters of what every
//!   replica repeats (apply, log writer, snapshots).
//! - [`config`], [`node`]: starting a node and the client path (propose,
//!   read, membership); [`forwarder`]: a follower's proposals sent to the
//!   leader in batches; [`log_format`]: which entry forms the cluster
//!   writes while versions are mixed.

pub mod auth;
pub mod config;
pub mod cpu_clock;
pub mod forwarder;
pub mod log_file;
pub mod log_format;
pub mod log_store;
pub mod log_writer;
pub mod network;
pub mod node;
pub mod replay;
pub mod service;
pub mod snapshot_file;
mod snapshot_packs;
pub mod snapshot_schedule;
pub mod state_machine;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod types;

pub use auth::ClusterSecret;
pub use config::{Bootstrap, NodeConfig, Timing};
pub use log_format::LogFormat;
pub use node::{ClusterError, ClusterStatus, Consistency, MembershipChange, Node, StartError};
pub use state_machine::FeedItem;
pub use types::{Applied, NodeId, NodeInfo, Proposal, SequenceApplied};
