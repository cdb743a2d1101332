//! Bytes on the wire, decoded and encoded without I/O: input likes (raw and
//! JSON), the internal repartition records, changelog keys and values, and
//! the JSON output records.

use crate::window::{MAX_TIMESTAMP_MS, WindowSpec};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::ops::Range;
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

/// Repartition record value: a format byte, the summed count and the event time.
const REPARTITION_V1: u8 = 1;

pub fn encode_repartition_value(count: u64, ts: i64) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[0] = REPARTITION_V1;
    out[1..9].copy_from_slice(&count.to_be_bytes());
    out[9..17].copy_from_slice(&ts.to_be_bytes());
    out
}

/// Decodes a repartition record (key = video id) into `(video id, count, ts)`.
pub fn decode_repartition<'a>(
    key: Option<&'a [u8]>,
    value: Option<&[u8]>,
) -> Result<(&'a str, u64, i64), DecodeError> {
    let key = key.ok_or(DecodeError::MalformedRepartition("no key"))?;
    let id = std::str::from_utf8(key).map_err(|_| DecodeError::MalformedRepartition("key is not UTF-8"))?;
    let value = value.ok_or(DecodeError::MalformedRepartition("no value"))?;
    if value.len() != 17 || value[0] != REPARTITION_V1 {
        return Err(DecodeError::MalformedRepartition("unknown value format"));
    }
    let count = u64::from_be_bytes(value[1..9].try_into().expect("8 bytes"));
    let ts = i64::from_be_bytes(value[9..17].try_into().expect("8 bytes"));
    if !(0..=MAX_TIMESTAMP_MS).contains(&ts) {
        return Err(DecodeError::MalformedRepartition("timestamp out of range"));
    }
    Ok((id, count, ts))
}

/// Store and changelog key of a window count: a tag, the window size, the
/// window start (order-preserving) and the video id, so the windows of one
/// size sort by start and a time range is one contiguous key range.
const WINDOW_TAG: u8 = b'w';

/// Key of the partition's stream time, in the store and in the changelog.
pub const STREAM_TIME_KEY: &[u8] = b"m:stream_time";

/// Key of the partition's position: the next repartition offset to count,
/// written with the counts in every transaction that moves it, so a restored
/// store knows exactly which records it already holds.
pub const POSITION_KEY: &[u8] = b"m:position";

pub fn window_key(size_ms: i64, start: i64, video_id: &str) -> Vec<u8> {
    let mut key = window_prefix(size_ms, start);
    key.extend_from_slice(video_id.as_bytes());
    key
}

fn window_prefix(size_ms: i64, start: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(17 + 16);
    key.push(WINDOW_TAG);
    key.extend_from_slice(&(size_ms as u64).to_be_bytes());
    key.extend_from_slice(&((start as u64) ^ (1 << 63)).to_be_bytes());
    key
}

/// Key range `[from, to)` holding every window of `size_ms` whose start is in `starts`.
pub fn window_key_range(size_ms: i64, starts: Range<i64>) -> (Vec<u8>, Vec<u8>) {
    (
        window_prefix(size_ms, starts.start),
        window_prefix(size_ms, starts.end),
    )
}

/// A decoded window key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowKeyRef<'a> {
    pub size_ms: i64,
    pub start: i64,
    pub video_id: &'a str,
}

pub fn parse_window_key(key: &[u8]) -> Option<WindowKeyRef<'_>> {
    if key.len() < 17 || key[0] != WINDOW_TAG {
        return None;
    }
    let size_ms = u64::from_be_bytes(key[1..9].try_into().ok()?) as i64;
    let start = (u64::from_be_bytes(key[9..17].try_into().ok()?) ^ (1 << 63)) as i64;
    let video_id = std::str::from_utf8(&key[17..]).ok()?;
    Some(WindowKeyRef {
        size_ms,
        start,
        video_id,
    })
}

pub fn encode_u64(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

pub fn encode_i64(v: i64) -> [u8; 8] {
    v.to_be_bytes()
}

pub fn decode_i64(bytes: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(bytes.try_into().ok()?))
}

/// The output record, borrowed; the same JSON as `videocounter_protocol::WindowCountRecord`.
#[derive(Serialize)]
struct OutputRecord<'a> {
    #[serde(rename = "type")]
    window_type: &'a str,
    video_uid: &'a str,
    count: u64,
    window_start: i64,
    window_end: i64,
}

pub fn encode_output(spec: &WindowSpec, video_id: &str, start: i64, count: u64) -> Vec<u8> {
    serde_json::to_vec(&OutputRecord {
        window_type: &spec.label,
        video_uid: video_id,
        count,
        window_start: start,
        window_end: spec.end_of(start),
    })
    .expect("serializing plain fields cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use videocounter_protocol::WindowCountRecord;

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

    #[test]
    fn repartition_values_round_trip() {
        let value = encode_repartition_value(42, 1_700_000_000_000);
        assert_eq!(
            decode_repartition(Some(b"vid"), Some(&value)),
            Ok(("vid", 42, 1_700_000_000_000))
        );
        assert!(decode_repartition(None, Some(&value)).is_err());
        assert!(decode_repartition(Some(b"vid"), Some(b"junk")).is_err());
        assert!(decode_repartition(Some(&[0xff]), Some(&value)).is_err());
    }

    #[test]
    fn window_keys_sort_by_size_then_start_then_id() {
        let keys = [
            window_key(60_000, -60_000, "z"),
            window_key(60_000, 0, "a"),
            window_key(60_000, 0, "b"),
            window_key(60_000, 60_000, "a"),
            window_key(300_000, 0, "a"),
        ];
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys);
        assert!(STREAM_TIME_KEY < &keys[0][..]);
        let parsed = parse_window_key(&keys[1]).unwrap();
        assert_eq!(
            parsed,
            WindowKeyRef {
                size_ms: 60_000,
                start: 0,
                video_id: "a"
            }
        );
        assert_eq!(parse_window_key(STREAM_TIME_KEY), None);
    }

    #[test]
    fn key_ranges_hold_exactly_their_windows() {
        let (from, to) = window_key_range(60_000, 0..120_000);
        let inside = [window_key(60_000, 0, "a"), window_key(60_000, 60_000, "zzz")];
        let outside = [
            window_key(60_000, -60_000, "a"),
            window_key(60_000, 120_000, ""),
            window_key(300_000, 0, "a"),
        ];
        assert!(inside.iter().all(|k| *k >= from && *k < to));
        assert!(outside.iter().all(|k| *k < from || *k >= to));
        let (from, _) = window_key_range(60_000, i64::MIN..0);
        assert!(window_key(60_000, -600_000, "a") >= from);
    }

    #[test]
    fn output_json_is_the_protocol_record() {
        let spec = WindowSpec {
            size_ms: 60_000,
            grace_ms: 0,
            retention_ms: 0,
            label: "1min".into(),
            output_topic: "video_aggregations_1".into(),
        };
        let bytes = encode_output(&spec, "v\"1", 120_000, 9);
        let rec: WindowCountRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            rec,
            WindowCountRecord {
                window_type: "1min".into(),
                video_uid: "v\"1".into(),
                count: 9,
                window_start: 120_000,
                window_end: 180_000
            }
        );
    }

    #[test]
    fn numbers_round_trip() {
        assert_eq!(decode_u64(&encode_u64(u64::MAX)), Some(u64::MAX));
        assert_eq!(decode_i64(&encode_i64(-3)), Some(-3));
        assert_eq!(decode_u64(b"short"), None);
    }
}
