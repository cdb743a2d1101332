//! Event -> output latency under a steady load: running workers receive
//! raw events at a fixed rate (now-stamped, over `ids` videos), and every
//! 20 ms a probe event of a video seen only once; the time from sending a
//! probe until its first count is readable (`read_committed`) in the 1-minute
//! output topic is its latency. Probes sent during the first `warmup`
//! seconds are not counted: a fresh worker starts behind (its first
//! transactions fetch topic metadata and register partitions while the load
//! already runs), and the figures are of the steady state.
//!
//! A worker counts the records of its own counting partitions in the
//! transaction that reads them; the others go through the repartition topic
//! to the worker that counts them, one transaction later. With one worker
//! every probe takes the first path; with two about half take each, and
//! the probes seen on the repartition topic give that path's figures.

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
    pub warmup_s: u64,
    pub probes: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub cpu_us_per_event: f64,
    pub rss_mib: u64,
    /// The probes that went through the repartition topic (another
    /// worker's partition): how many, and their latency p50 and p99.
    pub via_repartition: (usize, f64, f64),
}

/// Waits until the workers share every input and counting partition, the
/// counting ones active, and the assignment held for a second; describes it.
fn settled_assignment(workers: &[WorkerProcess]) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    let mut since = Instant::now();
    loop {
        let views: Vec<serde_json::Value> = workers
            .iter()
            .map(|w| serde_json::from_str(&w.get("/v1/partitions")).unwrap_or_default())
            .collect();
        let list =
            |v: &serde_json::Value, f: &dyn Fn(&serde_json::Value) -> Option<i64>, key: &str| -> Vec<i64> {
                v[key]
                    .as_array()
                    .map(|a| a.iter().filter_map(f).collect())
                    .unwrap_or_default()
            };
        let described: Vec<String> = views
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let inputs = list(v, &|p| p.as_i64(), "input_partitions");
                let active = list(
                    v,
                    &|p| {
                        (p["state"] == "active")
                            .then(|| p["partition"].as_i64())
                            .flatten()
                    },
                    "partitions",
                );
                format!("worker {i}: input {inputs:?}, counting {active:?}")
            })
            .collect();
        let count = |key: &str, f: &dyn Fn(&serde_json::Value) -> bool| -> usize {
            views
                .iter()
                .map(|v| v[key].as_array().map_or(0, |a| a.iter().filter(|p| f(p)).count()))
                .sum()
        };
        let complete = count("input_partitions", &|_| true) == PARTITIONS as usize
            && count("partitions", &|p| p["state"] == "active") == PARTITIONS as usize;
        let now = described.join("; ");
        if now != last {
            (last, since) = (now, Instant::now());
        } else if complete && since.elapsed() >= Duration::from_secs(1) {
            return last;
        }
        assert!(Instant::now() < deadline, "the group did not settle: {last}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

pub async fn measure(
    rate: f64,
    (warmup, seconds): (u64, u64),
    ids: u64,
    commit_interval: &str,
    workers: usize,
) -> Latency {
    let app = unique_name("bench-latency");
    let input = format!("{app}-input");
    kafka::create_topic(&input, PARTITIONS, &[]).await;
    let dir = scratch();
    let config = configure_app(dir.path(), &app, &input, commit_interval).await;
    let workers: Vec<WorkerProcess> = (0..workers)
        .map(|i| {
            let data = dir.path().join(format!("data-{i}"));
            WorkerProcess::spawn(&config, &format!("latency-{i}"), &data, &[])
        })
        .collect();
    let up = Instant::now();
    while !workers.iter().all(|w| w.ready()) {
        assert!(
            up.elapsed() < Duration::from_secs(60),
            "latency workers not ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    if workers.len() > 1 {
        println!("assignment: {}", settled_assignment(&workers));
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

    let cpu = |ws: &[WorkerProcess]| ws.iter().map(|w| w.cpu_seconds()).sum::<f64>();
    let mut cpu_before = None;
    let mut latencies = Vec::new();
    let mut via_repartition = Vec::new();
    let mut rekeyed = std::collections::HashSet::new();
    let measure_from = Instant::now() + Duration::from_secs(warmup);
    let until = measure_from + Duration::from_secs(seconds);
    while Instant::now() < until {
        if cpu_before.is_none() && Instant::now() >= measure_from {
            cpu_before = Some(cpu(&workers));
        }
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(5)) {
            let seen = Instant::now();
            let Some(id) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                continue;
            };
            if m.topic() != output {
                if id.starts_with("probe-") {
                    rekeyed.insert(id.to_owned());
                }
            } else if let Some(at) = sent.lock().unwrap().remove(id)
                && at >= measure_from
            {
                let ms = seen.duration_since(at).as_secs_f64() * 1000.0;
                latencies.push(ms);
                if rekeyed.remove(id) {
                    via_repartition.push(ms);
                }
            }
        }
    }
    let cpu = cpu(&workers) - cpu_before.unwrap_or_default();
    done.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let rss_mib = workers.iter().map(|w| w.vm_hwm_kib()).max().unwrap_or(0) / 1024;
    for w in workers {
        w.stop();
    }
    kafka::delete_topics_of(&app).await;
    // Probes still in flight at the end are not counted.
    latencies.sort_by(|a, b| a.total_cmp(b));
    via_repartition.sort_by(|a, b| a.total_cmp(b));
    assert!(!latencies.is_empty(), "no probe came out of the workers");
    Latency {
        rate,
        warmup_s: warmup,
        probes: latencies.len(),
        p50_ms: percentile(&latencies, 0.50),
        p95_ms: percentile(&latencies, 0.95),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: *latencies.last().unwrap(),
        cpu_us_per_event: cpu * 1e6 / (rate * seconds as f64),
        rss_mib,
        via_repartition: (
            via_repartition.len(),
            percentile(&via_repartition, 0.50),
            percentile(&via_repartition, 0.99),
        ),
    }
}
