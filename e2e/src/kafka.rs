//! Kafka helpers: admin operations and reading a topic to the end.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, TopicPartitionList};
use std::time::{Duration, Instant};

/// The broker's bootstrap address from `VIDEOCOUNTER_KAFKA_BOOTSTRAP`.
pub fn bootstrap() -> String {
    crate::required_env("VIDEOCOUNTER_KAFKA_BOOTSTRAP")
}

pub fn client_config() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap());
    c
}

pub fn admin() -> AdminClient<DefaultClientContext> {
    client_config().create().expect("admin client")
}

/// Creates a topic and waits until its metadata shows every partition.
pub async fn create_topic(name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin()
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create_topics request");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
    wait_for_partitions(name, partitions as usize, Duration::from_secs(30));
}

/// Waits until the topic's metadata lists `partitions` partitions with leaders.
pub fn wait_for_partitions(name: &str, partitions: usize, timeout: Duration) {
    let consumer: BaseConsumer = client_config().create().expect("consumer");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(md) = consumer.fetch_metadata(Some(name), Duration::from_secs(5))
            && let Some(t) = md.topics().first()
            && t.error().is_none()
            && t.partitions().len() == partitions
            && t.partitions().iter().all(|p| p.leader() >= 0)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "topic {name} did not get {partitions} partitions in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Number of partitions of a topic, from metadata.
pub fn partition_count(name: &str) -> usize {
    let consumer: BaseConsumer = client_config().create().expect("consumer");
    let md = consumer
        .fetch_metadata(Some(name), Duration::from_secs(10))
        .expect("metadata");
    md.topics().first().map(|t| t.partitions().len()).unwrap_or(0)
}

/// Isolation level for reading a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    ReadUncommitted,
}

/// A partition's watermarks, retried until `deadline`: just after a broker
/// (re)start its partitions have no leader for a while.
fn watermarks(consumer: &BaseConsumer, topic: &str, partition: i32, deadline: Instant) -> (i64, i64) {
    loop {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
            Ok(w) => return w,
            Err(e) if Instant::now() < deadline => {
                eprintln!("watermarks of {topic}[{partition}]: {e}; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("watermarks of {topic}[{partition}]: {e}"),
        }
    }
}

/// Reads every partition of `topic` from the beginning up to its current end
/// (the last stable offset under `ReadCommitted`), and returns the records.
pub fn read_to_end(topic: &str, isolation: Isolation, timeout: Duration) -> Vec<OwnedMessage> {
    let level = match isolation {
        Isolation::ReadCommitted => "read_committed",
        Isolation::ReadUncommitted => "read_uncommitted",
    };
    let consumer: BaseConsumer = client_config()
        .set("group.id", crate::unique_name("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", level)
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let deadline = Instant::now() + timeout;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let mut ends = std::collections::HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        // Under read_committed the high watermark query returns the last stable offset.
        let (low, high) = watermarks(&consumer, topic, *p, deadline);
        if high > low {
            ends.insert(*p, high);
            tpl.add_partition_offset(topic, *p, rdkafka::Offset::Beginning)
                .unwrap();
        }
    }
    if ends.is_empty() {
        return Vec::new();
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut done = std::collections::HashSet::new();
    while done.len() < ends.len() {
        assert!(
            Instant::now() < deadline,
            "reading {topic} to its end took longer than {timeout:?}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let p = m.partition();
                // Under read_committed, transaction markers occupy offsets too: the end is
                // reached when the position passes the last stable offset.
                if m.offset() + 1 >= ends[&p] {
                    done.insert(p);
                }
                out.push(m.detach());
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {
                for (p, end) in &ends {
                    if let Ok(pos) = consumer.position()
                        && let Some(el) = pos.find_partition(topic, *p)
                        && let rdkafka::Offset::Offset(o) = el.offset()
                        && o >= *end
                    {
                        done.insert(*p);
                    }
                }
            }
        }
    }
    out
}

/// Deletes every topic whose name `matches`, 100 per request. Returns how
/// many topics there were, and the names that could not be deleted with why.
pub async fn delete_topics_where(matches: impl Fn(&str) -> bool) -> (usize, usize, Vec<String>) {
    let consumer: BaseConsumer = client_config().create().expect("consumer");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("listing topics on {}: {e}", bootstrap()));
    let doomed: Vec<&str> = metadata
        .topics()
        .iter()
        .map(|t| t.name())
        .filter(|n| matches(n))
        .collect();
    let admin = admin();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    let mut failed = Vec::new();
    for names in doomed.chunks(100) {
        let results = admin
            .delete_topics(names, &options)
            .await
            .expect("delete_topics request");
        failed.extend(
            results
                .into_iter()
                .filter_map(|r| r.err().map(|(t, e)| format!("{t}: {e}"))),
        );
    }
    (metadata.topics().len(), doomed.len(), failed)
}

/// Deletes topic `name` and the topics named after it (`name-...`): a
/// benchmark's own, so runs do not pile up partitions the broker keeps serving.
pub async fn delete_topics_of(name: &str) {
    let prefix = format!("{name}-");
    let (_, _, failed) = delete_topics_where(|n| n == name || n.starts_with(&prefix)).await;
    assert!(failed.is_empty(), "deleting topics: {failed:?}");
}
