//! `POST /videos/{id}/likes` and `POST /likes`: 202 once Kafka has every record.

use super::{AppState, body_bytes, path_video_id};
use crate::error::GatewayError;
use crate::ingest::request::{parse_batch, parse_single};
use crate::metrics::IngestLabels;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use serde_json::{Value, json};
use std::time::Instant;

type Accepted = (StatusCode, Json<Value>);

pub async fn like_one(
    State(state): State<AppState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, GatewayError> {
    let started = Instant::now();
    let result = async {
        let video_id = path_video_id(path, &uri)?;
        let body = body_bytes(body, state.settings.max_body_bytes)?;
        let like = parse_single(&video_id, &body)?;
        let records = state.producer.deliver(std::slice::from_ref(&like)).await?;
        Ok((
            records,
            json!({ "video_id": like.video_id, "count": like.count, "records": records }),
        ))
    }
    .await;
    respond(&state, "single", started, result)
}

pub async fn like_batch(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, GatewayError> {
    let started = Instant::now();
    let result = async {
        let body = body_bytes(body, state.settings.max_body_bytes)?;
        let likes = parse_batch(&body)?;
        let records = state.producer.deliver(&likes).await?;
        let total: u64 = likes.iter().map(|l| u64::from(l.count)).sum();
        Ok((
            records,
            json!({ "items": likes.len(), "likes": total, "records": records }),
        ))
    }
    .await;
    respond(&state, "batch", started, result)
}

fn respond(
    state: &AppState,
    endpoint: &'static str,
    started: Instant,
    result: Result<(usize, Value), GatewayError>,
) -> Result<Accepted, GatewayError> {
    let m = &state.metrics;
    m.ingest_duration.observe(started.elapsed().as_secs_f64());
    let outcome = match &result {
        Ok((records, _)) => {
            m.ingest_records.inc_by(*records as u64);
            "accepted"
        }
        Err(e) => e.code(),
    };
    m.ingest_requests
        .get_or_create(&IngestLabels { endpoint, outcome })
        .inc();
    if let Err(e @ GatewayError::Unavailable(_)) = &result {
        tracing::warn!(endpoint, error = %e, "likes not accepted");
    }
    result.map(|(_, body)| (StatusCode::ACCEPTED, Json(body)))
}
