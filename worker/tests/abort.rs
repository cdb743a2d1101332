//! Aborting a transaction against the real broker. A commit that fails in a
//! rebalance (a stale generation) is aborted with the records of the
//! transaction often still queued; librdkafka's abort waits for every one of
//! their delivery reports, which only a poll serves. The abort must end in
//! moments, not at its time-out with the session's rebalance stuck behind it,
//! and the next transaction must go through without the aborted records.

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};
use videocounter_e2e::{kafka, unique_name};
use videocounter_worker::commit::sink::{Record, Sink};

const QUEUED: usize = 50_000;

#[tokio::test]
async fn an_abort_with_records_still_queued_ends_at_once_and_the_next_transaction_commits() {
    let topic = unique_name("abort");
    kafka::create_topic(&topic, 3, &[]).await;
    let mut config = kafka::client_config();
    config
        .set("transactional.id", unique_name("abort-txn"))
        .set("enable.idempotence", "true")
        // Records linger in the queue: the abort finds them there.
        .set("linger.ms", "2000")
        .set("queue.buffering.max.messages", "1000000");
    let mut sink = Sink::new(&config, true, "no-changelog").expect("producer");
    sink.init().expect("init_transactions");

    sink.begin().expect("begin");
    for i in 0..QUEUED {
        let value = format!("aborted-{i}");
        sink.send(record(&topic, &value)).expect("send");
    }
    assert!(sink.queued() > 0, "the records should still be queued");
    let started = Instant::now();
    sink.abort().expect("abort with records queued");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "aborting with {QUEUED} records queued took {took:?}"
    );

    sink.begin().expect("begin after the abort");
    for i in 0..10 {
        sink.send(record(&topic, &format!("committed-{i}")))
            .expect("send");
    }
    sink.commit_transaction_with(&TopicPartitionList::new(), None)
        .expect("the next transaction commits");

    let mut seen = read_committed(&topic);
    seen.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("committed-{i}")).collect();
    want.sort();
    assert_eq!(
        seen, want,
        "read_committed sees exactly the committed transaction"
    );
}

fn record<'a>(topic: &'a str, value: &'a str) -> Record<'a> {
    Record {
        topic,
        partition: None,
        key: None,
        value: Some(value.as_bytes()),
        timestamp: None,
        headers: None,
    }
}

/// Every value a read_committed consumer sees in `topic`, up to its end.
fn read_committed(topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = kafka::client_config()
        .set("group.id", unique_name("abort-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut quiet_since = Instant::now();
    // The 10 committed records arrive quickly; a few quiet seconds after
    // them show that nothing else (no aborted record) is readable.
    while Instant::now() < deadline && quiet_since.elapsed() < Duration::from_secs(3) {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            quiet_since = Instant::now();
        }
    }
    values
}
