//! Steady like traffic into the input topic (from the host, event time =
//! now, as the gateway sends it), the counts it must produce, and the counts
//! the workers wrote (read_committed, the last record of each window).

use crate::support::Window;
use rdkafka::ClientContext;
use rdkafka::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use videocounter_e2e::kafka::{self, Isolation};

/// (window type, video id, window start) → count.
pub type Counts = BTreeMap<(String, String, i64), u64>;

/// Counts deliveries the broker refused: a like the test counts in its
/// truth must really be in the topic.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            eprintln!("like not delivered: {e}");
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Likes sent at a steady rate by a background thread until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Counts>,
}

/// What a load sent.
pub struct Sent {
    pub expected: Counts,
    pub likes: u64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

impl Load {
    /// `per_second` likes spread over `videos` ids, to `topic` (raw format:
    /// the value is the id, no key), each counted in every window.
    pub fn start(topic: &str, windows: &[Window], videos: usize, per_second: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (topic, windows) = (topic.to_string(), windows.to_vec());
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let producer: ThreadedProducer<Deliveries> = kafka::client_config()
                .set("enable.idempotence", "true")
                .set("linger.ms", "5")
                .create_with_context(Deliveries::default())
                .expect("producer");
            let mut expected = Counts::new();
            let tick = Duration::from_millis(20);
            let per_tick = (per_second / 50).max(1);
            let mut next = Instant::now();
            let mut n: u64 = 0;
            while !stop2.load(Ordering::Relaxed) {
                for _ in 0..per_tick {
                    // A fixed spread over the ids: every id gets likes in every window.
                    let video = format!("video-{}", (n * 7919) % videos as u64);
                    let ts = now_ms();
                    let mut record = BaseRecord::<(), [u8]>::to(&topic)
                        .payload(video.as_bytes())
                        .timestamp(ts);
                    loop {
                        match producer.send(record) {
                            Ok(()) => break,
                            Err((
                                rdkafka::error::KafkaError::MessageProduction(
                                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                                ),
                                r,
                            )) => {
                                record = r;
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            Err((e, _)) => panic!("producing a like: {e}"),
                        }
                    }
                    for w in &windows {
                        let start = ts - ts.rem_euclid(w.size_ms);
                        *expected
                            .entry((w.label.clone(), video.clone(), start))
                            .or_default() += 1;
                    }
                    n += 1;
                }
                next += tick;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            producer
                .flush(Duration::from_secs(60))
                .expect("flushing the likes");
            let failed = producer.context().failed.load(Ordering::Relaxed);
            assert_eq!(failed, 0, "{failed} likes were not delivered to {topic}");
            expected
        });
        Self { stop, handle }
    }

