//! A mission's live events as server-sent events
//! ([`crate::app::events`] holds the feed).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{self, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::stream::StreamExt;

use super::missions::mission_id;
use crate::app::events::{self, Update};
use crate::http::auth::{Member, TenantScope};
use crate::http::problem::Problem;
use crate::http::server::AppState;

/// One update as an SSE event. The `event:` name is the engine event's
/// own `event` tag, so one serialization gives both name and data.
fn sse_event(u: Update) -> sse::Event {
    match u {
        Update::Current(m) => sse::Event::default()
            .event("mission")
            .json_data(&m)
            .unwrap_or_default(),
        Update::Event { index, event } => {
            let data = serde_json::to_value(&event).unwrap_or_default();
            let name = data
                .get("event")
                .and_then(|n| n.as_str())
                .unwrap_or("event")
                .to_owned();
            sse::Event::default()
                .event(name)
                .id(index.to_string())
                .data(data.to_string())
        }
        Update::Lagged { missed } => sse::Event::default().event("lagged").data(format!(
            "{missed} commits were skipped; re-read the mission"
        )),
    }
}

/// One event of the stream, as the document describes it: OpenAPI 3.1
/// reads the schema of a `text/event-stream` response as that of each
/// event, not of the whole stream as one string.
#[derive(Debug, utoipa::ToSchema)]
pub struct StreamEvent {
    /// `mission`, `lagged`, or the engine event's kind.
    pub event: String,
    /// The log index of the engine event; absent on `mission` and
    /// `lagged`.
    pub id: Option<String>,
    /// JSON for `mission` and engine events; a sentence for `lagged`.
    pub data: String,
}

/// Streams the mission's events as they are committed.
#[utoipa::path(get, operation_id = "missions_events", path = "/v1/tenants/{tenant}/missions/{mission}/events", tag = "missions",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path)),
    responses(
        (status = 200, description = "`text/event-stream`: first `mission` (the current record), then one event per engine event (`event:` its kind, `id:` the log index, `data:` JSON); `lagged` if the subscriber fell behind", content_type = "text/event-stream", body = StreamEvent),
        (status = 404, description = "No such mission", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn stream(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Sse<impl Stream<Item = Result<sse::Event, Infallible>>>, Problem> {
    let mission = mission_id(&path.1)?;
    let feed = events::follow(&state.app, &scope, &mission)?;
    let events = feed.map(|u| Ok(sse_event(u)));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
