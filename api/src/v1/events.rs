//! Live events of a mission as server-sent events: state changes,
//! decisions, tool calls, approvals and audited refusals, in commit order.
//!
//! Every node applies every committed command, so a subscriber on any node
//! sees every event without a separate fan-out. The stream opens with the
//! mission's current record (`event: mission`), so nothing that happened
//! before the subscription is missed, and ends after the mission closes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use aura_engine::ids::{MissionId, TenantId};
use aura_engine::machine::Event;
use aura_raft::FeedItem;
use axum::extract::{Path, State};
use axum::response::sse::{self, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::stream::{self, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

use super::missions::mission_id;
use crate::auth::{Member, TenantScope};
use crate::problem::Problem;
use crate::server::AppState;

struct Subscription {
    rx: broadcast::Receiver<Arc<FeedItem>>,
    tenant: TenantId,
    mission: MissionId,
    pending: std::collections::VecDeque<sse::Event>,
    done: bool,
}

impl Subscription {
    fn push(&mut self, item: &FeedItem) {
        for e in &item.events {
            if matches!(e, Event::MissionClosed { .. }) {
                self.done = true;
            }
            // One serialization gives both the data and the `event:` name
            // (the event's `event` tag).
            let Ok(data) = serde_json::to_value(e) else {
                continue;
            };
            let name = data
                .get("event")
                .and_then(|n| n.as_str())
                .unwrap_or("event")
                .to_owned();
            self.pending.push_back(
                sse::Event::default()
                    .event(name)
                    .id(item.index.to_string())
                    .data(data.to_string()),
            );
        }
    }

    async fn next(mut self) -> Option<(sse::Event, Subscription)> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some((ev, self));
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
                    // Too slow to keep up: say so; the client re-reads the
                    // mission and subscribes again.
                    self.done = true;
                    return Some((
                        sse::Event::default().event("lagged").data(format!(
                            "{missed} commits were skipped; re-read the mission"
                        )),
                        self,
                    ));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// Streams the mission's events as they are committed.
#[utoipa::path(get, operation_id = "missions_events", path = "/v1/tenants/{tenant}/missions/{mission}/events", tag = "missions",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path)),
    responses(
        (status = 200, description = "`text/event-stream`: first `mission` (the current record), then one event per engine event (`event:` its kind, `id:` the log index, `data:` JSON); `lagged` if the subscriber fell behind", content_type = "text/event-stream", body = String),
        (status = 404, description = "No such mission", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn stream(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Sse<impl Stream<Item = Result<sse::Event, Infallible>>>, Problem> {
    let mission = mission_id(&path.1)?;
    // Subscribe before reading, so no commit falls between the two.
    let rx = state.app.engine().subscribe();
    let current = scope
        .read(&state.app, |t| {
            t.missions().get(&mission).map(|m| {
                (
                    serde_json::to_value(m).unwrap_or_default(),
                    m.state().is_closed(),
                )
            })
        })?
        .ok_or_else(|| Problem::not_found("mission", &path.1))?;
    let (record, closed) = current;
    let mut sub = Subscription {
        rx,
        tenant: scope.tenant.clone(),
        mission,
        pending: Default::default(),
        done: closed,
    };
    if let Ok(first) = sse::Event::default().event("mission").json_data(&record) {
        sub.pending.push_back(first);
    }
    let events = stream::unfold(sub, Subscription::next).map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
