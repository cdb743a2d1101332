//! Starting the real gateway binary for tests, and reading what it wrote.
#![allow(dead_code)] // each test file uses a different subset

use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use videocounter_e2e::kafka::{self, Isolation};

pub const GATEWAY: &str = env!("CARGO_BIN_EXE_videocounter-gateway");
pub const LOADGEN: &str = env!("CARGO_BIN_EXE_videocounter-loadgen");

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `videocounter-gateway`, killed when dropped.
pub struct Gateway {
    child: Child,
    pub base: String,
    log: std::path::PathBuf,
}

impl Gateway {
    /// Starts the gateway with `args` (plus `--listen`) and waits for `/healthz`.
    pub async fn start(args: &[&str]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("{}.log", videocounter_e2e::unique_name("gateway")));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(GATEWAY)
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "info,videocounter_gateway=debug")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("starting videocounter-gateway");
        let gateway = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = http();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(gateway.url("/healthz")).send().await
                && r.status().is_success()
            {
                return gateway;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not answer /healthz within 30 s; log:\n{}",
                gateway.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// An HTTP client whose every request is bounded (a hang fails the test).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn json(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON (HTTP {status}): {text}"));
    (status, value)
}

/// Every record of `topic`, as (key, value) strings.
pub fn records(topic: &str) -> Vec<(String, String)> {
    kafka::read_to_end(topic, Isolation::ReadUncommitted, Duration::from_secs(30))
        .iter()
        .map(|m| (text(m.key()), text(m.payload())))
        .collect()
}

pub fn raw_records(topic: &str) -> Vec<OwnedMessage> {
    kafka::read_to_end(topic, Isolation::ReadUncommitted, Duration::from_secs(30))
}

fn text(bytes: Option<&[u8]>) -> String {
    String::from_utf8(bytes.unwrap_or_default().to_vec()).unwrap()
}
