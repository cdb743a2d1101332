//! The gateway's own Prometheus metrics (served on `/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestLabels {
    /// `single` or `batch`.
    pub endpoint: &'static str,
    /// `accepted` or the error code (`invalid_video_id`, `kafka_unavailable`, ...).
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

impl Outcome {
    pub fn sent() -> Self {
        Self { outcome: "sent" }
    }
    pub fn failed() -> Self {
        Self { outcome: "failed" }
    }
}

pub struct Metrics {
    pub ingest_requests: Family<IngestLabels, Counter>,
    pub ingest_records: Counter,
    pub ingest_duration: Histogram,
    pub count_updates: Counter,
    pub undecodable_records: Counter,
    pub feed_subscribers: Gauge,
    pub generated_likes: Family<Outcome, Counter>,
}

impl Metrics {
    /// The metrics, registered under the `videocounter_gateway_` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            ingest_requests: Family::default(),
            ingest_records: Counter::default(),
            // 1 ms to about 16 s: a healthy broker answers in milliseconds, a dead one at the timeout.
            ingest_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            count_updates: Counter::default(),
            undecodable_records: Counter::default(),
            feed_subscribers: Gauge::default(),
            generated_likes: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("videocounter_gateway");
        r.register(
            "ingest_requests",
            "Like requests answered, by endpoint and outcome",
            m.ingest_requests.clone(),
        );
        r.register(
            "ingest_records",
            "Records the ingest API wrote to the input topic",
            m.ingest_records.clone(),
        );
        r.register(
            "ingest_duration_seconds",
            "Time from a like request to Kafka's acknowledgement (or the error)",
            m.ingest_duration.clone(),
        );
        r.register(
            "count_updates",
            "Window count records read from the output topics",
            m.count_updates.clone(),
        );
        r.register(
            "undecodable_records",
            "Output-topic records that were not window counts",
            m.undecodable_records.clone(),
        );
        r.register(
            "feed_subscribers",
            "Open live-feed (Server-Sent Events) connections",
            m.feed_subscribers.clone(),
        );
        r.register(
            "generated_likes",
            "Likes sent by the built-in traffic generator, by outcome",
            m.generated_likes.clone(),
        );
        m
    }
}
