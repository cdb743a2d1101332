//! The chaos test's input: JSON like events with event times over several
//! windows, ids with a Zipf spread (some non-ASCII, some of the longest valid
//! length), some records keyed, some padded to hundreds of kilobytes, and
//! about one percent malformed records of many kinds.
//!
//! Every record carries its intended meaning in a header (`chaos.expect`), so
//! the truth is read back from the input topic itself: what the generator
//! meant, not what the worker's decoder makes of it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

pub const EXPECT_HEADER: &str = "chaos.expect";

/// What a record must become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `count` likes of `id` at event time `ts` (0 likes count nothing).
    Good { id: String, count: u64, ts: i64 },
    /// Dead-lettered exactly once with this reason.
    Bad { reason: String },
}

impl Expect {
    pub fn to_header(&self) -> Vec<u8> {
        match self {
            Expect::Good { id, count, ts } => json!({"id": id, "count": count, "ts": ts}),
            Expect::Bad { reason } => json!({ "bad": reason }),
        }
        .to_string()
        .into_bytes()
    }

    pub fn from_header(bytes: &[u8]) -> Self {
        let v: serde_json::Value = serde_json::from_slice(bytes).expect("chaos.expect header");
        match v.get("bad") {
            Some(reason) => Expect::Bad {
                reason: reason.as_str().unwrap().to_owned(),
            },
            None => Expect::Good {
                id: v["id"].as_str().unwrap().to_owned(),
                count: v["count"].as_u64().unwrap(),
                ts: v["ts"].as_i64().unwrap(),
            },
        }
    }
}

/// One record to produce.
pub struct InputRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// The Kafka record timestamp (the event time when the value has no `ts`).
    pub timestamp: i64,
    pub expect: Expect,
}

pub struct Generator {
    rng: StdRng,
    /// Cumulative Zipf weights of the ids.
    cdf: Vec<f64>,
    base_ts: i64,
    span_ms: i64,
    malformed_share: f64,
    padded_share: f64,
    long_ids: Vec<String>,
}

impl Generator {
    /// `ids` videos with a Zipf(`zipf_s`) spread; event times in `base_ts .. base_ts + span_ms`.
    pub fn new(seed: u64, ids: usize, zipf_s: f64, base_ts: i64, span_ms: i64) -> Self {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (1..=ids)
            .map(|k| {
                total += 1.0 / (k as f64).powf(zipf_s);
                total
            })
            .collect();
        for c in &mut cdf {
            *c /= total;
        }
        let long_ids = (0..5)
            .map(|i| {
                let head = format!("long-{i}-ü-");
                let fill = 256 - head.len();
                format!("{head}{}", "x".repeat(fill))
            })
            .collect();
        Self {
            rng: StdRng::seed_from_u64(seed),
            cdf,
            base_ts,
            span_ms,
            malformed_share: 0.01,
            padded_share: 0.0005,
            long_ids,
        }
    }

    fn video_id(&mut self) -> String {
        let u: f64 = self.rng.random();
        let k = self.cdf.partition_point(|&c| c < u);
        match self.rng.random_range(0..1000) {
            0..5 => self.long_ids[k % self.long_ids.len()].clone(),
            5..15 => format!("vidéo-{k}-ñ日本"),
            15..18 => format!("quote\"and\\slash-{k}"),
            _ => format!("video-{k}"),
        }
    }

    fn event_time(&mut self) -> i64 {
        self.base_ts + self.rng.random_range(0..self.span_ms)
    }

    pub fn next_record(&mut self) -> InputRecord {
        if self.rng.random::<f64>() < self.malformed_share {
            self.malformed()
        } else {
            self.good()
        }
    }

    fn good(&mut self) -> InputRecord {
        let id = self.video_id();
        let ts = self.event_time();
        let (count_field, count) = match self.rng.random_range(0..100) {
            0..40 => (None, 1),
            40..80 => (Some(1), 1),
            80..97 => {
                let c = self.rng.random_range(2..=5);
                (Some(c), c)
            }
            _ => (Some(0), 0),
        };
        let mut event = serde_json::Map::new();
        event.insert("video_id".into(), json!(id));
        if let Some(c) = count_field {
            event.insert("count".into(), json!(c));
        }
        // Without `ts`, the record timestamp is the event time.
        let ts_in_value = self.rng.random_bool(0.7);
        if ts_in_value {
            event.insert("ts".into(), json!(ts));
        }
        if self.rng.random_bool(0.05) {
            event.insert("source".into(), json!({"app": "chaos", "v": [1, 2, 3]}));
        }
        if self.rng.random::<f64>() < self.padded_share {
            event.insert("pad".into(), json!("p".repeat(300_000)));
        }
        let record_ts = if ts_in_value {
            // Any timestamp: the value's `ts` wins.
            self.base_ts + self.rng.random_range(0..self.span_ms)
        } else {
            ts
        };
        let key = match self.rng.random_range(0..10) {
            0 => Some(id.clone().into_bytes()),
            1 => Some(format!("k-{}", self.rng.random::<u32>()).into_bytes()),
            _ => None,
        };
        InputRecord {
            key,
            value: Some(serde_json::Value::Object(event).to_string().into_bytes()),
            timestamp: record_ts,
            expect: Expect::Good { id, count, ts },
        }
    }

