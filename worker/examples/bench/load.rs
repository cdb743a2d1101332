//! The benchmark's input: a topic pre-loaded with raw events, the rate of a
//! bare consumer reading it (the limit any consumer of the topic has), and a
//! steady live load.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant};
use videocounter_e2e::{kafka, unique_name};

use super::PARTITIONS;

pub fn producer(linger_ms: u32) -> ThreadedProducer<DefaultProducerContext> {
    let mut c: ClientConfig = kafka::client_config();
    c.set("linger.ms", linger_ms.to_string())
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576");
    c.create().expect("producer")
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Sends one raw event, waiting while the producer's queue is full.
pub fn send(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, id: &str, ts: i64) {
    let mut record = BaseRecord::<(), str>::to(topic).payload(id).timestamp(ts);
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((_, r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// A new input topic holding `n` raw events (`video-<id(i)>`), event times
/// spread evenly over `span_ms`; returns it with the producing rate.
pub async fn preloaded(n: u64, span_ms: i64, id: impl Fn(u64) -> u64) -> (String, f64) {
    let topic = unique_name("bench-input");
    kafka::create_topic(&topic, PARTITIONS, &[("retention.ms", "-1")]).await;
    let p = producer(50);
    // Event times end an hour ago at the latest, so the broker's retention keeps the records.
    let now = now_ms();
    let base_ts = now - now % 600_000 - 3_600_000 - span_ms;
    let started = Instant::now();
    let mut value = String::new();
    for i in 0..n {
        value.clear();
        use std::fmt::Write;
        write!(value, "video-{}", id(i)).unwrap();
        send(&p, &topic, &value, base_ts + (i as i64 * span_ms) / n as i64);
    }
    p.flush(Duration::from_secs(120)).expect("flush");
    (topic, n as f64 / started.elapsed().as_secs_f64())
}

/// Reads the whole topic with a bare consumer (`read_committed`, as the
/// worker); events per second and CPU microseconds per event of this process.
pub fn raw_consume(topic: &str, n: u64) -> (f64, f64) {
    let consumer: BaseConsumer = kafka::client_config()
        // Needed to assign partitions; this consumer never joins the group.
        .set("group.id", unique_name("bench-raw"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let cpu_before = own_cpu_seconds();
    let started = Instant::now();
    let (mut seen, mut bytes) = (0u64, 0usize);
    while seen < n {
        match consumer.poll(Duration::from_secs(5)) {
            Some(Ok(m)) => {
                bytes += m.payload().map_or(0, <[u8]>::len);
                seen += 1;
            }
            Some(Err(e)) => panic!("raw consumer: {e}"),
            None => panic!("raw consumer stalled at {seen} of {n}"),
        }
    }
    std::hint::black_box(bytes);
    let rate = n as f64 / started.elapsed().as_secs_f64();
    (rate, (own_cpu_seconds() - cpu_before) * 1e6 / n as f64)
}

fn own_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
