//! The missions a runtime loop on this node is already working on, so that
//! its next scan of the engine state does not start the same work twice.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aura_engine::ids::{MissionId, TenantId};
use aura_raft::FeedItem;
use tokio::sync::broadcast;

pub(crate) type MissionKey = (TenantId, MissionId);

#[derive(Clone, Default)]
pub(crate) struct InFlight(Arc<Mutex<HashSet<MissionKey>>>);

impl InFlight {
    pub(crate) fn contains(&self, key: &MissionKey) -> bool {
        self.0.lock().expect("not poisoned").contains(key)
    }

    /// Marks the mission taken; false if it already was.
    pub(crate) fn take(&self, key: MissionKey) -> bool {
        self.0.lock().expect("not poisoned").insert(key)
    }

    pub(crate) fn release(&self, key: &MissionKey) {
        self.0.lock().expect("not poisoned").remove(key);
    }
}

/// The least time between two scans a runtime loop makes because commands
/// were committed. Loops scan every mission of the node; under load,
/// scanning after every applied batch cost more than the work it found,
/// and everything committed in the gap is covered by the next scan.
const SCAN_GAP: Duration = Duration::from_millis(2);

/// Returns once commands were committed since the last call, having let
/// those committed within [`SCAN_GAP`] after the first gather.
pub(crate) async fn committed(feed: &mut broadcast::Receiver<std::sync::Arc<FeedItem>>) {
    // A lagged receiver has still seen that something was committed.
    let _ = feed.recv().await;
    tokio::time::sleep(SCAN_GAP).await;
    while feed.try_recv().is_ok() {}
}
