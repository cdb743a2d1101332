//! Reads the output topics into the `CountStore` and fans every change out
//! to the browsers' event streams.
//!
//! No consumer group: the gateway assigns itself every partition (so each
//! gateway replica sees every video), starting `history` back in time so the
//! charts have recent windows right after a restart. Topics and partitions
//! that appear later (the workers create the topics) are picked up by a
//! periodic metadata refresh.

use super::LiveFeed;
use crate::metrics::Metrics;
use anyhow::Context;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use videocounter_protocol::WindowCountRecord;
use videocounter_protocol::config::KafkaConnection;

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub connection: KafkaConnection,
    pub topics: Vec<String>,
    /// How far back to start reading when a partition is first assigned.
    pub history: Duration,
    pub refresh_every: Duration,
}

/// Decodes one output record; `None` payloads (tombstones) and foreign JSON are errors.
pub fn decode_count(payload: Option<&[u8]>) -> Result<WindowCountRecord, String> {
    let bytes = payload.ok_or("record has no value")?;
    serde_json::from_slice(bytes).map_err(|e| format!("not a window count record: {e}"))
}

pub fn spawn(
    settings: ConsumerSettings,
    feed: LiveFeed,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut config = videocounter_shell::kafka::client_config(
        &settings.connection,
        "videocounter-gateway-feed",
        videocounter_shell::kafka::Credentials::Files,
    )?;
    config
        // Required by librdkafka; never joined or committed (partitions are assigned by hand).
        .set("group.id", format!("videocounter-gateway-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "latest");
    let consumer: Arc<StreamConsumer> =
        Arc::new(config.create().context("creating the output-topic consumer")?);
    Ok(tokio::spawn(run(settings, consumer, feed, metrics, shutdown)))
}

async fn run(
    settings: ConsumerSettings,
    consumer: Arc<StreamConsumer>,
    feed: LiveFeed,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let refresher = tokio::spawn(refresh_assignment(
        settings.clone(),
        consumer.clone(),
        shutdown.clone(),
    ));
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = consumer.recv() => m,
        };
        match message {
            Ok(m) => match decode_count(m.payload()) {
                Ok(record) => {
                    metrics.count_updates.inc();
                    feed.apply(record);
                }
                Err(why) => {
                    metrics.undecodable_records.inc();
                    tracing::debug!(topic = m.topic(), partition = m.partition(), offset = m.offset(), %why, "skipping output record");
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "reading the output topics");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    refresher.abort();
}

async fn refresh_assignment(
    settings: ConsumerSettings,
    consumer: Arc<StreamConsumer>,
    shutdown: CancellationToken,
) {
    let mut assigned: BTreeSet<(String, i32)> = BTreeSet::new();
    loop {
        let c = consumer.clone();
        let s = settings.clone();
        let known = assigned.clone();
        let result = tokio::task::spawn_blocking(move || assign_new_partitions(&c, &s, &known)).await;
        match result {
            Ok(Ok(added)) => {
                if !added.is_empty() {
                    tracing::info!(partitions = added.len(), "reading new output partitions");
                }
                assigned.extend(added);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "refreshing the output-topic partitions"),
            Err(e) => tracing::warn!(error = %e, "partition refresh task failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(settings.refresh_every) => {}
        }
    }
}

/// Assigns partitions of the output topics not assigned yet, starting at
/// `history` ago. Returns what it added.
fn assign_new_partitions(
    consumer: &StreamConsumer,
    settings: &ConsumerSettings,
    assigned: &BTreeSet<(String, i32)>,
) -> anyhow::Result<Vec<(String, i32)>> {
    let timeout = Duration::from_secs(5);
    let mut fresh = Vec::new();
    for topic in &settings.topics {
        let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
        for t in metadata.topics() {
            if t.error().is_some() {
                continue; // not created yet
            }
            for p in t.partitions() {
                let key = (t.name().to_owned(), p.id());
                if !assigned.contains(&key) {
                    fresh.push(key);
                }
            }
        }
    }
    if fresh.is_empty() {
        return Ok(fresh);
    }
    let since = crate::clock::now_ms() - settings.history.as_millis() as i64;
    let mut by_time = TopicPartitionList::new();
    for (topic, partition) in &fresh {
        by_time.add_partition_offset(topic, *partition, Offset::Offset(since))?;
    }
    let found = consumer.offsets_for_times(by_time, timeout)?;
    let mut start = TopicPartitionList::new();
    for element in found.elements() {
        // No record since `since`: start at the end and wait for new ones.
        let offset = match element.offset() {
            Offset::Offset(o) if o >= 0 => Offset::Offset(o),
            _ => Offset::End,
        };
        start.add_partition_offset(element.topic(), element.partition(), offset)?;
    }
    consumer.incremental_assign(&start)?;
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_worker_records_and_rejects_others() {
        let json = br#"{"type":"1min","video_uid":"v","count":4,"window_start":0,"window_end":60000}"#;
        let record = decode_count(Some(json)).unwrap();
        assert_eq!(record.count, 4);
        assert_eq!(record.window_type, "1min");
        assert!(decode_count(None).unwrap_err().contains("no value"));
        assert!(decode_count(Some(b"v1")).is_err());
        assert!(
            decode_count(Some(
                br#"{"type":"1min","video_uid":"v","count":-1,"window_start":0,"window_end":1}"#
            ))
            .is_err()
        );
    }
}
