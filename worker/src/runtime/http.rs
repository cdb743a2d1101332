//! HTTP API: liveness, readiness, Prometheus metrics, and queries of the
//! local window counts and partition states.

use crate::count::partitioner::partition_for;
use crate::runtime::state::{Phase, Shared};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use videocounter_protocol::validate_video_id;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/counts/{video_id}", get(counts))
        .route("/v1/partitions", get(partitions))
        .with_state(shared)
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match shared.status().readiness() {
        Ok(()) => (StatusCode::OK, Json(json!({"ready": true}))).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": reason})),
        )
            .into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    videocounter_shell::metrics::response(shared.metrics.registry())
}

#[derive(Serialize)]
struct WindowJson<'a> {
    #[serde(rename = "type")]
    window_type: &'a str,
    window_start: i64,
    window_end: i64,
    count: u64,
}

/// Counts of one video: 200 with the retained windows of every size when this
/// worker owns it; 421 naming the owner when another worker does; 503 while
/// the partition is restoring.
async fn counts(State(shared): State<Arc<Shared>>, Path(video_id): Path<String>) -> Response {
    if let Err(e) = validate_video_id(&video_id) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))).into_response();
    }
    let settings = shared.settings.clone();
    let partition = partition_for(video_id.as_bytes(), settings.partitions);
    let view = shared.status().partitions.get(&partition).cloned();
    let Some(view) = view else {
        let s = shared.clone();
        let owner = tokio::task::spawn_blocking(move || s.owners.owner_of(partition))
            .await
            .ok()
            .flatten();
        return (
            StatusCode::MISDIRECTED_REQUEST,
            Json(json!({
                "video_id": video_id,
                "partition": partition,
                "owned": false,
                "owner": owner,
            })),
        )
            .into_response();
    };
    let Some(store) = view.store.filter(|_| view.phase == Phase::Active) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "video_id": video_id,
                "partition": partition,
                "owned": true,
                "owner": settings.instance_id,
                "state": view.phase.name(),
            })),
        )
            .into_response();
    };
    let id = video_id.clone();
    let read = tokio::task::spawn_blocking(move || (store.video_counts(&id), store.stream_time())).await;
    match read {
        Ok((Ok(windows), Ok(stream_time))) => {
            let windows: Vec<WindowJson<'_>> = windows
                .iter()
                .map(|w| {
                    let spec = &settings.specs[w.id.window];
                    WindowJson {
                        window_type: &spec.label,
                        window_start: w.id.start,
                        window_end: spec.end_of(w.id.start),
                        count: w.count,
                    }
                })
                .collect();
            Json(json!({
                "video_id": video_id,
                "partition": partition,
                "owned": true,
                "owner": settings.instance_id,
                "stream_time": stream_time,
                "windows": windows,
            }))
            .into_response()
        }
        Ok((Err(e), _)) | Ok((_, Err(e))) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn partitions(State(shared): State<Arc<Shared>>) -> Response {
    let settings = &shared.settings;
    let (ready, inputs, views) = {
        let status = shared.status();
        (
            status.readiness(),
            status.inputs.iter().copied().collect::<Vec<_>>(),
            status.partitions.clone(),
        )
    };
    let partitions: Vec<serde_json::Value> = views
        .into_iter()
        .map(|(p, v)| {
            let stream_time = v.store.as_ref().and_then(|s| s.stream_time().ok().flatten());
            let checkpoint = v.store.as_ref().and_then(|s| s.checkpoint().ok().flatten());
            let error = match &v.phase {
                Phase::Failed(e) => Some(e.clone()),
                _ => None,
            };
            json!({
                "partition": p,
                "state": v.phase.name(),
                "error": error,
                "stream_time": stream_time,
                "changelog_checkpoint": checkpoint,
                "restored_records": v.restore.restored.load(Ordering::Relaxed),
                "restore_remaining_records": v.restore.remaining(),
            })
        })
        .collect();
    Json(json!({
        "instance_id": settings.instance_id,
        "application_id": settings.worker.application_id,
        "ready": ready.is_ok(),
        "not_ready_reason": ready.err(),
        "partition_count": settings.partitions,
        "input_topic": settings.input_topic,
        "input_partitions": inputs,
        "partitions": partitions,
    }))
    .into_response()
}
