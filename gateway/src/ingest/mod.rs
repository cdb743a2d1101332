//! Turning HTTP like requests into Kafka records: parsing and validation
//! (`request`), the wire encoding for the deployment's input format
//! (`encode`), and the idempotent producer that delivers them (`producer`).

pub mod encode;
pub mod producer;
pub mod request;

/// One validated like request: `count` likes for `video_id`, at `ts` (epoch
/// ms) or at the time the gateway produces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Like {
    pub video_id: String,
    pub count: u32,
    pub ts: Option<i64>,
}

impl Like {
    pub fn one(video_id: impl Into<String>) -> Self {
        Self {
            video_id: video_id.into(),
            count: 1,
            ts: None,
        }
    }
}
