//! The dashboard (static files compiled into the binary: nothing to build or
//! install at runtime), its status and configuration, and the probes.

use super::AppState;
use crate::error::GatewayError;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const STYLE_CSS: &str = include_str!("../../assets/style.css");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

pub async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

pub async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// The status strip: Kafka, workers, lag, generator, known videos.
pub async fn status(State(state): State<AppState>) -> Json<Value> {
    let snapshot = state.status.current();
    Json(json!({
        "kafka_reachable": snapshot.kafka_reachable,
        "kafka_error": snapshot.kafka_error,
        "workers": snapshot.workers,
        "workers_total": state.settings.worker_urls.len(),
        "workers_ready": snapshot.workers_ready,
        "lag": snapshot.lag,
        "checked_at": snapshot.checked_at,
        "videos_known": state.feed.store().len(),
        "generator": state.generator.status(),
        "now": crate::clock::now_ms(),
    }))
}

/// What the dashboard needs to know about the deployment.
pub async fn config(State(state): State<AppState>) -> Json<Value> {
    let s = &state.settings;
    Json(json!({
        "window_types": s.window_labels,
        "input_topic": s.input_topic,
        "input_format": s.input_format,
        "output_topics": s.output_topics,
        "bootstrap_servers": s.connection.bootstrap_servers,
    }))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    videocounter_shell::metrics::response(&state.registry)
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the last check reached Kafka (likes can be accepted).
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.status.current().kafka_reachable {
        Some(true) => (StatusCode::OK, "ready".to_owned()),
        Some(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Kafka at {} is unreachable",
                state.settings.connection.bootstrap_servers
            ),
        ),
        None => (StatusCode::SERVICE_UNAVAILABLE, "starting".to_owned()),
    }
}

pub async fn not_found(uri: Uri) -> GatewayError {
    GatewayError::NotFound(format!("no route for {}", uri.path()))
}
