//! The Kafka records a like becomes, in the deployment's input format.
//! Always keyed by video id, so one video's likes stay in one partition and
//! in order, and the worker can skip repartitioning.

use super::Like;
use videocounter_protocol::{InputFormat, LikeEvent};

/// A record ready for the producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub key: String,
    pub value: Vec<u8>,
    /// Kafka record timestamp (epoch ms): the like's time.
    pub timestamp: i64,
}

/// `raw`: one record per like whose value is the id (the Faust seed's wire
/// format). `json`: one `LikeEvent` carrying the count.
pub fn encode(like: &Like, format: InputFormat, now_ms: i64) -> Vec<OutgoingRecord> {
    let timestamp = like.ts.unwrap_or(now_ms);
    match format {
        InputFormat::Raw => (0..like.count)
            .map(|_| OutgoingRecord {
                key: like.video_id.clone(),
                value: like.video_id.as_bytes().to_vec(),
                timestamp,
            })
            .collect(),
        InputFormat::Json => {
            let event = LikeEvent {
                video_id: like.video_id.clone(),
                count: Some(i64::from(like.count)),
                ts: Some(timestamp),
            };
            vec![OutgoingRecord {
                key: like.video_id.clone(),
                value: serde_json::to_vec(&event).expect("a LikeEvent always serializes"),
                timestamp,
            }]
        }
    }
}

/// Records a list of likes becomes, for capacity checks before sending.
pub fn record_count(likes: &[Like], format: InputFormat) -> usize {
    match format {
        InputFormat::Raw => likes.iter().map(|l| l.count as usize).sum(),
        InputFormat::Json => likes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_is_one_record_per_like_with_the_id_as_value() {
        let like = Like {
            video_id: "v1".into(),
            count: 3,
            ts: None,
        };
        let records = encode(&like, InputFormat::Raw, 42);
        assert_eq!(records.len(), 3);
        for r in &records {
            assert_eq!(r.key, "v1");
            assert_eq!(r.value, b"v1");
            assert_eq!(r.timestamp, 42);
        }
        assert_eq!(record_count(&[like.clone(), like], InputFormat::Raw), 6);
    }

    #[test]
    fn json_is_one_like_event_with_count_and_ts() {
        let like = Like {
            video_id: "v1".into(),
            count: 3,
            ts: Some(7),
        };
        let records = encode(&like, InputFormat::Json, 42);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].key, "v1");
        assert_eq!(records[0].timestamp, 7);
        let value: serde_json::Value = serde_json::from_slice(&records[0].value).unwrap();
        assert_eq!(value, serde_json::json!({"video_id": "v1", "count": 3, "ts": 7}));
        assert_eq!(record_count(&[like.clone(), like], InputFormat::Json), 2);
    }
}
