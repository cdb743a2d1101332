//! Helpers of the packaging tests: the repository's files, helm and kubectl
//! from the test ground run as subprocesses, namespaces that clean up after
//! themselves, and YAML documents as JSON values.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use videocounter_e2e::{ground_binary, required_env, unique_name};

pub const CHART: &str = "charts/videocounter-operator";

/// The workspace root (the tests run in `e2e/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn read_repo_file(path: &str) -> String {
    let full = repo_root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

/// Every `---`-separated document of a YAML text, as JSON values (empty documents skipped).
pub fn yaml_documents(text: &str) -> Vec<Value> {
    text.split("\n---")
        .map(|doc| doc.trim_start_matches("---"))
        .filter(|doc| {
            doc.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .map(|doc| {
            serde_saphyr::from_str::<Value>(doc)
                .unwrap_or_else(|e| panic!("invalid YAML document: {e}\n{doc}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Runs a command and returns its output; panics with the command, status,
/// stdout and stderr when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = try_run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn try_run(cmd: &mut Command) -> Output {
    cmd.current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command with `input` on its standard input.
pub fn run_with_input(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A ground binary under `timeout`: a client waiting for something that
/// never happens fails the test in bounded time instead of hanging it.
fn bounded(binary: &str) -> Command {
    let mut c = Command::new("timeout");
    c.args(["--kill-after=10", "180"]).arg(ground_binary(binary));
    c.env("KUBECONFIG", required_env("KUBECONFIG"));
    c
}

/// `helm` of the test ground, talking to its API server.
pub fn helm() -> Command {
    bounded("helm")
}

/// `kubectl` of the test ground, as the admin.
pub fn kubectl() -> Command {
    bounded("kubectl")
}

/// `kubectl get -o json` of one object, or `None` when it does not exist.
pub fn get_json(args: &[&str]) -> Option<Value> {
    let out = run(kubectl()
        .args(["get", "--ignore-not-found", "-o", "json"])
        .args(args));
    let text = stdout(&out);
    (!text.trim().is_empty()).then(|| serde_json::from_str(&text).unwrap())
}

/// Applies JSON or YAML as the admin (server-side apply).
pub fn apply(namespace: &str, manifest: &str) {
    let out = run_with_input(
        kubectl().args([
            "apply",
            "--server-side",
            "--field-manager",
            "videocounter-e2e",
            "-n",
            namespace,
            "-f",
            "-",
        ]),
        manifest,
    );
    assert!(
        out.status.success(),
        "kubectl apply failed:\n{}\n{manifest}",
        stderr(&out)
    );
}

/// Polls `check` every 250 ms until it returns `Some`, or panics naming `what`.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A namespace of its own, deleted (with everything in it) on drop.
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    /// A new namespace that enforces the `restricted` Pod Security Standard,
    /// so admission rejects any pod of the chart that does not meet it.
    pub fn restricted(prefix: &str) -> Self {
        let name = unique_name(prefix);
        run(kubectl().args(["create", "namespace", &name]));
        run(kubectl().args([
            "label",
            "namespace",
            &name,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ]));
        Self { name }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = try_run(kubectl().args([
            "delete",
            "namespace",
            &self.name,
            "--wait=false",
            "--ignore-not-found",
        ]));
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` from a local HTTP server; the body, if it answered 200.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    (head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")).then(|| body.to_string())
}

/// The sample names a Prometheus text exposition can contain: every sample
/// line's name, and for each `# TYPE` family (even one without samples yet)
/// the names its samples take (`_total` for counters, `_bucket`, `_sum` and
/// `_count` for histograms).
pub fn exposed_metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            match kind {
                "counter" => {
                    names.insert(format!("{}_total", name.trim_end_matches("_total")));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    names.insert(name.to_string());
                }
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// The `videocounter_*` metric names a dashboard or rule text refers to.
pub fn referenced_metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut names = std::collections::BTreeSet::new();
    let mut i = 0;
    while let Some(pos) = text[i..].find("videocounter_") {
        let start = i + pos;
        let preceded_by_word =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase() || bytes[end].is_ascii_digit() || bytes[end] == b'_')
        {
            end += 1;
        }
        if !preceded_by_word {
            names.insert(text[start..end].to_string());
        }
        i = end;
    }
    names
}
