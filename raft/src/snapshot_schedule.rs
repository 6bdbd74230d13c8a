//! When a node builds a snapshot.
//!
//! openraft's own policy snapshots every N entries. A snapshot costs time
//! in proportion to the whole state, though, and AURA's state only grows
//! (every mission ever run, the audit chain): at a fixed interval a
//! long-lived node spends more and more of its time serializing state it
//! has serialized before, under the state machine's lock. So a snapshot
//! is also held back until the log written since the last one is at
//! least a fixed share of that snapshot's size, as Redis does before it
//! rewrites its append-only file. Snapshot work then stays proportional to
//! what is written to the log however large the state grows, and a
//! restart replays a log of at most about that share of the state.

use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::log_store::LogStore;
use crate::state_machine::EngineStore;
use crate::types::Raft;

/// The log since the last snapshot must hold at least 1/this of that
/// snapshot's bytes: snapshot work is then at most this many bytes
/// serialized per byte logged.
pub const SNAPSHOT_BYTES_PER_LOG_BYTE: u64 = 8;

/// openraft drops a request while a snapshot is being built; one that
/// has not produced a snapshot in this long is made again.
const REQUEST_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// The rule, apart from the task that applies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotSchedule {
    /// Entries applied since the last snapshot before another is built.
    pub every: u64,
}

impl SnapshotSchedule {
    /// Whether to build a snapshot now. `sizes` gives the live log's
    /// bytes (what a restart would read) and the last snapshot's (0 when
    /// there is none); it is asked only once the entry count is due, as
    /// reading them takes locks.
    pub fn due(&self, applied_since_snapshot: u64, sizes: impl FnOnce() -> (u64, u64)) -> bool {
        applied_since_snapshot >= self.every && {
            let (log_bytes, snapshot_bytes) = sizes();
            log_bytes.saturating_mul(SNAPSHOT_BYTES_PER_LOG_BYTE) >= snapshot_bytes
        }
    }
}

/// Watches Raft's metrics and asks openraft for a snapshot when the
/// schedule says so, until `stopped`.
pub(crate) async fn run(
    schedule: SnapshotSchedule,
    raft: Raft,
    log: LogStore,
    store: EngineStore,
    mut stopped: watch::Receiver<bool>,
) {
    let mut metrics = raft.metrics();
    // The snapshot index a pending request was made after, and when.
    let mut pending: Option<(Option<u64>, Instant)> = None;
    loop {
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = stopped.wait_for(|s| *s) => return,
        }
        let (applied, snapshot) = {
            let m = metrics.borrow_watched();
            (
                m.last_applied.as_ref().map_or(0, |l| l.index),
                m.snapshot.as_ref().map(|l| l.index),
            )
        };
        if let Some((after, at)) = pending {
            if after == snapshot && at.elapsed() < REQUEST_AGAIN_AFTER {
                continue;
            }
            pending = None;
        }
        let since = applied.saturating_sub(snapshot.unwrap_or(0));
        if !schedule.due(since, || (log.live_bytes(), store.snapshot_bytes())) {
            continue;
        }
        tracing::debug!(applied, ?snapshot, "snapshot due");
        if raft.trigger().snapshot().await.is_err() {
            return;
        }
        pending = Some((snapshot, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: SnapshotSchedule = SnapshotSchedule { every: 100 };

    #[test]
    fn the_first_snapshot_comes_after_the_interval() {
        assert!(!EVERY.due(99, || (1, 0)));
        assert!(EVERY.due(100, || (1, 0)));
    }

    #[test]
    fn a_large_state_waits_for_its_share_of_log() {
        // 8 MB of state: 1 MB of log is its share, whatever the count.
        assert!(!EVERY.due(100, || (999_999, 8_000_000)));
        assert!(!EVERY.due(1_000_000, || (999_999, 8_000_000)));
        assert!(EVERY.due(100, || (1_000_000, 8_000_000)));
    }

    #[test]
    fn a_small_state_goes_by_the_interval_alone() {
        assert!(!EVERY.due(99, || (10_000_000, 1_000)));
        assert!(EVERY.due(100, || (125, 1_000)));
    }
}
