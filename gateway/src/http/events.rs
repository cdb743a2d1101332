//! The live feed over Server-Sent Events (plain HTTP, reconnects by itself
//! in every browser, and curl can read it).
//!
//! - `GET /videos/{id}/events`: one video (the seed's "room").
//! - `GET /events?videos=a,b`: several videos on one connection (browsers
//!   allow only six HTTP/1.1 connections per host); without `videos`, all.
//!
//! Each stream opens with the kept windows of its videos, then sends every
//! change as `event: count` with a `WindowCountRecord` as data. A client too
//! slow to keep up gets `event: resync` and should re-read `/videos/{id}/windows`.

use super::AppState;
use super::videos::video_id;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
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

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    videos: Option<String>,
}

pub async fn video_events(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, GatewayError> {
    let id = video_id(path)?;
    Ok(feed(&state, Filter::Only(HashSet::from([id]))))
}

pub async fn all_events(
    State(state): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, GatewayError> {
    let filter = match q.videos.as_deref().map(str::trim) {
        None | Some("") => Filter::All,
        Some(list) => {
            let ids: HashSet<String> = list.split(',').map(|s| s.trim().to_owned()).collect();
            for id in &ids {
                crate::ingest::request::check_video_id(id)?;
            }
            Filter::Only(ids)
        }
    };
    Ok(feed(&state, filter))
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

fn feed(state: &AppState, filter: Filter) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
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
    let stream = stream::iter(snapshot)
        .chain(live)
        .map(Ok)
        .take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}
