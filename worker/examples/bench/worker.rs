//! The benchmark's worker processes: configuration, start and stop, and one
//! timed run from process start until the group committed a whole pre-loaded
//! topic, with the process's CPU time, peak memory and commit figures.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use videocounter_e2e::{kafka, unique_name};

use super::PARTITIONS;

/// The worker binary: `BENCH_WORKER_BIN`, else the one built beside this benchmark.
fn worker_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("BENCH_WORKER_BIN") {
        return bin.into();
    }
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
pub struct WorkerProcess {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl WorkerProcess {
    /// Starts `instance` of the application configured in `config`, with its
    /// data under `data`; extra flags (e.g. `--group-protocol classic`) after.
    pub fn spawn(config: &Path, instance: &str, data: &Path, extra: &[&str]) -> Self {
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics with the worker's log when it has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "worker exited with {status}: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    pub fn get(&self, path: &str) -> String {
        http_get(self.port, path)
    }

    pub fn ready(&self) -> bool {
        self.get("/readyz").contains("\"ready\":true")
    }

    /// SIGKILL, no chance to leave the group.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (warm shutdown), then waits for the exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// Seconds of CPU the process used so far (user + system).
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(11) + ticks(12)) / 100.0
    }

    pub fn vm_hwm_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// A metric's value (summed over its label sets).
    pub fn metric(&self, name: &str) -> f64 {
        self.get("/metrics")
            .lines()
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
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

/// Writes the worker configuration of application `app` (exactly-once,
/// windows 1/5/10 min, `onUpdate`) into `dir`, and creates its topics (as the
/// operator would before the workers start).
pub async fn configure_app(dir: &Path, app: &str, input: &str, commit_interval: &str) -> PathBuf {
    let config = dir.join("worker.yaml");
    std::fs::write(
        &config,
        format!(
            "applicationId: {app}\nkafka:\n  bootstrapServers: {}\ntopics:\n  input: {input}\n  partitions: {PARTITIONS}\n\
             commitInterval: {commit_interval}\nprocessingGuarantee: exactlyOnce\nemit: onUpdate\ngrace: 1h\n\
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

/// A scratch directory; `BENCH_KEEP=1` keeps it (config, data, log) for a look afterwards.
pub fn scratch() -> tempfile::TempDir {
    let mut dir = tempfile::tempdir().expect("tempdir");
    if std::env::var_os("BENCH_KEEP").is_some() {
        dir.disable_cleanup(true);
        println!("worker directory: {}", dir.path().display());
    }
    dir
}

/// One timed run of a fresh worker over a pre-loaded topic.
pub struct Run {
    pub events: u64,
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_kib: u64,
    pub commits: f64,
    pub commit_seconds: f64,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }

    pub fn cpu_us_per_event(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.events as f64
    }

    pub fn avg_commit_ms(&self) -> f64 {
        self.commit_seconds * 1000.0 / self.commits.max(1.0)
    }
}

/// A fresh worker from process start until the group has committed all `n`
/// input events and every repartition record (the last commit).
pub async fn run_to_end(input: &str, n: u64, commit_interval: &str, extra: &[&str]) -> Run {
    let app = unique_name("bench");
    let dir = scratch();
    // Topics exist before the clock starts, as in a deployment.
    let config = configure_app(dir.path(), &app, input, commit_interval).await;
    let started = Instant::now();
    let mut worker = WorkerProcess::spawn(&config, "bench-0", &dir.path().join("data"), extra);
    let repartition = format!("{app}-repartition");
    let mut peak = 0;
    loop {
        peak = peak.max(worker.vm_hwm_kib());
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
    let run = Run {
        events: n,
        seconds,
        cpu_seconds: worker.cpu_seconds(),
        peak_rss_kib: peak.max(worker.vm_hwm_kib()),
        commits: worker.metric("videocounter_commit_duration_seconds_count"),
        commit_seconds: worker.metric("videocounter_commit_duration_seconds_sum"),
    };
    worker.stop();
    kafka::delete_topics_of(&app).await;
    run
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
