//! The dashboard end to end, in a real browser: a worker and the gateway
//! run against the real broker, headless Chromium (Debian's, driven by
//! playwright-core from `gateway/browser-test/`) adds a video, clicks
//! "Like" and waits for its 1-minute count to go from 0 to 1, compares the
//! recently counted list with the cards, runs a load test and stops it
//! (the per-video rates come back), and checks a 390 px wide screen. The run
//! saves two screenshots (paths printed; `$VIDEOCOUNTER_ARTIFACTS` or
//! `<cargo target dir>/../artifacts/dashboard.png` and `dashboard-narrow.png`).

mod common;

use common::{Gateway, free_port, http};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use videocounter_e2e::{kafka, unique_name};
use videocounter_protocol::{HumanDuration, WindowConfig, WorkerConfig};

const BROWSER_TEST_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/browser-test");

/// The cargo target directory's profile folder, where the worker binary is built.
fn profile_dir() -> PathBuf {
    Path::new(common::GATEWAY).parent().unwrap().to_path_buf()
}

fn artifacts_dir() -> PathBuf {
    std::env::var_os("VIDEOCOUNTER_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| profile_dir().join("../../artifacts"))
}

fn worker_binary() -> PathBuf {
    let path = profile_dir().join("videocounter-worker");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release -p videocounter-worker` (make test builds it)",
        path.display()
    );
    path
}

struct Worker {
    child: Child,
    log: PathBuf,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_worker(config: &Path, instance: &str, log: PathBuf) -> Worker {
    let child = Command::new(worker_binary())
        .args(["--config", config.to_str().unwrap(), "--instance-id", instance])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("starting videocounter-worker");
    Worker { child, log }
}

async fn wait_ready(url: &str, worker: &Worker) {
    let client = http();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the worker was not ready within 120 s; log:\n{}",
            std::fs::read_to_string(&worker.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `npm ci` when node_modules does not match package-lock.json (npm's cache is in ~/.npm).
fn npm_ci() {
    let dir = Path::new(BROWSER_TEST_DIR);
    let lock = std::fs::read(dir.join("package-lock.json")).expect("package-lock.json");
    let stamp = dir.join("node_modules/.videocounter-lock");
    if std::fs::read(&stamp).ok().as_deref() == Some(lock.as_slice()) {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .status()
        .expect("running npm (Node.js 20+ and npm are needed for the browser test)");
    assert!(status.success(), "npm ci in {} failed", dir.display());
    std::fs::write(stamp, lock).unwrap();
}

#[tokio::test]
async fn dashboard_like_click_raises_the_one_minute_count() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/install-deps.sh (apt-get install chromium)"
    );
    let bootstrap = kafka::bootstrap();
    let app = unique_name("gw-browser");
    let dir = tempfile::tempdir().unwrap();
    let worker_port = free_port();

    let mut config = WorkerConfig::with_bootstrap(bootstrap);
    config.application_id = app.clone();
    config.topics.input = format!("{app}-likes");
    config.topics.partitions = 2;
    config.windows = [1, 5, 10]
        .into_iter()
        .map(|m| WindowConfig {
            output_topic: Some(format!("{app}-counts-{m}m")),
            ..WindowConfig::of_size(HumanDuration::from_mins(m))
        })
        .collect();
    config.data_dir = dir.path().join("worker-data");
    config.http_listen = format!("127.0.0.1:{worker_port}");
    let config_path = dir.path().join("worker.yaml");
    std::fs::write(&config_path, serde_saphyr::to_string(&config).unwrap()).unwrap();

    let worker = start_worker(&config_path, &format!("{app}-0"), dir.path().join("worker.log"));
    let worker_url = format!("http://127.0.0.1:{worker_port}");
    wait_ready(&format!("{worker_url}/readyz"), &worker).await;

    let demo = [format!("{app}-demo-a"), format!("{app}-demo-b")];
    let gateway = Gateway::start(&[
        "--worker-config",
        config_path.to_str().unwrap(),
        "--worker-url",
        &worker_url,
        "--generate-videos",
        &demo.join(","),
        "--generate-rate-per-minute",
        "90",
        "--generate",
    ])
    .await;

    npm_ci();
    let artifacts = artifacts_dir();
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("dashboard.png");
    let narrow = artifacts.join("dashboard-narrow.png");
    let _ = std::fs::remove_file(&screenshot);
    let _ = std::fs::remove_file(&narrow);
    let demo_videos = demo.join(",");
    let video = format!("{app}-clicked");
    let output = tokio::task::spawn_blocking({
        let (base, screenshot) = (gateway.base.clone(), screenshot.clone());
        move || {
            Command::new("node")
                .arg("dashboard.test.mjs")
                .current_dir(BROWSER_TEST_DIR)
                .env("DASHBOARD_URL", base)
                .env("VIDEO_ID", &video)
                .env("SCREENSHOT", &screenshot)
                .env("WORKERS_READY", "1/1 ready")
                .env("DEMO_VIDEOS", demo_videos)
                .env("DEMO_RATE", "90")
                .env("CHROMIUM", chromium)
                .output()
                .expect("running node")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}{stderr}");
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}{stderr}\ngateway log:\n{}\nworker log:\n{}",
        gateway.log_text(),
        std::fs::read_to_string(&worker.log).unwrap_or_default()
    );
    for picture in [&screenshot, &narrow] {
        let png = std::fs::read(picture).expect("the screenshot was saved");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{} is not a real PNG",
            picture.display()
        );
        println!(
            "dashboard screenshot: {}",
            picture.canonicalize().unwrap().display()
        );
    }
}
