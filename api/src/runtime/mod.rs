//! The runtime around the engine: what makes missions move without a
//! person or an agent asking. It changes engine state only by proposing
//! commands, stamped with this node's clock, like every other proposer.
//!
//! - [`timers`]: lease expiry, mission timeouts and approval deadlines.
//! - [`queue`]: which queued mission a worker's claim takes next.
//! - [`executor`]: the built-in worker, with [`reasoner`]s to plan;
//!   [`claim_share`]: which node's executor claims a queued mission first.
//! - [`compensator`]: undoes a failed mission's completed steps.
//! - [`checkpoints`]: signs each tenant's audit chain on a schedule.

pub mod checkpoints;
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
    committed_where(feed, |_| true).await;
}

/// [`committed`], for a loop that has something to do only after some
/// commands: those for which `matters` holds. Others are passed over
/// without waking it.
pub(crate) async fn committed_where(
    feed: &mut broadcast::Receiver<Arc<FeedItem>>,
    matters: impl Fn(&FeedItem) -> bool,
) {
    loop {
        match feed.recv().await {
            Ok(item) if !matters(&item) => continue,
            // A lagged receiver missed commands, which may have mattered;
            // a closed feed wakes the loop as it always did.
            Ok(_) | Err(_) => break,
        }
    }
    tokio::time::sleep(SCAN_GAP).await;
    while feed.try_recv().is_ok() {}
}

/// Once a tick, on the leader alone (so that two nodes do not race to
/// record the same thing), proposes as the runtime each command `due`
/// finds at the time. A refusal (someone acted first, or the leader
/// changed between reading and proposing) changes nothing and is only
/// logged; a command not recorded is found due again next tick. Runs
/// until the task is dropped.
pub(crate) async fn on_leader_ticks(
    app: &crate::app::App,
    tick: std::time::Duration,
    what: &'static str,
    due: impl Fn(
        &aura_engine::machine::EngineState,
        aura_engine::Timestamp,
    ) -> Vec<(
        aura_engine::ids::TenantId,
        aura_engine::machine::CommandBody,
    )>,
) {
    use tracing::Instrument as _;
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if !app.engine().is_leader() {
            continue;
        }
        let now = crate::time::now();
        let found = app.read_local(|s| due(s, now));
        for (tenant, body) in found {
            let kind = body.kind();
            let span = tracing::info_span!("runtime", what, %tenant, kind);
            match app
                .propose(&tenant, aura_engine::Actor::Runtime, body)
                .instrument(span)
                .await
            {
                Ok(_) => tracing::debug!(what, %tenant, kind, "recorded"),
                Err(crate::app::AppError::Refused { rejection, .. }) => {
                    tracing::debug!(what, %tenant, kind, refusal = %rejection, "overtaken")
                }
                Err(e) => {
                    tracing::warn!(what, %tenant, kind, error = %e, "not recorded; retried next tick")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aura_engine::machine::Event;
    use aura_engine::time::Timestamp;

    use super::*;

    fn item(events: Vec<Event>) -> Arc<FeedItem> {
        Arc::new(FeedItem {
            index: 1,
            tenant: "acme".parse().unwrap(),
            mission: None,
            at: Timestamp(0),
            events,
        })
    }

    fn data_written() -> Event {
        Event::StateDataWritten {
            mission: "m-1".parse().unwrap(),
            key: "k".into(),
            value: None,
            version: 1,
        }
    }

    #[tokio::test]
    async fn only_commands_that_matter_wake_the_loop() {
        let (tx, mut rx) = broadcast::channel(16);
        let matters = |i: &FeedItem| i.events.is_empty();
        tx.send(item(vec![data_written()])).unwrap();
        let waited =
            tokio::time::timeout(Duration::from_millis(50), committed_where(&mut rx, matters))
                .await;
        assert!(
            waited.is_err(),
            "a command that does not matter was passed over"
        );
        tx.send(item(vec![data_written()])).unwrap();
        tx.send(item(vec![])).unwrap();
        tokio::time::timeout(Duration::from_secs(5), committed_where(&mut rx, matters))
            .await
            .expect("a command that matters wakes the loop");
    }
}
