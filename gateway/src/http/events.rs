//! The live feed over Server-Sent Events (plain HTTP, reconnects by itself
//! in every browser, and curl can read it).
//!
//! - `GET /videos/{id}/events`: one video (the seed's "room").
//! - `GET /events?videos=a,b`: several videos on one connection (browsers
//!   allow only six HTTP/1.1 connections per host); without `videos`, all.
//! - `&recent=N` (at most 100) adds `event: recent`: the N most recently
//!   counted videos, as `GET /videos?limit=N` lists them, sent when they
//!   changed, at most once per second. With `recent` and no `videos`, the
//!   stream carries only those (not every count).
//!
//! Each stream opens with the kept windows of its videos, then sends every
//! change as `event: count` with a `WindowCountRecord` as data. A client too
//! slow to keep up gets `event: resync` and should reconnect (the new stream
//! starts with the kept windows again).

use super::{AppState, path_video_id};
use crate::error::GatewayError;
use crate::live::LiveFeed;
use crate::metrics::Metrics;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use videocounter_protocol::WindowCountRecord;

/// Which videos a stream carries.
#[derive(Debug, Clone)]
enum Filter {
    All,
    Only(HashSet<String>),
}

impl Filter {
    fn wants(&self, video: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(set) => set.contains(video),
        }
    }
}

/// Most videos a `recent` event lists.
pub const MAX_RECENT: usize = 100;
/// How often the `recent` list is looked at (and sent, if it changed).
const RECENT_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    videos: Option<String>,
    recent: Option<usize>,
}

pub async fn video_events(
    State(state): State<AppState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, GatewayError> {
    let id = path_video_id(path, &uri)?;
    Ok(feed(&state, Filter::Only(HashSet::from([id])), None))
}

pub async fn all_events(
    State(state): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, GatewayError> {
    let recent = q.recent.filter(|n| *n > 0).map(|n| n.min(MAX_RECENT));
    let filter = match q.videos.as_deref().map(str::trim) {
        None | Some("") if recent.is_some() => Filter::Only(HashSet::new()),
        None | Some("") => Filter::All,
        Some(list) => {
            let ids: HashSet<String> = list.split(',').map(|s| s.trim().to_owned()).collect();
            for id in &ids {
                crate::ingest::request::check_video_id(id)?;
            }
            Filter::Only(ids)
        }
    };
    Ok(feed(&state, filter, recent))
}

fn count_event(record: &WindowCountRecord) -> Event {
    Event::default()
        .event("count")
        .json_data(record)
        .unwrap_or_else(|_| Event::default().event("error").data("unencodable record"))
}

/// Keeps the subscriber gauge honest however the stream ends.
struct Subscribed(Arc<Metrics>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.feed_subscribers.dec();
    }
}

/// The `recent` event, unless the store has not changed since `seen`.
fn recent_event(feed: &LiveFeed, limit: usize, seen: Option<u64>) -> Option<(u64, Event)> {
    let store = feed.store();
    let version = store.version();
    if seen == Some(version) {
        return None;
    }
    let data = serde_json::json!({
        "now": crate::clock::now_ms(),
        "total": store.len(),
        "videos": store.summaries(limit),
    });
    Some((version, Event::default().event("recent").data(data.to_string())))
}

/// `event: recent` every time the most recently counted videos changed, checked once a second.
fn recent_events(feed: LiveFeed, limit: usize) -> impl Stream<Item = Event> {
    let ticks = tokio::time::interval(RECENT_EVERY);
    stream::unfold((feed, ticks, None), move |(feed, mut ticks, seen)| async move {
        loop {
            ticks.tick().await;
            if let Some((version, event)) = recent_event(&feed, limit, seen) {
                return Some((event, (feed, ticks, Some(version))));
            }
        }
    })
}

fn feed(
    state: &AppState,
    filter: Filter,
    recent: Option<usize>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    // Subscribe before the snapshot, so no change falls between the two.
    let receiver = state.feed.subscribe();
    let snapshot: Vec<Event> = match &filter {
        Filter::All => Vec::new(),
        Filter::Only(ids) => {
            let store = state.feed.store();
            let mut events = Vec::new();
            for id in ids {
                for (window_type, windows) in store.history(id).unwrap_or_default() {
                    for w in windows {
                        events.push(count_event(&WindowCountRecord {
                            window_type: window_type.clone(),
                            video_uid: id.clone(),
                            count: w.count,
                            window_start: w.window_start,
                            window_end: w.window_end,
                        }));
                    }
                }
            }
            events
        }
    };
    state.metrics.feed_subscribers.inc();
    let guard = Subscribed(state.metrics.clone());
    let live = stream::unfold(
        (receiver, filter, guard),
        |(mut receiver, filter, guard)| async move {
            loop {
                match receiver.recv().await {
                    Ok(record) if filter.wants(&record.video_uid) => {
                        return Some((count_event(&record), (receiver, filter, guard)));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        let event = Event::default()
                            .event("resync")
                            .data(format!("{{\"missed\":{missed}}}"));
                        return Some((event, (receiver, filter, guard)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    let recent = match recent {
        Some(limit) => recent_events(state.feed.clone(), limit).left_stream(),
        None => stream::pending().right_stream(),
    };
    let stream = stream::select(stream::iter(snapshot).chain(live), recent)
        .map(Ok)
        .take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}
