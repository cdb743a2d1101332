//! `make bench`: throughput of the worker against a bare consumer of the
//! same topic, and the worker's peak memory with a million distinct ids.
//!
//! 1. Pre-loads N raw-format events (default 5,000,000 over 10,000 videos,
//!    event times spread over ten minutes, `--span-ms`) into a fresh input topic.
//! 2. Raw rate: a bare rdkafka consumer reads the whole topic.
//! 3. Worker rate: a fresh worker (exactly-once, windows 1/5/10 min) runs from
//!    process start until the group has committed the whole input and the
//!    whole repartition topic (the last commit).
//! 4. Peak RSS: another worker counts 2,000,000 events over 1,000,000
//!    distinct ids; VmHWM of the process at its last commit.
//! 5. Group membership under both group protocols (see `membership.rs`).
//!
//! Flags: `--events N --ids N --rss-events N --rss-ids N --span-ms MS
//! --commit-interval D`, and `--only-rss` or `--only-membership` for one part.
//! Needs the test ground's Kafka (`VIDEOCOUNTER_KAFKA_BOOTSTRAP`).

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use videocounter_e2e::kafka;
use videocounter_e2e::unique_name;

mod membership;

const PARTITIONS: i32 = 6;

struct Args {
    events: u64,
    ids: u64,
    rss_events: u64,
    rss_ids: u64,
    span_ms: i64,
    commit_interval: String,
    only_rss: bool,
    only_membership: bool,
}

fn args() -> Args {
    let mut a = Args {
        events: 5_000_000,
        ids: 10_000,
        rss_events: 2_000_000,
        rss_ids: 1_000_000,
        span_ms: 600_000,
        commit_interval: "1s".into(),
        only_rss: false,
        only_membership: false,
    };
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = argv.iter().position(|a| a == "--only-rss") {
        argv.remove(i);
        a.only_rss = true;
    }
    if let Some(i) = argv.iter().position(|a| a == "--only-membership") {
        argv.remove(i);
        a.only_membership = true;
    }
    for pair in argv.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--events" => a.events = value.parse().expect("--events N"),
            "--ids" => a.ids = value.parse().expect("--ids N"),
            "--rss-events" => a.rss_events = value.parse().expect("--rss-events N"),
            "--rss-ids" => a.rss_ids = value.parse().expect("--rss-ids N"),
            "--commit-interval" => a.commit_interval = value,
            "--span-ms" => a.span_ms = value.parse().expect("--span-ms N"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.events >= 1 && a.ids >= 1 && a.rss_ids >= 1);
    a
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    println!("# videocounter worker benchmark");
    println!(
        "broker {}, {} partitions, commit interval {}",
        kafka::bootstrap(),
        PARTITIONS,
        a.commit_interval
    );
    if a.only_membership {
        membership::run().await;
        return;
    }
    let throughput = if a.only_rss {
        None
    } else {
        Some(throughput(&a).await)
    };

    let rss_topic = unique_name("bench-rss-input");
    kafka::create_topic(&rss_topic, PARTITIONS, &[("retention.ms", "-1")]).await;
    let ids = a.rss_ids;
    // Each id appears rss_events/rss_ids times, spread over the whole span.
    preload(&rss_topic, a.rss_events, a.span_ms, |i| (i * 7_919) % ids);
    let rss = run_worker(&rss_topic, a.rss_events, &a.commit_interval).await;
    println!(
        "peak RSS with {} distinct ids ({} events): {} MiB (worker rate {:.0} events/s)",
        a.rss_ids,
        a.rss_events,
        rss.peak_rss_kib / 1024,
        rss.rate
    );
    if let Some((raw, worker)) = throughput {
        println!(
            "SUMMARY raw={:.0}/s worker={:.0}/s ratio={:.2} peak_rss_{}_ids={}MiB",
            raw,
            worker,
            worker / raw,
            a.rss_ids,
            rss.peak_rss_kib / 1024
        );
    }
    membership::run().await;
}

