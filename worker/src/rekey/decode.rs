//! Input records to likes, without I/O: the raw format (the value is the
//! video id) and the JSON format (`{"video_id", "count", "ts"}`), and why a
//! record cannot be counted.

use crate::count::window::MAX_TIMESTAMP_MS;
use serde::Deserialize;
use std::borrow::Cow;
use videocounter_protocol::InputFormat;
use videocounter_protocol::records::{VideoIdError, validate_video_id};

/// One accepted input record: `count` likes of `video_id` at event time `ts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Like<'a> {
    pub video_id: Cow<'a, str>,
    pub count: u64,
    pub ts: i64,
}

/// Why an input record cannot be counted; it goes to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record has no value")]
    MissingValue,
    #[error("value is not valid UTF-8: {0}")]
    InvalidUtf8(String),
    #[error("invalid video id: {0}")]
    InvalidVideoId(VideoIdError),
    #[error("value is not a like event {{\"video_id\", \"count\", \"ts\"}}: {0}")]
    InvalidJson(String),
    #[error("count {0} is negative")]
    NegativeCount(i64),
    #[error("record has no timestamp")]
    MissingTimestamp,
    #[error("timestamp {0} is outside 0..={MAX_TIMESTAMP_MS} (epoch milliseconds)")]
    TimestampOutOfRange(i64),
    #[error("internal repartition record is malformed: {0}")]
    MalformedRepartition(&'static str),
}

impl DecodeError {
    /// Short, stable label for metrics and the dead-letter header.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingValue => "missing_value",
            Self::InvalidUtf8(_) => "invalid_utf8",
            Self::InvalidVideoId(VideoIdError::Empty) => "empty_id",
            Self::InvalidVideoId(VideoIdError::TooLong(_)) => "id_too_long",
            Self::InvalidVideoId(VideoIdError::ControlCharacter) => "id_control_character",
            Self::InvalidJson(_) => "invalid_json",
            Self::NegativeCount(_) => "negative_count",
            Self::MissingTimestamp => "missing_timestamp",
            Self::TimestampOutOfRange(_) => "timestamp_out_of_range",
            Self::MalformedRepartition(_) => "malformed_repartition",
        }
    }

    /// Every kind, so metrics can be pre-registered at zero.
    pub const KINDS: [&'static str; 10] = [
        "missing_value",
        "invalid_utf8",
        "empty_id",
        "id_too_long",
        "id_control_character",
        "invalid_json",
        "negative_count",
        "missing_timestamp",
        "timestamp_out_of_range",
        "malformed_repartition",
    ];
}

#[derive(Deserialize)]
struct JsonLike<'a> {
    #[serde(borrow)]
    video_id: Cow<'a, str>,
    #[serde(default)]
    count: Option<i64>,
    #[serde(default)]
    ts: Option<i64>,
}

