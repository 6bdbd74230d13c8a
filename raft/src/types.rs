//! The openraft type configuration: what a log entry carries, what applying
//! it returns, and how nodes are named.

use std::fmt;
use std::sync::Arc;

use aura_engine::machine::{Command, Event, Rejection};
use serde::{Deserialize, Serialize};

/// A node's id: a small positive integer, unique in its cluster.
pub type NodeId = u64;

/// What the cluster knows about a member: where its cluster listener is and
/// which region it runs in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `host:port` of the node's cluster listener.
    pub addr: String,
    /// A free-form region label such as `eu-west-1`.
    pub region: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.addr, self.region)
    }
}

/// One engine command, as proposed to the log. Shared, not copied: the
/// log keeps every entry in memory and hands out copies to apply and to
/// replicate, and copying whole commands there was over 1% of a busy
/// cluster's CPU. Serialized as the command itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal(pub Arc<Command>);

impl Proposal {
    pub fn new(cmd: Command) -> Proposal {
        Proposal(Arc::new(cmd))
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} for {}", self.0.body.kind(), self.0.tenant)
    }
}

/// What applying a committed proposal produced: the engine's events, or why
/// it refused the command. A refusal is still a committed, replayed fact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Applied {
    Events(Vec<Event>),
    Refused(Rejection),
    /// Blank and membership entries produce nothing for clients.
    Nothing,
}

/// A write the leader committed for a follower that forwarded it: where
/// in the log it went, so the follower can answer once it has applied that
/// far (its caller then reads its own write), and what applying it gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Committed {
    pub index: u64,
    pub applied: Applied,
}

openraft::declare_raft_types!(
    /// AURA's Raft types.
    pub AuraRaft:
        D = Proposal,
        R = Applied,
        NodeId = NodeId,
        Node = NodeInfo,
);

pub type Raft = openraft::Raft<AuraRaft, crate::state_machine::EngineStore>;
pub type LogId = openraft::type_config::alias::LogIdOf<AuraRaft>;
pub type Vote = openraft::type_config::alias::VoteOf<AuraRaft>;
pub type Entry = openraft::type_config::alias::EntryOf<AuraRaft>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<AuraRaft>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<AuraRaft>;
/// Snapshot bytes are shared, not copied, between the stored snapshot,
/// the transfers to followers and the file writer.
pub type SnapshotData = std::sync::Arc<Vec<u8>>;
pub type Snapshot = openraft::type_config::alias::SnapshotOf<AuraRaft, SnapshotData>;
