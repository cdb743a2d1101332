//! Test scenarios shared by the unit tests of the pure stages.

use crate::crd::{KafkaSpec, VideoCounter, VideoCounterSpec};
use crate::reconcile::validate::{Defaults, ValidCounter, validate};
use videocounter_protocol::WorkerConfig;

/// The example: 2 replicas, input `video_clicks_ingestion`, windows
/// of 1, 5 and 10 minutes, in namespace `media`.
pub fn example() -> VideoCounter {
    let spec: VideoCounterSpec = serde_json::from_value(serde_json::json!({
        "replicas": 2,
        "kafka": {"bootstrapServers": "kafka:9092"},
        "topics": {"input": "video_clicks_ingestion", "inputFormat": "raw", "partitions": 6},
        "windows": [{"size": "1m"}, {"size": "5m"}, {"size": "10m", "outputTopic": "video_aggregations_10"}]
    }))
    .expect("example spec");
    let mut vc = VideoCounter::new("likes", spec);
    vc.metadata.namespace = Some("media".into());
    vc.metadata.uid = Some("uid-1".into());
    vc.metadata.generation = Some(1);
    vc
}

pub fn defaults() -> Defaults {
    Defaults {
        worker_image: "ghcr.io/videocounter/worker:0.1.0".into(),
    }
}

/// The validated form of `vc`, which must be valid.
pub fn valid(vc: &VideoCounter) -> ValidCounter {
    validate(vc, &defaults()).expect("fixture validates")
}

pub fn config(vc: &VideoCounter) -> WorkerConfig {
    valid(vc).config
}

/// SASL over TLS: a CA from Secret `kafka-ca`, user name and password from `kafka-user`.
pub fn sasl_ssl_kafka() -> KafkaSpec {
    serde_json::from_value(serde_json::json!({
        "bootstrapServers": "k:9093",
        "securityProtocol": "SASL_SSL",
        "tls": {"ca": {"name": "kafka-ca", "key": "ca.crt"}},
        "sasl": {"mechanism": "SCRAM-SHA-512",
                 "username": {"name": "kafka-user", "key": "username"},
                 "password": {"name": "kafka-user", "key": "password"}}
    }))
    .expect("fixture connection")
}