/// Decodes an input record. `record_ts` is the Kafka record timestamp, if any.
pub fn decode_input<'a>(
    format: InputFormat,
    payload: Option<&'a [u8]>,
    record_ts: Option<i64>,
) -> Result<Like<'a>, DecodeError> {
    let payload = payload.ok_or(DecodeError::MissingValue)?;
    let like = match format {
        InputFormat::Raw => {
            let id = std::str::from_utf8(payload).map_err(|e| DecodeError::InvalidUtf8(e.to_string()))?;
            Like {
                video_id: Cow::Borrowed(id),
                count: 1,
                ts: record_ts.ok_or(DecodeError::MissingTimestamp)?,
            }
        }
        InputFormat::Json => {
            let text = std::str::from_utf8(payload).map_err(|e| DecodeError::InvalidUtf8(e.to_string()))?;
            // serde also reads a struct from a JSON array (`["id", 2, ts]`): only an object is an event.
            if !text.trim_start().starts_with('{') {
                return Err(DecodeError::InvalidJson("expected a JSON object".into()));
            }
            let event: JsonLike<'a> =
                serde_json::from_slice(payload).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
            let count = match event.count {
                None => 1,
                Some(c) if c < 0 => return Err(DecodeError::NegativeCount(c)),
                Some(c) => c as u64,
            };
            Like {
                video_id: event.video_id,
                count,
                ts: event.ts.or(record_ts).ok_or(DecodeError::MissingTimestamp)?,
            }
        }
    };
    validate_video_id(&like.video_id).map_err(DecodeError::InvalidVideoId)?;
    if !(0..=MAX_TIMESTAMP_MS).contains(&like.ts) {
        return Err(DecodeError::TimestampOutOfRange(like.ts));
    }
    Ok(like)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(bytes: &[u8], ts: Option<i64>) -> Result<Like<'_>, DecodeError> {
        decode_input(InputFormat::Raw, Some(bytes), ts)
    }

    fn json(text: &str, ts: Option<i64>) -> Result<Like<'_>, DecodeError> {
        decode_input(InputFormat::Json, Some(text.as_bytes()), ts)
    }

    #[test]
    fn raw_value_is_the_id_and_record_time_is_event_time() {
        let like = raw(b"video-42", Some(1_000)).unwrap();
        assert_eq!(
            like,
            Like {
                video_id: "video-42".into(),
                count: 1,
                ts: 1_000
            }
        );
        assert_eq!(raw("vidéo".as_bytes(), Some(5)).unwrap().video_id, "vidéo");
    }

    #[test]
    fn raw_rejects_bad_ids_and_timestamps() {
        assert!(matches!(
            raw(&[0xff, 0xfe], Some(1)),
            Err(DecodeError::InvalidUtf8(_))
        ));
        assert_eq!(
            raw(b"", Some(1)),
            Err(DecodeError::InvalidVideoId(VideoIdError::Empty))
        );
        let long = "x".repeat(300);
        assert_eq!(raw(long.as_bytes(), Some(1)).unwrap_err().kind(), "id_too_long");
        assert_eq!(raw(b"a\nb", Some(1)).unwrap_err().kind(), "id_control_character");
        assert_eq!(raw(b"v", None), Err(DecodeError::MissingTimestamp));
        assert_eq!(raw(b"v", Some(-5)), Err(DecodeError::TimestampOutOfRange(-5)));
        assert_eq!(
            decode_input(InputFormat::Raw, None, Some(1)),
            Err(DecodeError::MissingValue)
        );
    }

    #[test]
    fn json_fields_default_to_one_like_at_record_time() {
        assert_eq!(
            json(r#"{"video_id":"v1"}"#, Some(7)).unwrap(),
            Like {
                video_id: "v1".into(),
                count: 1,
                ts: 7
            }
        );
        assert_eq!(
            json(r#"{"video_id":"v1","count":5,"ts":123,"extra":true}"#, Some(7)).unwrap(),
            Like {
                video_id: "v1".into(),
                count: 5,
                ts: 123
            }
        );
        // Escaped ids are decoded, not borrowed.
        assert_eq!(json(r#"{"video_id":"a\u00e9"}"#, Some(1)).unwrap().video_id, "aé");
        assert_eq!(json(r#"{"video_id":"v","count":0}"#, Some(1)).unwrap().count, 0);
    }

    #[test]
    fn json_rejects_broken_and_negative_input() {
        assert_eq!(json("{not json", Some(1)).unwrap_err().kind(), "invalid_json");
        assert_eq!(
            json(r#"{"count":1}"#, Some(1)).unwrap_err().kind(),
            "invalid_json"
        );
        assert_eq!(
            json(r#"{"video_id":"v","count":1.5}"#, Some(1))
                .unwrap_err()
                .kind(),
            "invalid_json"
        );
        assert_eq!(
            json(r#"{"video_id":"v","count":-2}"#, Some(1)),
            Err(DecodeError::NegativeCount(-2))
        );
        assert_eq!(
            json(r#"{"video_id":""}"#, Some(1)).unwrap_err().kind(),
            "empty_id"
        );
        assert_eq!(
            json(r#"{"video_id":"v"}"#, None),
            Err(DecodeError::MissingTimestamp)
        );
        assert_eq!(
            json(r#"{"video_id":"v","ts":-1}"#, Some(1)).unwrap_err().kind(),
            "timestamp_out_of_range"
        );
        let err = json("[1]", Some(1)).unwrap_err();
        assert!(err.to_string().contains("not a like event"), "{err}");
    }

    #[test]
    fn json_input_must_be_an_object() {
        for text in [
            r#"["canary-array", 2, 1700000000000]"#,
            r#""video-1""#,
            "42",
            "null",
            "true",
            "",
        ] {
            assert_eq!(
                json(text, Some(1)).unwrap_err().kind(),
                "invalid_json",
                "{text:?}"
            );
        }
        assert!(
            json(r#"  {"video_id": "v"}"#, Some(1)).is_ok(),
            "leading whitespace is fine"
        );
        assert_eq!(
            json(r#"{"video_id": "a", "video_id": "b"}"#, Some(1))
                .unwrap_err()
                .kind(),
            "invalid_json",
            "duplicate fields are ambiguous"
        );
    }

    #[test]
    fn error_kinds_are_all_listed() {
        let samples = [
            DecodeError::MissingValue,
            DecodeError::InvalidUtf8(String::new()),
            DecodeError::InvalidVideoId(VideoIdError::Empty),
            DecodeError::InvalidVideoId(VideoIdError::TooLong(1)),
            DecodeError::InvalidVideoId(VideoIdError::ControlCharacter),
            DecodeError::InvalidJson(String::new()),
            DecodeError::NegativeCount(-1),
            DecodeError::MissingTimestamp,
            DecodeError::TimestampOutOfRange(-1),
            DecodeError::MalformedRepartition(""),
        ];
        let kinds: Vec<_> = samples.iter().map(DecodeError::kind).collect();
        assert_eq!(kinds, DecodeError::KINDS);
    }
}