    /// Stops sending; every like sent is in the topic when this returns.
    pub fn stop(self) -> Sent {
        self.stop.store(true, Ordering::Relaxed);
        let expected = self.handle.join().expect("the load thread panicked");
        let likes = expected
            .iter()
            .filter(|((label, _, _), _)| label == "1min")
            .map(|(_, c)| c)
            .sum();
        Sent { expected, likes }
    }
}

/// The counts in the output topics: for each window the last record
/// (read_committed), as a downstream consumer sees them.
pub fn output_counts(windows: &[Window]) -> Counts {
    let mut counts = Counts::new();
    for w in windows {
        for m in kafka::read_to_end(&w.topic, Isolation::ReadCommitted, Duration::from_secs(60)) {
            let v: serde_json::Value =
                serde_json::from_slice(m.payload().expect("an output value")).expect("output JSON");
            assert_eq!(
                v["type"],
                w.label.as_str(),
                "a record of the wrong type in {}: {v}",
                w.topic
            );
            let video = v["video_uid"].as_str().expect("video_uid").to_string();
            assert_eq!(
                m.key(),
                Some(video.as_bytes()),
                "output key must be the video id: {v}"
            );
            counts.insert(
                (
                    w.label.clone(),
                    video,
                    v["window_start"].as_i64().expect("window_start"),
                ),
                v["count"].as_u64().expect("count"),
            );
        }
    }
    counts
}

/// Waits until the outputs hold exactly `expected`; fails at once when a
/// count goes past its expected value (counted twice), and after `timeout`
/// with every difference (lost, or not counted yet). `explain` adds context
/// to a failure (late likes, worker logs). Returns how long it waited.
pub fn assert_counts_exact(
    windows: &[Window],
    expected: &Counts,
    timeout: Duration,
    explain: impl Fn() -> String,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = output_counts(windows);
        let over: Vec<String> = expected
            .iter()
            .filter_map(|(k, want)| {
                let have = got.get(k).copied().unwrap_or(0);
                (have > *want).then(|| format!("{k:?}: {have} > {want}"))
            })
            .chain(
                got.keys()
                    .filter(|k| !expected.contains_key(*k))
                    .map(|k| format!("{k:?}: never sent")),
            )
            .collect();
        assert!(
            over.is_empty(),
            "likes counted twice ({} windows), e.g. {:?}\n{}",
            over.len(),
            &over[..over.len().min(5)],
            explain()
        );
        if &got == expected {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            let short: Vec<String> = expected
                .iter()
                .filter_map(|(k, want)| {
                    let have = got.get(k).copied().unwrap_or(0);
                    (have < *want).then(|| format!("{k:?}: {have} < {want}"))
                })
                .collect();
            let missing: u64 = expected
                .iter()
                .filter(|((label, _, _), _)| label == "1min")
                .map(|(k, want)| want - got.get(k).copied().unwrap_or(0).min(*want))
                .sum();
            panic!(
                "after {timeout:?} {} windows are short ({missing} likes missing from the 1-minute windows), e.g. {:?}\n{}",
                short.len(),
                &short[..short.len().min(5)],
                explain()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Whether the re-key stage doubled likes: the repartition topic carries the
/// likes of the records not counted where they were read (summed per video
/// and combining bucket), each once, so a 1-minute window whose committed
/// repartition records sum past the likes sent was re-keyed twice. Records
/// counted where they were read never reach it, so finding no such window
/// does not clear the re-key stage. One line per such window (at most 10),
/// with the repartition partition that holds it.
pub fn rekeyed_twice(repartition_topic: &str, windows: &[Window], expected: &Counts) -> String {
    let Some(minute) = windows.iter().find(|w| w.size_ms == 60_000) else {
        return "no 1-minute window to compare".into();
    };
    let mut sums: BTreeMap<(String, i64), (u64, i32)> = BTreeMap::new();
    for m in kafka::read_to_end(
        repartition_topic,
        Isolation::ReadCommitted,
        Duration::from_secs(60),
    ) {
        let (Some(key), Some(value)) = (m.key(), m.payload()) else {
            continue;
        };
        if value.len() != 17 {
            continue;
        }
        let count = u64::from_be_bytes(value[1..9].try_into().unwrap());
        let ts = i64::from_be_bytes(value[9..17].try_into().unwrap());
        let video = String::from_utf8_lossy(key).into_owned();
        let e = sums.entry((video, ts - ts.rem_euclid(60_000))).or_default();
        e.0 += count;
        e.1 = m.partition();
    }
    let lines: Vec<String> = expected
        .iter()
        .filter(|((label, _, _), _)| *label == minute.label)
        .filter_map(|((_, video, start), want)| {
            let (have, partition) = sums.get(&(video.clone(), *start)).copied().unwrap_or((0, -1));
            (have > *want)
                .then(|| format!("{video} @ {start}: repartition[{partition}] holds {have}, sent {want}"))
        })
        .collect();
    if lines.is_empty() {
        format!(
            "no 1-minute window of the repartition topic {repartition_topic} holds more likes than were sent"
        )
    } else {
        format!(
            "the repartition topic {repartition_topic} holds more likes than were sent in {} 1-minute windows (re-keyed twice):\n{}",
            lines.len(),
            lines[..lines.len().min(10)].join("\n")
        )
    }
}
