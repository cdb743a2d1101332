//! Records on the wire: like events in, window counts out.

use serde::{Deserialize, Serialize};

/// Longest video id accepted anywhere (ingest API, worker decoding), in UTF-8 bytes.
pub const MAX_VIDEO_ID_BYTES: usize = 256;

/// Why a video id is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoIdError {
    Empty,
    TooLong(usize),
    ControlCharacter,
}

impl std::fmt::Display for VideoIdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("video id is empty"),
            Self::TooLong(n) => write!(f, "video id is {n} bytes long, the limit is {MAX_VIDEO_ID_BYTES}"),
            Self::ControlCharacter => f.write_str("video id contains a control character"),
        }
    }
}

impl std::error::Error for VideoIdError {}

/// The one rule for video ids, shared by the ingest API and the worker.
pub fn validate_video_id(id: &str) -> Result<(), VideoIdError> {
    if id.is_empty() {
        Err(VideoIdError::Empty)
    } else if id.len() > MAX_VIDEO_ID_BYTES {
        Err(VideoIdError::TooLong(id.len()))
    } else if id.chars().any(char::is_control) {
        Err(VideoIdError::ControlCharacter)
    } else {
        Ok(())
    }
}

/// A like event in the `json` input format. `count` defaults to 1 and `ts`
/// (epoch milliseconds) to the Kafka record timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LikeEvent {
    pub video_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
}

/// A window count on an output topic. `type`, `video_uid` and `count` are the
/// Faust seed's fields, kept so its consumers keep working; the bounds are new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCountRecord {
    #[serde(rename = "type")]
    pub window_type: String,
    pub video_uid: String,
    pub count: u64,
    pub window_start: i64,
    pub window_end: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_id_rules() {
        assert_eq!(validate_video_id("abc-123"), Ok(()));
        assert_eq!(validate_video_id("vidéo"), Ok(()));
        assert_eq!(validate_video_id(""), Err(VideoIdError::Empty));
        assert_eq!(
            validate_video_id(&"x".repeat(257)),
            Err(VideoIdError::TooLong(257))
        );
        assert_eq!(validate_video_id(&"x".repeat(256)), Ok(()));
        assert_eq!(validate_video_id("a\nb"), Err(VideoIdError::ControlCharacter));
    }

    #[test]
    fn output_record_keeps_the_seed_fields() {
        let rec = WindowCountRecord {
            window_type: "1min".into(),
            video_uid: "v1".into(),
            count: 3,
            window_start: 60_000,
            window_end: 120_000,
        };
        let json: serde_json::Value = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["type"], "1min");
        assert_eq!(json["video_uid"], "v1");
        assert_eq!(json["count"], 3);
        assert_eq!(json["window_start"], 60_000);
        assert_eq!(json["window_end"], 120_000);
    }

    #[test]
    fn like_event_fields_are_optional() {
        let e: LikeEvent = serde_json::from_str(r#"{"video_id":"v"}"#).unwrap();
        assert_eq!(
            e,
            LikeEvent {
                video_id: "v".into(),
                count: None,
                ts: None
            }
        );
    }
}
