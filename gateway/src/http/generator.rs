//! The dashboard's generator controls: read, replace the spec, start, stop.

use super::{AppState, body_bytes};
use crate::error::GatewayError;
use crate::generator::runner::GeneratorStatus;
use crate::generator::traffic::TrafficSpec;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;

pub async fn status(State(state): State<AppState>) -> Json<GeneratorStatus> {
    Json(state.generator.status())
}

/// `PUT /generator` with a `TrafficSpec`, e.g. `{"mode": "per_video", "rates": {"v1": 60}}`
/// or `{"mode": "spread", "videos": 1000, "rate_per_minute": 6, "distribution": "zipf"}`.
pub async fn update(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<GeneratorStatus>, GatewayError> {
    let body = body_bytes(body, state.settings.max_body_bytes)?;
    let spec: TrafficSpec =
        serde_json::from_slice(&body).map_err(|e| GatewayError::InvalidTraffic(e.to_string()))?;
    Ok(Json(state.generator.set_spec(spec)?))
}

pub async fn start(State(state): State<AppState>) -> Json<GeneratorStatus> {
    Json(state.generator.set_running(true))
}

pub async fn stop(State(state): State<AppState>) -> Json<GeneratorStatus> {
    Json(state.generator.set_running(false))
}
