//! Event -> output latency under a steady load: a running worker receives
//! raw events at a fixed rate (now-stamped, over `ids` videos), and every
//! 20 ms a probe event of a video seen only once; the time from sending a
//! probe until its first count is readable (`read_committed`) in the 1-minute
//! output topic is its latency.

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use videocounter_e2e::{kafka, unique_name};

use super::PARTITIONS;
use super::load::{now_ms, producer, send};
use super::worker::{WorkerProcess, configure_app, scratch};

pub struct Latency {
    pub rate: f64,
    pub probes: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub cpu_us_per_event: f64,
    pub rss_mib: u64,
    /// Median time until the re-keyed record is readable: the first stage.
    pub rekeyed_p50_ms: f64,
}

pub async fn measure(rate: f64, seconds: u64, ids: u64, commit_interval: &str) -> Latency {
    let app = unique_name("bench-latency");
    let input = format!("{app}-input");
    kafka::create_topic(&input, PARTITIONS, &[]).await;
    let dir = scratch();
    let config = configure_app(dir.path(), &app, &input, commit_interval).await;
    let worker = WorkerProcess::spawn(&config, "latency-0", &dir.path().join("data"), &[]);
    let up = Instant::now();
    while !worker.ready() {
        assert!(up.elapsed() < Duration::from_secs(60), "latency worker not ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The 1-minute output, read from its current end.
    let output = format!("{app}-out-1");
    let reader: BaseConsumer = kafka::client_config()
        .set("group.id", unique_name("bench-latency-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(&output, p, Offset::End).unwrap();
        // The re-keyed records too: the first stage's share of the latency.
        tpl.add_partition_offset(&format!("{app}-repartition"), p, Offset::End)
            .unwrap();
    }
    reader.assign(&tpl).unwrap();

    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let load = {
        let (sent, done, input) = (sent.clone(), done.clone(), input.clone());
        std::thread::spawn(move || {
            // linger.ms 5: the default of librdkafka and of the Java client since Kafka 4.0.
            let p = producer(5);
            let started = Instant::now();
            let (mut events, mut probes) = (0u64, 0u64);
            while !done.load(Ordering::Relaxed) {
                let elapsed = started.elapsed().as_secs_f64();
                while (events as f64) < elapsed * rate {
                    send(&p, &input, &format!("video-{}", events % ids), now_ms());
                    events += 1;
                }
                while (probes as f64) < elapsed * 50.0 {
                    let id = format!("probe-{probes}");
                    sent.lock().unwrap().insert(id.clone(), Instant::now());
                    send(&p, &input, &id, now_ms());
                    probes += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = p.flush(Duration::from_secs(10));
        })
    };

    let cpu_before = worker.cpu_seconds();
    let mut latencies = Vec::new();
    let mut rekeyed = Vec::new();
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(5)) {
            let seen = Instant::now();
            let Some(id) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                continue;
            };
            if m.topic() != output {
                if let Some(at) = sent.lock().unwrap().get(id) {
                    rekeyed.push(seen.duration_since(*at).as_secs_f64() * 1000.0);
                }
            } else if let Some(at) = sent.lock().unwrap().remove(id) {
                latencies.push(seen.duration_since(at).as_secs_f64() * 1000.0);
            }
        }
    }
    rekeyed.sort_by(|a, b| a.total_cmp(b));
    let rekeyed_p50 = rekeyed.get(rekeyed.len() / 2).copied().unwrap_or(f64::NAN);
    let cpu = worker.cpu_seconds() - cpu_before;
    done.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let rss_mib = worker.vm_hwm_kib() / 1024;
    worker.stop();
    // Probes still in flight at the end are not counted; the first second is warm-up.
    latencies.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    assert!(!latencies.is_empty(), "no probe came out of the worker");
    Latency {
        rate,
        probes: latencies.len(),
        p50_ms: at(0.50),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        max_ms: *latencies.last().unwrap(),
        cpu_us_per_event: cpu * 1e6 / (rate * seconds as f64),
        rss_mib,
        rekeyed_p50_ms: rekeyed_p50,
    }
}
