//! Kafka client settings and the topics a worker needs.

use crate::config::{GroupProtocol, Settings};
use rdkafka::config::ClientConfig;
use std::collections::BTreeMap;
use std::time::Duration;
use videocounter_protocol::topics::topic_plan;
use videocounter_shell::kafka::{Credentials, SecretFileError, TopicAdmin, TopicError, client_config};

#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    #[error(transparent)]
    SecretFile(#[from] SecretFileError),
    #[error(transparent)]
    Topics(#[from] TopicError),
}

/// Connection settings shared by every client (brokers, TLS, SASL).
pub fn base_config(settings: &Settings) -> Result<ClientConfig, KafkaSetupError> {
    let mut c = client_config(&settings.worker.kafka, &settings.instance_id, Credentials::Files)?;
    // Troubleshooting: librdkafka's own debug contexts (e.g. `eos,cgrp`), logged at debug level.
    if let Ok(contexts) = std::env::var("VIDEOCOUNTER_LIBRDKAFKA_DEBUG")
        && !contexts.is_empty()
    {
        c.set("debug", contexts);
    }
    Ok(c)
}

/// The group consumer: input and repartition topics, offsets committed only
/// through transactions (or explicitly in at-least-once mode).
pub fn consumer_config(base: &ClientConfig, settings: &Settings) -> ClientConfig {
    let mut c = base.clone();
    c.set("group.id", &settings.worker.application_id)
        .set("group.instance.id", &settings.instance_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // Prefetch bounded in bytes only: like records are tiny and arrive
        // lz4-compressed, so librdkafka's 64 MiB default queue holds over a
        // million messages. Message-count limits and smaller fetches cost more
        // than half the throughput in `make bench`; 32 MiB costs nothing.
        .set("queued.max.messages.kbytes", "32768")
        // A read_committed fetch that finds nothing new waits up to this long
        // on the broker, and the count stage reads the re-keyed records only
        // once their transaction commits: librdkafka's 500 ms default was most
        // of the event -> output latency.
        .set("fetch.wait.max.ms", "20")
        .set("statistics.interval.ms", "5000");
    match settings.group_protocol {
        GroupProtocol::Classic => {
            c.set("partition.assignment.strategy", "cooperative-sticky")
                .set("session.timeout.ms", settings.session_timeout_ms.to_string())
                .set(
                    "heartbeat.interval.ms",
                    (settings.session_timeout_ms / 10).clamp(100, 3000).to_string(),
                );
        }
        GroupProtocol::Consumer => {
            c.set("group.protocol", "consumer");
        }
    }
    c
}

/// How long a transaction may stay open before the broker aborts it; also
/// bounds how long a new owner waits for a crashed owner's open transaction
/// (its restore and its committed offsets). Kafka Streams uses the same 10 s.
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

pub fn producer_config(base: &ClientConfig, settings: &Settings) -> ClientConfig {
    let mut c = base.clone();
    c.set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "65536")
        .set("message.timeout.ms", TRANSACTION_TIMEOUT.as_millis().to_string())
        // Right after a commit the coordinator still writes its markers and
        // answers the next transaction's first requests with "concurrent
        // transactions": retry those after 10 ms, not librdkafka's 100 ms,
        // and back off to 50 ms at most (at 500 ms, one commit in
        // eight waited 0.3-1.2 s for its offsets in `make bench`'s latency run).
        .set("retry.backoff.ms", "10")
        .set("retry.backoff.max.ms", "50");
    if settings.exactly_once() {
        c.set("transactional.id", settings.transactional_id()).set(
            "transaction.timeout.ms",
            TRANSACTION_TIMEOUT.as_millis().to_string(),
        );
    }
    c
}

/// A consumer outside the group, for restores and metadata.
pub fn plain_consumer_config(base: &ClientConfig, read_committed: bool) -> ClientConfig {
    let mut c = base.clone();
    c.set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "isolation.level",
            if read_committed {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        );
    c
}

/// Creates the missing topics of the plan and checks the existing ones
/// (partition counts, a compacted changelog), so a worker runs without the
/// operator. Returns the partition count of every planned topic.
pub fn ensure_topics(
    base: &ClientConfig,
    settings: &Settings,
) -> Result<BTreeMap<String, usize>, KafkaSetupError> {
    let admin = TopicAdmin::new(base)?;
    let plan = topic_plan(&settings.worker);
    futures::executor::block_on(async {
        for topic in admin.ensure(&plan, None).await? {
            tracing::info!(%topic, "created topic");
        }
        Ok(admin.wait_until_listed(&plan, Duration::from_secs(30)).await?)
    })
}
