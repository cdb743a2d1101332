//! The HTTP surface: one router, handlers grouped by concern.
//!
//! | route | what |
//! |---|---|
//! | `POST /videos/{id}/likes`, `POST /likes` | ingest (`ingest`) |
//! | `GET /videos`, `/videos/{id}/counts`, `/videos/{id}/windows` | latest counts (`videos`) |
//! | `GET /events`, `/videos/{id}/events` | live feed, Server-Sent Events (`events`) |
//! | `GET/PUT /generator`, `POST /generator/start`, `/stop` | traffic generator (`generator`) |
//! | `GET /`, `/status`, `/config`, `/metrics`, `/healthz`, `/readyz` | dashboard and probes (`site`) |

mod events;
mod generator;
mod ingest;
mod site;
mod videos;

use crate::config::Settings;
use crate::error::GatewayError;
use crate::generator::runner::Generator;
use crate::ingest::producer::LikeProducer;
use crate::ingest::request::{check_video_id, truncate_for_message, undecodable_video_id};
use crate::live::LiveFeed;
use crate::metrics::Metrics;
use crate::status::StatusPoller;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Request};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub producer: Arc<LikeProducer>,
    pub feed: LiveFeed,
    pub generator: Generator,
    pub status: StatusPoller,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    /// Ends the live-feed streams, so a graceful shutdown does not wait on browsers.
    pub shutdown: CancellationToken,
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.max_body_bytes;
    let api = Router::new()
        .route("/videos/{video_id}/likes", post(ingest::like_one))
        .route("/likes", post(ingest::like_batch))
        .route("/videos", get(videos::list))
        .route("/videos/{video_id}/counts", get(videos::counts))
        .route("/videos/{video_id}/windows", get(videos::windows))
        .route("/videos/{video_id}/events", get(events::video_events))
        .route("/events", get(events::all_events))
        .route("/generator", get(generator::status).put(generator::update))
        .route("/generator/start", post(generator::start))
        .route("/generator/stop", post(generator::stop))
        .route("/", get(site::index))
        .route("/app.js", get(site::script))
        .route("/style.css", get(site::style))
        .route("/status", get(site::status))
        .route("/config", get(site::config))
        .route("/metrics", get(site::metrics))
        .route("/healthz", get(site::healthz))
        .route("/readyz", get(site::readyz))
        .fallback(site::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state);
    // Outside the routes: a layer on them would run before axum adds `Allow`.
    Router::new()
        .fallback_service(api)
        .layer(middleware::from_fn(json_method_not_allowed))
}

/// axum answers a known path with the wrong method with an empty 405; the API
/// promises JSON errors, so say which method the path takes (the `Allow` header stays).
async fn json_method_not_allowed(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = truncate_for_message(request.uri().path());
    let response = next.run(request).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let allowed = allow
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .map(|v| v.replace(',', " or "))
        .unwrap_or_default();
    let mut json = GatewayError::MethodNotAllowed {
        method,
        path,
        allowed,
    }
    .into_response();
    if let Some(allow) = allow {
        json.headers_mut().insert(header::ALLOW, allow);
    }
    json
}

/// The `{video_id}` of `/videos/{video_id}/...`, checked; one that is not
/// UTF-8 once percent-decoded (`%FF`) is quoted as it was sent.
fn path_video_id(path: Result<Path<String>, PathRejection>, uri: &Uri) -> Result<String, GatewayError> {
    let Path(id) =
        path.map_err(|_| undecodable_video_id(uri.path().split('/').nth(2).unwrap_or_default()))?;
    check_video_id(&id)?;
    Ok(id)
}

/// The request body, or a JSON 413 / 400 instead of axum's plain-text rejections.
fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, GatewayError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            GatewayError::BodyTooLarge { limit }
        } else {
            GatewayError::InvalidBody(rejection.body_text())
        }
    })
}
