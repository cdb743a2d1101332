//! Test harness: worker processes (the real binary) against the real broker,
//! event producers with known ground truth, and readers of the outputs.
#![allow(dead_code)]

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use videocounter_e2e::kafka::{self, Isolation};
use videocounter_e2e::unique_name;

/// Event times start two hours ago, on a 10-minute boundary: recent enough
/// that the broker's time-based retention never deletes test records.
pub static BASE_TS: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    now - now % 600_000 - 7_200_000
});

/// One window size of a test deployment.
#[derive(Clone, Debug)]
pub struct TestWindow {
    pub size: &'static str,
    pub size_ms: i64,
    pub label: &'static str,
    pub output_topic: String,
}

/// A deployment under test: unique application id and topics.
#[derive(Clone, Debug)]
pub struct TestApp {
    pub app: String,
    pub input: String,
    pub input_format: &'static str,
    pub partitions: u32,
    pub windows: Vec<TestWindow>,
    pub grace: &'static str,
    pub retention: &'static str,
    pub emit: &'static str,
    pub commit_interval: &'static str,
    /// Configuration, data directories and logs; kept after a failed test.
    pub dir: PathBuf,
}

impl TestApp {
    /// Windows of 1, 5 and 10 minutes, a grace long enough that no test event is late.
    pub fn new(prefix: &str) -> Self {
        let app = unique_name(prefix);
        let dir = std::env::temp_dir().join("videocounter-worker-tests").join(&app);
        std::fs::create_dir_all(&dir).expect("test directory");
        let windows = [
            ("1m", 60_000, "1min"),
            ("5m", 300_000, "5min"),
            ("10m", 600_000, "10min"),
        ]
        .into_iter()
        .map(|(size, size_ms, label)| TestWindow {
            size,
            size_ms,
            label,
            output_topic: format!("{app}-out-{size}"),
        })
        .collect();
        Self {
            input: format!("{app}-input"),
            app,
            input_format: "raw",
            partitions: 4,
            windows,
            grace: "1h",
            retention: "30m",
            emit: "onUpdate",
            commit_interval: "100ms",
            dir,
        }
    }

    /// Deletes the test directory (call at the end of a passing test), unless
    /// `VIDEOCOUNTER_KEEP_TEST_DIRS` is set.
    pub fn cleanup(&self) {
        if std::env::var_os("VIDEOCOUNTER_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub fn dead_letter_topic(&self) -> String {
        format!("{}-dead-letter", self.app)
    }

    pub fn repartition_topic(&self) -> String {
        format!("{}-repartition", self.app)
    }

    pub fn changelog_topic(&self) -> String {
        format!("{}-counts-changelog", self.app)
    }

    pub fn config_yaml(&self) -> String {
        let mut y = format!(
            "applicationId: {}\nkafka:\n  bootstrapServers: {}\ntopics:\n  input: {}\n  inputFormat: {}\n  partitions: {}\n\
             grace: {}\nretention: {}\nemit: {}\ncommitInterval: {}\nwindows:\n",
            self.app,
            kafka::bootstrap(),
            self.input,
            self.input_format,
            self.partitions,
            self.grace,
            self.retention,
            self.emit,
            self.commit_interval
        );
        for w in &self.windows {
            y.push_str(&format!(
                "  - size: {}\n    outputTopic: {}\n",
                w.size, w.output_topic
            ));
        }
        y
    }

    pub async fn create_input(&self, partitions: i32) {
        kafka::create_topic(&self.input, partitions, &[("retention.ms", "-1")]).await;
    }

    /// A worker of this deployment, started and ready (its partitions restored).
    pub fn ready_worker(&self, instance: &str) -> WorkerProcess {
        let mut w = self.worker(instance);
        w.start();
        w.wait_ready(Duration::from_secs(60));
        w
    }

    /// A worker process of this deployment (not started).
    pub fn worker(&self, instance: &str) -> WorkerProcess {
        let config = self.dir.join("worker.yaml");
        std::fs::write(&config, self.config_yaml()).expect("writing the config");
        WorkerProcess {
            instance_id: instance.to_string(),
            config,
            data_dir: self.dir.join(format!("data-{instance}")),
            log: self.dir.join(format!("{instance}.log")),
            port: free_port(),
            extra_args: vec![
                "--session-timeout".into(),
                "6s".into(),
                "--group-protocol".into(),
                std::env::var("VIDEOCOUNTER_TEST_GROUP_PROTOCOL").unwrap_or_else(|_| "classic".into()),
            ],
            child: None,
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The real `videocounter-worker` binary as a child process.
pub struct WorkerProcess {
    pub instance_id: String,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub port: u16,
    pub extra_args: Vec<String>,
    child: Option<Child>,
}

impl WorkerProcess {
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.instance_id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        // VIDEOCOUNTER_WORKER_BIN runs another build (for example an older
        // version, to reproduce a bug) under the same test.
        let binary = std::env::var("VIDEOCOUNTER_WORKER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_videocounter-worker").to_owned());
        let child = Command::new(binary)
            .arg("--config")
            .arg(&self.config)
            .arg("--instance-id")
            .arg(&self.instance_id)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.extra_args)
            .env("RUST_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting videocounter-worker");
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGKILL: no chance to commit, flush or close anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `signal` (e.g. "TERM", "USR1") with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill(1)");
        assert!(status.success());
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.signal("TERM");
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{} did not exit within {timeout:?} of SIGTERM\n{}",
                    self.instance_id,
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str) -> Option<(u16, serde_json::Value)> {
        http_get(self.port, path).map(|(code, body)| {
            (
                code,
                serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
            )
        })
    }

    pub fn get_text(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path)
    }

    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((200, _)) = self.get("/readyz") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready within {timeout:?}: {:?}\n{}",
                self.instance_id,
                self.get("/readyz"),
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        format!(
            "--- last {lines} log lines of {} ---\n{}",
            self.instance_id,
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal HTTP/1.0 GET: `(status, body)`, or None when nothing listens.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// One like event with its event time.
#[derive(Clone, Debug)]
pub struct Event {
    pub video_id: String,
    pub ts: i64,
}

/// `n` events over `ids` videos, event times spread evenly over `span_ms` from BASE_TS.
pub fn events(n: usize, ids: usize, span_ms: i64, seed: u64) -> Vec<Event> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| Event {
            video_id: format!("video-{}", rng.random_range(0..ids)),
            ts: *BASE_TS + (i as i64 * span_ms) / n as i64,
        })
        .collect()
}

