//! The test ground's Kafka is a real broker: partitions, round trips and
//! transactions with read_committed consumers.

use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::collections::BTreeMap;
use std::time::Duration;
use videocounter_e2e::kafka::{self, Isolation};
use videocounter_e2e::unique_name;

fn producer(extra: &[(&str, &str)]) -> ThreadedProducer<DefaultProducerContext> {
    let mut c: ClientConfig = kafka::client_config();
    c.set("linger.ms", "5");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

#[tokio::test]
async fn records_round_trip_across_partitions() {
    let topic = unique_name("smoke-roundtrip");
    kafka::create_topic(&topic, 4, &[]).await;
    assert_eq!(kafka::partition_count(&topic), 4);

    let p = producer(&[]);
    for i in 0..400 {
        let key = format!("k{}", i % 20);
        let value = format!("v{i}");
        p.send(BaseRecord::to(&topic).key(&key).payload(&value))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    p.flush(Duration::from_secs(10)).unwrap();

    let got = kafka::read_to_end(&topic, Isolation::ReadUncommitted, Duration::from_secs(30));
    assert_eq!(got.len(), 400);
    // Same key, same partition; and the keys spread over more than one partition.
    let mut partition_of: BTreeMap<Vec<u8>, i32> = BTreeMap::new();
    for m in &got {
        let prev = partition_of.insert(m.key().unwrap().to_vec(), m.partition());
        assert!(prev.is_none() || prev == Some(m.partition()));
    }
    let used: std::collections::BTreeSet<_> = partition_of.values().collect();
    assert!(used.len() > 1, "20 keys all landed in one partition");
    let mut values: Vec<_> = got
        .iter()
        .map(|m| String::from_utf8(m.payload().unwrap().to_vec()).unwrap())
        .collect();
    values.sort();
    let mut want: Vec<_> = (0..400).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(values, want);
}

#[tokio::test]
async fn read_committed_sees_exactly_the_committed_transactions() {
    let topic = unique_name("smoke-txn");
    kafka::create_topic(&topic, 3, &[]).await;
    let txn_id = unique_name("smoke-txn-producer");
    let p = producer(&[("transactional.id", txn_id.as_str())]);
    p.init_transactions(Duration::from_secs(30))
        .expect("init_transactions");

    let send = |prefix: &str, n: usize| {
        for i in 0..n {
            let v = format!("{prefix}-{i}");
            p.send(BaseRecord::<(), _>::to(&topic).payload(&v))
                .map_err(|(e, _)| e)
                .unwrap();
        }
    };
    p.begin_transaction().unwrap();
    send("committed-a", 50);
    p.commit_transaction(Duration::from_secs(30)).unwrap();

    p.begin_transaction().unwrap();
    send("aborted", 30);
    p.flush(Duration::from_secs(10)).unwrap();
    p.abort_transaction(Duration::from_secs(30)).unwrap();

    p.begin_transaction().unwrap();
    send("committed-b", 20);
    p.commit_transaction(Duration::from_secs(30)).unwrap();

    let committed = kafka::read_to_end(&topic, Isolation::ReadCommitted, Duration::from_secs(30));
    let values: Vec<String> = committed
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap()).into())
        .collect();
    assert_eq!(values.len(), 70, "{values:?}");
    assert!(values.iter().all(|v| v.starts_with("committed-")));
    assert_eq!(values.iter().filter(|v| v.starts_with("committed-a")).count(), 50);

    // The aborted records are in the log; read_uncommitted shows them.
    let all = kafka::read_to_end(&topic, Isolation::ReadUncommitted, Duration::from_secs(30));
    let aborted = all
        .iter()
        .filter(|m| m.payload().unwrap().starts_with(b"aborted"))
        .count();
    assert_eq!(aborted, 30);
}
