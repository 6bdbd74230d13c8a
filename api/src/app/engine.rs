//! What the application layer and the runtime need of the replicated
//! engine: one small trait, which [`aura_raft::Node`] implements. Use cases
//! and the runtime see only this, so they run and are tested against any
//! node, with or without an HTTP listener in front of it.

use std::fmt;
use std::sync::Arc;

use aura_engine::identity::Kek;
use aura_engine::machine::{Command, EngineState};
use aura_raft::{Applied, ClusterError, Consistency, FeedItem, Node, NodeId};
use futures_util::future::BoxFuture;
use tokio::sync::broadcast;

pub trait Engine: Send + Sync + fmt::Debug + 'static {
    /// Proposes one command; what applying it gave, once this node has
    /// applied it (so the proposer reads its own write here).
    fn propose(&self, cmd: Command) -> BoxFuture<'_, Result<Applied, ClusterError>>;

    /// Proposes commands as one log entry, applied back to back.
    fn propose_sequence(&self, cmds: Vec<Command>) -> BoxFuture<'_, Result<Applied, ClusterError>>;

    /// Returns once this node has applied every write acknowledged
    /// anywhere in the cluster before the call (the leader's read index).
    fn catch_up(&self) -> BoxFuture<'_, Result<(), ClusterError>>;

    /// Runs `f` on this node's applied state as it is now.
    fn visit(&self, f: &mut dyn FnMut(&EngineState));

    /// Live events of every command this node applies from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>>;

    /// Whether this node leads the cluster now (work only one node should
    /// do, such as planning, is done by the leader).
    fn is_leader(&self) -> bool;

    /// This node's id and the voters', sorted: how nodes share the queue.
    fn voters(&self) -> (NodeId, Vec<NodeId>);

    /// A key every member derives alike for `purpose` (from the cluster
    /// secret): what seals tenants' secrets, so that any node opens what
    /// another sealed.
    fn derived_key(&self, purpose: &str) -> [u8; 32];

    /// The cluster's key-encryption key: what a tenant's signing key is
    /// sealed under before it is proposed.
    fn kek(&self) -> &Kek;
}

/// Reads this node's applied state now, without waiting.
pub fn read_local<R>(engine: &dyn Engine, f: impl FnOnce(&EngineState) -> R) -> R {
    let mut f = Some(f);
    let mut out = None;
    engine.visit(&mut |s| {
        if let Some(f) = f.take() {
            out = Some(f(s));
        }
    });
    out.expect("visit runs its function once")
}

impl Engine for Node {
    fn propose(&self, cmd: Command) -> BoxFuture<'_, Result<Applied, ClusterError>> {
        Box::pin(Node::propose(self, cmd))
    }

    fn propose_sequence(&self, cmds: Vec<Command>) -> BoxFuture<'_, Result<Applied, ClusterError>> {
        Box::pin(Node::propose_sequence(self, cmds))
    }

    fn catch_up(&self) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(Node::read(self, Consistency::Linearizable, |_| ()))
    }

    fn visit(&self, f: &mut dyn FnMut(&EngineState)) {
        self.read_local(f);
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>> {
        Node::subscribe(self)
    }

    fn is_leader(&self) -> bool {
        self.progress().role == aura_raft::node::Role::Leader
    }

    fn voters(&self) -> (NodeId, Vec<NodeId>) {
        // Only the voter ids: `Node::membership` would build the whole
        // member list, addresses included, at every scan.
        let voters: std::collections::BTreeSet<NodeId> = self.raft().voter_ids().collect();
        (self.id(), voters.into_iter().collect())
    }

    fn derived_key(&self, purpose: &str) -> [u8; 32] {
        Node::derived_key(self, purpose)
    }

    fn kek(&self) -> &Kek {
        Node::kek(self)
    }
}
