//! The runtime around the engine: what makes missions move without a
//! person or an agent asking. It changes engine state only by proposing
//! commands, stamped with this node's clock, like every other proposer.
//!
//! - [`timers`]: lease expiry, mission timeouts and approval deadlines.
//! - [`queue`]: which queued mission a worker's claim takes next.
//! - [`executor`]: the built-in worker, with [`reasoner`]s to plan;
//!   [`claim_share`]: which node's executor claims a queued mission first.
//! - [`compensator`]: undoes a failed mission's completed steps.

pub mod claim_share;
pub mod compensator;
pub mod executor;
mod inflight;
pub mod queue;
pub mod reasoner;
pub mod timers;

use std::sync::Arc;
use std::time::Duration;

use aura_raft::FeedItem;
use tokio::sync::broadcast;

/// The least time between two scans a runtime loop makes because commands
/// were committed. Loops scan every mission of the node; under load,
/// scanning after every applied batch cost more than the work it found,
/// and everything committed in the gap is covered by the next scan.
const SCAN_GAP: Duration = Duration::from_millis(2);

/// Returns once commands were committed since the last call, having let
/// those committed within [`SCAN_GAP`] after the first gather.
pub(crate) async fn committed(feed: &mut broadcast::Receiver<Arc<FeedItem>>) {
    // A lagged receiver has still seen that something was committed.
    let _ = feed.recv().await;
    tokio::time::sleep(SCAN_GAP).await;
    while feed.try_recv().is_ok() {}
}
