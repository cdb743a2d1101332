//! Kafka client settings and the topics a worker needs.

use crate::config::{GroupProtocol, Settings};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::collections::BTreeMap;
use std::time::Duration;
use videocounter_protocol::topics::{TopicPlan, topic_plan};

#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    #[error("cannot read {what} from {path}: {source}")]
    SecretFile {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("Kafka at {bootstrap} is unreachable or failing: {source}")]
    Unreachable { bootstrap: String, source: KafkaError },
    #[error("cannot create topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("{0}")]
    PartitionMismatch(String),
}

/// Connection settings shared by every client (brokers, TLS, SASL).
pub fn base_config(settings: &Settings) -> Result<ClientConfig, KafkaSetupError> {
    let kafka = &settings.worker.kafka;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("client.id", &settings.instance_id)
        .set("security.protocol", kafka.security_protocol.as_librdkafka());
    // Troubleshooting: librdkafka's own debug contexts (e.g. `eos,cgrp`), logged at debug level.
    if let Ok(contexts) = std::env::var("VIDEOCOUNTER_LIBRDKAFKA_DEBUG")
        && !contexts.is_empty()
    {
        c.set("debug", contexts);
    }
    if let Some(tls) = &kafka.tls {
        for (key, file) in [
            ("ssl.ca.location", &tls.ca_file),
            ("ssl.certificate.location", &tls.cert_file),
            ("ssl.key.location", &tls.key_file),
        ] {
            if let Some(f) = file {
                c.set(key, f.to_string_lossy());
            }
        }
    }
    if let Some(sasl) = &kafka.sasl {
        let read = |what, path: &std::path::PathBuf| {
            std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|source| KafkaSetupError::SecretFile {
                    what,
                    path: path.display().to_string(),
                    source,
                })
        };
        c.set("sasl.mechanisms", sasl.mechanism.as_librdkafka())
            .set("sasl.username", read("SASL username", &sasl.username_file)?)
            .set("sasl.password", read("SASL password", &sasl.password_file)?);
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
        // transactions": retry those after 10 ms, not librdkafka's 100 ms.
        .set("retry.backoff.ms", "10")
        .set("retry.backoff.max.ms", "500");
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

/// Creates the missing topics of the plan and checks the partition counts of
/// the existing ones. Returns the partition count of every planned topic.
pub fn ensure_topics(
    base: &ClientConfig,
    settings: &Settings,
) -> Result<BTreeMap<String, usize>, KafkaSetupError> {
    let bootstrap = settings.worker.kafka.bootstrap_servers.clone();
    let unreachable = |source| KafkaSetupError::Unreachable {
        bootstrap: bootstrap.clone(),
        source,
    };
    let admin: AdminClient<DefaultClientContext> = base.create().map_err(unreachable)?;
    let plan = topic_plan(&settings.worker);
    let existing = partition_counts(&admin, &plan).map_err(unreachable)?;
    let missing: Vec<&TopicPlan> = plan.iter().filter(|t| !existing.contains_key(&t.name)).collect();
    if !missing.is_empty() {
        let new_topics: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|t| {
                let mut n = NewTopic::new(&t.name, t.partitions as i32, TopicReplication::Fixed(-1));
                for (k, v) in t.role.configs() {
                    n = n.set(k, v);
                }
                n
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results =
            futures::executor::block_on(admin.create_topics(&new_topics, &opts)).map_err(unreachable)?;
        for r in results {
            match r {
                Ok(topic) => tracing::info!(%topic, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(KafkaSetupError::CreateTopic {
                        topic,
                        reason: code.to_string(),
                    });
                }
            }
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let counts = loop {
        let counts = partition_counts(&admin, &plan).map_err(unreachable)?;
        if plan.iter().all(|t| counts.contains_key(&t.name)) || std::time::Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let problems = partition_problems(&plan, &counts);
    if problems.is_empty() {
        Ok(counts)
    } else {
        Err(KafkaSetupError::PartitionMismatch(problems.join("; ")))
    }
}

/// Partition counts of the planned topics that exist (with leaders for every partition).
fn partition_counts(
    admin: &AdminClient<DefaultClientContext>,
    plan: &[TopicPlan],
) -> Result<BTreeMap<String, usize>, KafkaError> {
    let md = admin.inner().fetch_metadata(None, Duration::from_secs(10))?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && plan.iter().any(|p| p.name == t.name()))
        .filter(|t| !t.partitions().is_empty())
        .map(|t| (t.name().to_owned(), t.partitions().len()))
        .collect())
}

/// Every planned topic whose partition count must match and does not, or that is missing.
pub fn partition_problems(plan: &[TopicPlan], counts: &BTreeMap<String, usize>) -> Vec<String> {
    plan.iter()
        .filter_map(|t| match counts.get(&t.name) {
            None => Some(format!(
                "topic {} does not exist and could not be created",
                t.name
            )),
            Some(&n) if t.role.partition_count_must_match() && n != t.partitions as usize => Some(format!(
                "topic {} has {n} partitions but topics.partitions is {} ({:?} topics must match it: \
                 repartition, changelog and outputs are co-partitioned)",
                t.name, t.partitions, t.role
            )),
            Some(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use videocounter_protocol::WorkerConfig;

    #[test]
    fn mismatched_internal_topics_are_named_and_the_input_may_differ() {
        let plan = topic_plan(&WorkerConfig::with_bootstrap("k:9092"));
        let mut counts: BTreeMap<String, usize> = plan.iter().map(|t| (t.name.clone(), 6)).collect();
        assert!(partition_problems(&plan, &counts).is_empty());
        counts.insert("video_clicks_ingestion".into(), 12);
        assert!(partition_problems(&plan, &counts).is_empty());
        counts.insert("videocounter-counts-changelog".into(), 3);
        counts.remove("video_aggregations_5");
        let problems = partition_problems(&plan, &counts);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("videocounter-counts-changelog has 3 partitions"));
        assert!(problems[1].contains("video_aggregations_5 does not exist"));
    }
}