/// Raw consumer rate and worker rate on the same pre-loaded topic.
async fn throughput(a: &Args) -> (f64, f64) {
    let topic = unique_name("bench-input");
    kafka::create_topic(&topic, PARTITIONS, &[("retention.ms", "-1")]).await;
    let rate = preload(&topic, a.events, a.span_ms, |i| i % a.ids);
    println!(
        "pre-load: {} events over {} ids, event times over {}s, at {:.0} events/s",
        a.events,
        a.ids,
        a.span_ms / 1000,
        rate
    );

    let raw = raw_consume(&topic, a.events);
    println!("raw consume (bare rdkafka BaseConsumer): {:.0} events/s", raw);

    let run = run_worker(&topic, a.events, &a.commit_interval).await;
    println!(
        "worker end-to-end (exactly-once, 3 windows): {:.0} events/s ({:.2}s from process start to last commit, \
         {} repartition records = {:.1} events per record), peak RSS {} MiB",
        run.rate,
        run.seconds,
        run.repartition_records,
        a.events as f64 / run.repartition_records.max(1) as f64,
        run.peak_rss_kib / 1024
    );
    println!("ratio worker/raw: {:.2} (goal >= 0.50)", run.rate / raw);
    for line in &run.metrics {
        println!("  {line}");
    }
    (raw, run.rate)
}

fn producer() -> ThreadedProducer<DefaultProducerContext> {
    let mut c: ClientConfig = kafka::client_config();
    c.set("linger.ms", "50")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576");
    c.create().expect("producer")
}

/// Produces `n` raw events (`video-<id(i)>`), event times spread evenly over `span_ms`.
fn preload(topic: &str, n: u64, span_ms: i64, id: impl Fn(u64) -> u64) -> f64 {
    let p = producer();
    // Event times end an hour ago at the latest, so the broker's retention keeps the records.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base_ts = now - now % 600_000 - 3_600_000 - span_ms;
    let started = Instant::now();
    let mut value = String::new();
    for i in 0..n {
        value.clear();
        use std::fmt::Write;
        write!(value, "video-{}", id(i)).unwrap();
        let ts = base_ts + (i as i64 * span_ms) / n as i64;
        let mut record = BaseRecord::<(), str>::to(topic)
            .payload(value.as_str())
            .timestamp(ts);
        loop {
            match p.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).expect("flush");
    n as f64 / started.elapsed().as_secs_f64()
}

/// Reads the whole topic with a bare consumer; events per second.
fn raw_consume(topic: &str, n: u64) -> f64 {
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
    n as f64 / started.elapsed().as_secs_f64()
}

struct Run {
    rate: f64,
    seconds: f64,
    peak_rss_kib: u64,
    repartition_records: i64,
    /// Selected lines of the worker's /metrics at the end.
    metrics: Vec<String>,
}

fn worker_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("videocounter-worker");
    assert!(
        bin.exists(),
        "{} missing: build it with cargo build --release -p videocounter-worker",
        bin.display()
    );
    bin
}

