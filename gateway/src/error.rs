//! The gateway's one error type. Each variant knows its HTTP status, so a
//! handler returns `Result<_, GatewayError>` and the client always gets a
//! JSON body `{"error": "...", "code": "..."}` naming what is wrong.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GatewayError {
    #[error("invalid video id {id:?}: {reason}")]
    InvalidVideoId { id: String, reason: String },
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("invalid generator settings: {0}")]
    InvalidTraffic(String),
    #[error("{method} is not allowed on {path}; use {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: String,
    },
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidVideoId { .. } | Self::InvalidBody(_) | Self::InvalidTraffic(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// A stable machine-readable name, also used as a metric label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidVideoId { .. } => "invalid_video_id",
            Self::InvalidBody(_) => "invalid_body",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::Unavailable(_) => "kafka_unavailable",
            Self::NotFound(_) => "not_found",
            Self::InvalidTraffic(_) => "invalid_traffic",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.to_string(), "code": self.code() });
        (self.status(), Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_api_contract() {
        let id = GatewayError::InvalidVideoId {
            id: String::new(),
            reason: "video id is empty".into(),
        };
        assert_eq!(id.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            GatewayError::BodyTooLarge { limit: 10 }.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            GatewayError::Unavailable("down".into()).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(id.to_string(), "invalid video id \"\": video id is empty");
    }
}
