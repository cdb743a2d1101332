//! The idempotent producer behind the ingest API and the traffic generator.
//!
//! Every wait is bounded: `message.timeout.ms` is the delivery timeout, and
//! `deliver` gives up a little after it, so an unreachable broker turns
//! into a 503 within seconds instead of a hanging request.

use super::Like;
use super::encode::{OutgoingRecord, encode};
use crate::error::GatewayError;
use anyhow::Context;
use futures::future::join_all;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use std::sync::RwLock;
use std::time::Duration;
use videocounter_protocol::InputFormat;
use videocounter_protocol::config::KafkaConnection;
use videocounter_shell::kafka::{Credentials, client_config};

#[derive(Debug, Clone)]
pub struct ProducerSettings {
    pub connection: KafkaConnection,
    pub topic: String,
    pub format: InputFormat,
    pub delivery_timeout: Duration,
}

pub struct LikeProducer {
    settings: ProducerSettings,
    config: ClientConfig,
    /// Replaced when librdkafka reports a fatal error (the old instance is unusable).
    producer: RwLock<FutureProducer>,
}

impl LikeProducer {
    pub fn new(settings: ProducerSettings, client_id: &str) -> anyhow::Result<Self> {
        let mut config = client_config(&settings.connection, client_id, Credentials::Files)?;
        let timeout_ms = settings.delivery_timeout.as_millis().max(1).to_string();
        config
            .set("enable.idempotence", "true")
            // The Java client's key hashing, so partitions match other producers of the topic.
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", &timeout_ms)
            // Topics are the workers' to create, with the partition count they need.
            .set("allow.auto.create.topics", "false")
            .set("linger.ms", "5")
            .set("compression.type", "zstd");
        let producer = config.create().context("creating the Kafka producer")?;
        Ok(Self {
            settings,
            config,
            producer: RwLock::new(producer),
        })
    }

    pub fn settings(&self) -> &ProducerSettings {
        &self.settings
    }

    fn current(&self) -> FutureProducer {
        self.producer.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Queues the like's records without waiting. Each future resolves when
    /// Kafka acknowledges its record or librdkafka gives up on it.
    pub fn enqueue(&self, like: &Like, now_ms: i64) -> Result<Vec<DeliveryFuture>, GatewayError> {
        self.enqueue_records(like, now_ms)
            .map_err(|e| GatewayError::Unavailable(describe_delivery_error(&e, &self.settings)))
    }

    fn enqueue_records(&self, like: &Like, now_ms: i64) -> Result<Vec<DeliveryFuture>, KafkaError> {
        let producer = self.current();
        encode(like, self.settings.format, now_ms)
            .iter()
            .map(|record| send_one(&producer, &self.settings.topic, record))
            .collect()
    }

    /// Sends the likes and waits until Kafka has every record, or says why not.
    /// Returns the number of records written.
    pub async fn deliver(&self, likes: &[Like]) -> Result<usize, GatewayError> {
        let now = crate::clock::now_ms();
        let mut pending = Vec::new();
        let mut failure = None;
        for like in likes {
            match self.enqueue_records(like, now) {
                Ok(futures) => pending.extend(futures),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let expected = crate::ingest::encode::record_count(likes, self.settings.format);
        let timed_out = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        let wait = self.settings.delivery_timeout + Duration::from_secs(2);
        let mut delivered = 0;
        match tokio::time::timeout(wait, join_all(pending)).await {
            Err(_) => failure = failure.or(Some(timed_out)),
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(Ok(_)) => delivered += 1,
                        Ok(Err((e, _))) => failure = failure.or(Some(e)),
                        Err(_canceled) => failure = failure.or(Some(timed_out.clone())),
                    }
                }
            }
        }
        self.replace_if_fatal();
        let Some(error) = failure else {
            return Ok(delivered);
        };
        let why = if error.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageTimedOut) {
            describe_timeout(self.probe().await, &self.settings)
        } else {
            describe_delivery_error(&error, &self.settings)
        };
        Err(GatewayError::Unavailable(format!(
            "{why} ({delivered} of {expected} records were written)"
        )))
    }

    /// After a timeout, asks the brokers (briefly) why: down, or no such topic?
    async fn probe(&self) -> BrokerProbe {
        let producer = self.current();
        let topic = self.settings.topic.clone();
        tokio::task::spawn_blocking(move || {
            match producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(1))
            {
                Err(_) => BrokerProbe::Unreachable,
                Ok(md)
                    if md
                        .topics()
                        .iter()
                        .any(|t| t.name() == topic && t.error().is_none()) =>
                {
                    BrokerProbe::TopicPresent
                }
                Ok(_) => BrokerProbe::TopicMissing,
            }
        })
        .await
        .unwrap_or(BrokerProbe::Unreachable)
    }

    /// Waits for queued records, for a clean shutdown.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.current().flush(timeout) {
            tracing::warn!(error = %e, "records were still queued at shutdown");
        }
    }

    /// Whether the brokers answer a metadata request (blocking; run off the async threads).
    pub fn check_reachable(&self, timeout: Duration) -> Result<(), String> {
        self.current()
            .client()
            .fetch_metadata(Some(&self.settings.topic), timeout)
            .map(|_| ())
            .map_err(|e| format!("{e}"))
    }

    /// A fatal error (for example an idempotence sequence gap) leaves the
    /// instance unusable: start a fresh one so later requests can succeed.
    pub fn replace_if_fatal(&self) {
        let fatal = self.current().client().fatal_error();
        if let Some((code, reason)) = fatal {
            tracing::error!(?code, %reason, "the Kafka producer hit a fatal error; creating a new one");
            match self.config.create::<FutureProducer>() {
                Ok(fresh) => *self.producer.write().unwrap_or_else(|p| p.into_inner()) = fresh,
                Err(e) => tracing::error!(error = %e, "could not create a new Kafka producer"),
            }
        }
    }
}