/// A worker process of the benchmark, with its HTTP port and log file.
struct WorkerProcess {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl WorkerProcess {
    /// Starts `instance` of the application configured in `config`, with its
    /// data under `data`; extra flags (e.g. `--group-protocol classic`) after.
    fn spawn(config: &Path, instance: &str, data: &Path, extra: &[&str]) -> Self {
        let log = data.with_extension("log");
        let file = std::fs::File::create(&log).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // BENCH_WORKER_WRAPPER runs the worker under a profiler, e.g. "heaptrack -o /tmp/worker".
        let mut command = match std::env::var("BENCH_WORKER_WRAPPER") {
            Ok(wrapper) => {
                let mut words = wrapper.split_whitespace();
                let mut c = Command::new(words.next().expect("BENCH_WORKER_WRAPPER is empty"));
                c.args(words).arg(worker_binary());
                c
            }
            Err(_) => Command::new(worker_binary()),
        };
        let child = command
            .arg("--config")
            .arg(config)
            .arg("--instance-id")
            .arg(instance)
            .arg("--data-dir")
            .arg(data)
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("BENCH_WORKER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("worker");
        Self { child, port, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics with the worker's log when it has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "worker exited with {status}: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    fn get(&self, path: &str) -> String {
        http_get(self.port, path)
    }

    /// SIGTERM (warm shutdown), then waits for the exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Writes the worker configuration of application `app` (exactly-once,
/// windows 1/5/10 min) into `dir`, and creates its topics (as the operator
/// would before the workers start).
async fn configure_app(dir: &Path, app: &str, input: &str, commit_interval: &str) -> PathBuf {
    let config = dir.join("worker.yaml");
    std::fs::write(
        &config,
        format!(
            "applicationId: {app}\nkafka:\n  bootstrapServers: {}\ntopics:\n  input: {input}\n  partitions: {PARTITIONS}\n\
             commitInterval: {commit_interval}\nprocessingGuarantee: exactlyOnce\nemit: onUpdate\n\
             windows:\n  - size: 1m\n    outputTopic: {app}-out-1\n  - size: 5m\n    outputTopic: {app}-out-5\n  - size: 10m\n    outputTopic: {app}-out-10\n",
            kafka::bootstrap()
        ),
    )
    .unwrap();
    for (name, configs) in [
        (format!("{app}-repartition"), &[][..]),
        (
            format!("{app}-counts-changelog"),
            &[("cleanup.policy", "compact")][..],
        ),
        (format!("{app}-dead-letter"), &[][..]),
        (format!("{app}-out-1"), &[][..]),
        (format!("{app}-out-5"), &[][..]),
        (format!("{app}-out-10"), &[][..]),
    ] {
        kafka::create_topic(&name, PARTITIONS, configs).await;
    }
    config
}

async fn run_worker(input: &str, n: u64, commit_interval: &str) -> Run {
    let app = unique_name("bench");
    // BENCH_KEEP=1 keeps the worker's directory (config, data, log) for a look afterwards.
    let mut dir = tempfile::tempdir().expect("tempdir");
    if std::env::var_os("BENCH_KEEP").is_some() {
        dir.disable_cleanup(true);
        println!("worker directory: {}", dir.path().display());
    }
    // Topics exist before the clock starts, as in a deployment.
    let config = configure_app(dir.path(), &app, input, commit_interval).await;
    let started = Instant::now();
    let mut worker = WorkerProcess::spawn(&config, "bench-0", &dir.path().join("data"), &[]);
    let pid = worker.pid();
    let repartition = format!("{app}-repartition");
    let mut peak = 0;
    loop {
        peak = peak.max(vm_hwm_kib(pid));
        worker.assert_running();
        if caught_up(&app, input, &repartition, n) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "worker did not finish in 30 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = started.elapsed().as_secs_f64();
    peak = peak.max(vm_hwm_kib(pid));
    let repartition_records = data_records(&repartition);
    let metrics = worker
        .get("/metrics")
        .lines()
        .filter(|l| {
            l.starts_with("videocounter_commit_duration_seconds_sum")
                || l.starts_with("videocounter_commit_duration_seconds_count")
                || l.starts_with("videocounter_output_records_total")
                || l.starts_with("videocounter_repartition_records_produced_total")
        })
        .map(str::to_owned)
        .collect();
    worker.stop();
    Run {
        rate: n as f64 / seconds,
        seconds,
        peak_rss_kib: peak,
        repartition_records,
        metrics,
    }
}

/// The body of a plain HTTP GET on the worker (empty when it does not answer).
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// Whether the group committed all `n` input events and every repartition record.
fn caught_up(group: &str, input: &str, repartition: &str, n: u64) -> bool {
    thread_local! {
        static CLIENTS: std::cell::RefCell<Option<(String, BaseConsumer, BaseConsumer)>> = const { std::cell::RefCell::new(None) };
    }
    CLIENTS.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|(g, _, _)| g != group) {
            let committed: BaseConsumer = kafka::client_config().set("group.id", group).create().unwrap();
            let plain: BaseConsumer = kafka::client_config()
                .set("isolation.level", "read_uncommitted")
                .create()
                .unwrap();
            *c = Some((group.to_string(), committed, plain));
        }
        let (_, committed, plain) = c.as_ref().unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition(input, p);
            tpl.add_partition(repartition, p);
        }
        let Ok(offsets) = committed.committed_offsets(tpl, Duration::from_secs(5)) else {
            return false;
        };
        let mut input_done = 0u64;
        for e in offsets.elements() {
            let at = match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            };
            let Ok((_, high)) = plain.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(5))
            else {
                return false;
            };
            if at < high {
                return false;
            }
            if e.topic() == input {
                input_done += at as u64;
            }
        }
        input_done >= n
    })
}

/// Data records in a transactional topic (high watermark minus commit markers is not
/// known exactly, so count by reading).
fn data_records(topic: &str) -> i64 {
    kafka::read_to_end(topic, kafka::Isolation::ReadCommitted, Duration::from_secs(300)).len() as i64
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