    fn malformed(&mut self) -> InputRecord {
        let ts = self.event_time();
        let (value, reason): (Option<Vec<u8>>, &str) = match self.rng.random_range(0..31) {
            0 => (None, "missing_value"),
            1 => (Some(b"{not json".to_vec()), "invalid_json"),
            2 => (
                Some(br#"{"video_id": "video-1", "count": 2"#.to_vec()),
                "invalid_json",
            ),
            3 => (Some(br#"{"video_id": 42}"#.to_vec()), "invalid_json"),
            4 => (
                Some(br#"{"video_id": "video-1", "count": "2"}"#.to_vec()),
                "invalid_json",
            ),
            5 => (
                Some(br#"{"video_id": "video-1", "count": 1.5}"#.to_vec()),
                "invalid_json",
            ),
            6 => (
                Some(br#"{"video_id": "video-1", "ts": "yesterday"}"#.to_vec()),
                "invalid_json",
            ),
            7 => (Some(br#"{"count": 1}"#.to_vec()), "invalid_json"),
            8 => (Some(br#"{"video_id": null}"#.to_vec()), "invalid_json"),
            9 => (
                Some(format!(r#"["canary-array", 2, {ts}]"#).into_bytes()),
                "invalid_json",
            ),
            10 => (Some(br#""video-1""#.to_vec()), "invalid_json"),
            11 => (Some(b"42".to_vec()), "invalid_json"),
            12 => (Some(Vec::new()), "invalid_json"),
            13 => (Some(b"{}".to_vec()), "invalid_json"),
            14 => (Some(br#"{"video_id": ""}"#.to_vec()), "empty_id"),
            15 => (
                Some(json!({"video_id": "y".repeat(257)}).to_string().into_bytes()),
                "id_too_long",
            ),
            16 => (
                Some(json!({"video_id": "z".repeat(100_000)}).to_string().into_bytes()),
                "id_too_long",
            ),
            17 => {
                let mut garbage = vec![0xffu8; 512 * 1024];
                self.rng.fill(&mut garbage[1..]);
                (Some(garbage), "invalid_utf8")
            }
            18 => (Some(b"{\"video_id\": \"\xff\xfe\"}".to_vec()), "invalid_utf8"),
            19 => (
                Some(br#"{"video_id": "a\u0001b"}"#.to_vec()),
                "id_control_character",
            ),
            20 => (
                Some(br#"{"video_id": "video-1", "count": -3}"#.to_vec()),
                "negative_count",
            ),
            21 => (
                Some(br#"{"video_id": "video-1", "ts": -5}"#.to_vec()),
                "timestamp_out_of_range",
            ),
            22 => (
                Some(br#"{"video_id": "video-1", "ts": 253402300800000}"#.to_vec()),
                "timestamp_out_of_range",
            ),
            23 => (
                Some(br#"{"video_id": "video-1", "ts": 1e30}"#.to_vec()),
                "invalid_json",
            ),
            24 => (
                Some(br#"{"video_id": "video-1", "count": 99999999999999999999}"#.to_vec()),
                "invalid_json",
            ),
            25 => (Some(b"null".to_vec()), "invalid_json"),
            26 => (
                Some(br#"{"video_id": "nul\u0000"}"#.to_vec()),
                "id_control_character",
            ),
            27 => (Some(br#"{"video_id": ["video-1"]}"#.to_vec()), "invalid_json"),
            28 => (Some(b"true".to_vec()), "invalid_json"),
            29 => (
                Some(br#"{"video_id": "a", "video_id": "b"}"#.to_vec()),
                "invalid_json",
            ),
            _ => (
                Some(br#"{"video_id": "video-1", "count": 3} trailing"#.to_vec()),
                "invalid_json",
            ),
        };
        InputRecord {
            key: self.rng.random_bool(0.3).then(|| b"bad-key".to_vec()),
            value,
            timestamp: ts,
            expect: Expect::Bad {
                reason: reason.to_owned(),
            },
        }
    }
}

#[test]
fn headers_round_trip() {
    for e in [
        Expect::Good {
            id: "vidéo-\"1".into(),
            count: 3,
            ts: 17,
        },
        Expect::Bad {
            reason: "invalid_json".into(),
        },
    ] {
        assert_eq!(Expect::from_header(&e.to_header()), e);
    }
}