fn send_one(
    producer: &FutureProducer,
    topic: &str,
    record: &OutgoingRecord,
) -> Result<DeliveryFuture, KafkaError> {
    let future_record = FutureRecord::to(topic)
        .key(&record.key)
        .payload(&record.value)
        .timestamp(record.timestamp);
    producer.send_result(future_record).map_err(|(e, _)| e)
}

/// What the brokers said when asked after a delivery timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerProbe {
    Unreachable,
    TopicMissing,
    TopicPresent,
}

/// Why likes timed out, from what the brokers said afterwards.
pub fn describe_timeout(probe: BrokerProbe, settings: &ProducerSettings) -> String {
    let servers = &settings.connection.bootstrap_servers;
    let timeout = settings.delivery_timeout;
    match probe {
        BrokerProbe::Unreachable => format!(
            "Kafka did not acknowledge the likes within {timeout:?}: are the brokers at {servers} reachable?"
        ),
        BrokerProbe::TopicMissing => format!(
            "the input topic {:?} does not exist on {servers}; the workers create it when they start",
            settings.topic
        ),
        BrokerProbe::TopicPresent => {
            format!(
                "Kafka at {servers} did not acknowledge the likes within {timeout:?}; it may be overloaded"
            )
        }
    }
}

/// What a client should read when Kafka did not take its likes.
pub fn describe_delivery_error(e: &KafkaError, settings: &ProducerSettings) -> String {
    let servers = &settings.connection.bootstrap_servers;
    let topic = &settings.topic;
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageTimedOut) => describe_timeout(BrokerProbe::Unreachable, settings),
        Some(RDKafkaErrorCode::QueueFull) => {
            "the producer's queue of records for Kafka is full; retry shortly".to_owned()
        }
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => format!(
            "the input topic {topic:?} does not exist on {servers}; the workers create it when they start"
        ),
        _ => format!("Kafka did not take the likes for topic {topic:?} on {servers}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ProducerSettings {
        ProducerSettings {
            connection: videocounter_shell::kafka::plaintext("k1:9092"),
            topic: "likes".into(),
            format: InputFormat::Raw,
            delivery_timeout: Duration::from_secs(3),
        }
    }

    #[test]
    fn delivery_errors_say_what_to_check() {
        let timeout = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        assert_eq!(
            describe_delivery_error(&timeout, &settings()),
            "Kafka did not acknowledge the likes within 3s: are the brokers at k1:9092 reachable?"
        );
        let unknown = KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition);
        assert!(
            describe_delivery_error(&unknown, &settings()).contains("\"likes\" does not exist on k1:9092")
        );
        let full = KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull);
        assert!(describe_delivery_error(&full, &settings()).contains("queue"));
    }

    #[test]
    fn timeouts_are_explained_by_what_the_brokers_said() {
        let s = settings();
        assert!(
            describe_timeout(BrokerProbe::Unreachable, &s).contains("are the brokers at k1:9092 reachable?")
        );
        assert_eq!(
            describe_timeout(BrokerProbe::TopicMissing, &s),
            "the input topic \"likes\" does not exist on k1:9092; the workers create it when they start"
        );
        assert!(describe_timeout(BrokerProbe::TopicPresent, &s).contains("may be overloaded"));
    }
}
