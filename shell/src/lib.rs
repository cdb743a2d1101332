//! The I/O shell the worker, the operator and the gateway share, so each
//! talks to Kafka, logs and serves metrics the same way:
//!
//! - [`kafka`]: librdkafka settings from a `KafkaConnection`, and the topic
//!   check ([`kafka::check_topics`], pure) and creation ([`kafka::TopicAdmin`]).
//! - [`logs`]: the tracing subscriber (`--log-format text|json`, `RUST_LOG`).
//! - [`metrics`]: the `/metrics` answer (OpenMetrics text of a registry).
//!
//! It is a crate of its own rather than a module of `videocounter-protocol`:
//! the protocol is the contract (file formats, records, topic names) and
//! depends on serde alone, while this crate links librdkafka, axum and
//! tracing-subscriber; what only needs the contract stays light.

pub mod kafka;
pub mod logs;
pub mod metrics;