pub type Truth = BTreeMap<(String, String, i64), u64>;

/// Expected final count of every (window type, video, window start).
pub fn ground_truth(app: &TestApp, events: &[Event]) -> Truth {
    let mut t = Truth::new();
    for e in events {
        for w in &app.windows {
            let start = e.ts - e.ts.rem_euclid(w.size_ms);
            *t.entry((w.label.to_string(), e.video_id.clone(), start))
                .or_default() += 1;
        }
    }
    t
}

pub fn producer() -> ThreadedProducer<DefaultProducerContext> {
    let mut c: ClientConfig = kafka::client_config();
    c.set("linger.ms", "5").set("compression.type", "lz4");
    c.create().expect("producer")
}

/// Produces raw-format events (value = id, no key, record timestamp = event time).
pub fn produce_raw(topic: &str, events: &[Event]) {
    let p = producer();
    for e in events {
        send(
            &p,
            BaseRecord::<(), [u8]>::to(topic)
                .payload(e.video_id.as_bytes())
                .timestamp(e.ts),
        );
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

pub fn send<K: rdkafka::message::ToBytes + ?Sized, P: rdkafka::message::ToBytes + ?Sized>(
    p: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'_, K, P>,
) {
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((
                rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                r,
            )) => {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => panic!("produce: {e}"),
        }
    }
}

/// Waits until the group has committed everything: every partition of the
/// input and repartition topics committed at its high watermark.
pub fn wait_caught_up(app: &TestApp, timeout: Duration, workers: &[&WorkerProcess]) {
    let group: BaseConsumer = kafka::client_config()
        .set("group.id", &app.app)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let plain: BaseConsumer = kafka::client_config()
        .set("isolation.level", "read_uncommitted")
        .create()
        .expect("consumer");
    let deadline = Instant::now() + timeout;
    loop {
        let last = match lagging_partitions(&group, &plain, &[&app.input, &app.repartition_topic()]) {
            Ok(lagging) if lagging.is_empty() => return,
            Ok(lagging) => lagging.join(", "),
            Err(e) => e,
        };
        if Instant::now() > deadline {
            let logs: Vec<String> = workers.iter().map(|w| w.log_tail(30)).collect();
            panic!("not caught up within {timeout:?}: {last}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn lagging_partitions(
    group: &BaseConsumer,
    plain: &BaseConsumer,
    topics: &[&str],
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for topic in topics {
        let md = plain
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
        let mut tpl = TopicPartitionList::new();
        for p in &parts {
            tpl.add_partition(topic, *p);
        }
        let committed = group
            .committed_offsets(tpl, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        for p in parts {
            let (low, high) = plain
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            let at = match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => low,
            };
            if at < high {
                out.push(format!("{topic}[{p}] committed {at} < end {high}"));
            }
        }
    }
    Ok(out)
}

/// The output records of every window size (read_committed), in order.
pub fn read_outputs(app: &TestApp) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for w in &app.windows {
        for m in kafka::read_to_end(&w.output_topic, Isolation::ReadCommitted, Duration::from_secs(60)) {
            let v: serde_json::Value =
                serde_json::from_slice(m.payload().expect("output value")).expect("output JSON");
            assert_eq!(
                v["type"], w.label,
                "record in {} has the wrong type",
                w.output_topic
            );
            assert_eq!(
                m.key(),
                Some(v["video_uid"].as_str().unwrap().as_bytes()),
                "output key must be the video id"
            );
            out.push(v);
        }
    }
    out
}

/// onUpdate: the last record per window is its final count.
pub fn final_counts(records: &[serde_json::Value]) -> Truth {
    let mut t = Truth::new();
    for v in records {
        t.insert(
            (
                v["type"].as_str().unwrap().to_string(),
                v["video_uid"].as_str().unwrap().to_string(),
                v["window_start"].as_i64().unwrap(),
            ),
            v["count"].as_u64().unwrap(),
        );
    }
    t
}

/// Compares two count maps and describes the first differences.
pub fn assert_counts_equal(got: &Truth, want: &Truth) {
    if got == want {
        return;
    }
    let mut diffs = Vec::new();
    for (k, w) in want {
        match got.get(k) {
            Some(g) if g == w => {}
            g => diffs.push(format!("{k:?}: got {g:?}, want {w}")),
        }
    }
    for (k, g) in got {
        if !want.contains_key(k) {
            diffs.push(format!("{k:?}: got {g}, want nothing"));
        }
    }
    let total_got: u64 = got.values().sum();
    let total_want: u64 = want.values().sum();
    panic!(
        "{} windows differ (total got {total_got}, want {total_want}); first ones:\n{}",
        diffs.len(),
        diffs.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

pub fn remove_dir(path: &Path) {
    if path.exists() {
        std::fs::remove_dir_all(path).expect("removing directory");
    }
}
