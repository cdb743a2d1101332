//! Latest counts: `GET /videos`, `/videos/{id}/counts`, `/videos/{id}/windows`.

use super::{AppState, path_video_id};
use crate::error::GatewayError;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<usize>,
}

/// Known videos, most recently updated first, with their latest window of each size.
pub async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Json<Value> {
    let store = state.feed.store();
    let videos = store.summaries(q.limit.unwrap_or(1_000));
    Json(json!({ "now": crate::clock::now_ms(), "total": store.len(), "videos": videos }))
}

fn no_counts(id: &str) -> GatewayError {
    GatewayError::NotFound(format!("no counts for video {id:?} yet"))
}

/// The most recent window of each size. `now` lets clients tell a current
/// window from one that ended (no likes since).
pub async fn counts(
    State(state): State<AppState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, GatewayError> {
    let id = path_video_id(path, &uri)?;
    let latest = state.feed.store().latest(&id).ok_or_else(|| no_counts(&id))?;
    Ok(Json(
        json!({ "video_id": id, "now": crate::clock::now_ms(), "counts": latest }),
    ))
}

/// Every kept window, oldest first, per size (the dashboard's charts).
pub async fn windows(
    State(state): State<AppState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, GatewayError> {
    let id = path_video_id(path, &uri)?;
    let history = state.feed.store().history(&id).ok_or_else(|| no_counts(&id))?;
    Ok(Json(
        json!({ "video_id": id, "now": crate::clock::now_ms(), "windows": history }),
    ))
}
