//! A mission's live events, in commit order: state changes, decisions,
//! tool calls, approvals and audited refusals.
//!
//! Every node applies every committed command, so a subscriber on any node
//! sees every event without a separate fan-out. The feed opens with the
//! mission's current record, so nothing that happened before the
//! subscription is missed, and ends after the mission closes.

use std::collections::VecDeque;
use std::sync::Arc;

use aura_engine::ids::{MissionId, TenantId};
use aura_engine::machine::Event;
use aura_engine::mission::Mission;
use aura_raft::FeedItem;
use futures_util::Stream;
use futures_util::stream;
use tokio::sync::broadcast::{self, error::RecvError};

use super::scope::{Member, TenantScope};
use super::{App, AppError};

/// One item of a mission's feed.
#[derive(Debug)]
pub enum Update {
    /// The mission as it was when the feed opened.
    Current(Box<Mission>),
    /// An engine event, with the index of the log entry that made it.
    Event { index: u64, event: Box<Event> },
    /// The subscriber fell behind and `missed` commits were skipped; the
    /// feed ends, and the client re-reads the mission.
    Lagged { missed: u64 },
}

struct Feed {
    rx: broadcast::Receiver<Arc<FeedItem>>,
    tenant: TenantId,
    mission: MissionId,
    pending: VecDeque<Update>,
    done: bool,
}

impl Feed {
    fn push(&mut self, item: &FeedItem) {
        for event in &item.events {
            if matches!(event, Event::MissionClosed { .. }) {
                self.done = true;
            }
            self.pending.push_back(Update::Event {
                index: item.index,
                event: Box::new(event.clone()),
            });
        }
    }

    async fn next(mut self) -> Option<(Update, Feed)> {
        loop {
            if let Some(u) = self.pending.pop_front() {
                return Some((u, self));
            }
            if self.done {
                return None;
            }
            match self.rx.recv().await {
                Ok(item) => {
                    if item.tenant == self.tenant && item.mission.as_ref() == Some(&self.mission) {
                        self.push(&item);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    self.done = true;
                    return Some((Update::Lagged { missed }, self));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// The mission's feed: its current record, then its events as they are
/// committed, until it closes.
pub fn follow(
    app: &App,
    scope: &TenantScope<Member>,
    mission: &MissionId,
) -> Result<impl Stream<Item = Update> + Send + use<>, AppError> {
    // Subscribe before reading, so no commit falls between the two.
    let rx = app.engine().subscribe();
    let current = scope
        .read(app, |t| t.missions().get(mission).cloned())?
        .ok_or_else(|| AppError::not_found("mission", mission.as_str()))?;
    let feed = Feed {
        rx,
        tenant: scope.tenant.clone(),
        mission: mission.clone(),
        done: current.state().is_closed(),
        pending: VecDeque::from([Update::Current(Box::new(current))]),
    };
    Ok(stream::unfold(feed, Feed::next))
}
