//! The test ground's command-line tools (kubectl, helm) as subprocesses,
//! bounded in time, and small HTTP GETs to addresses on the ground.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// The commands of the first `sh` block after `marker` in README.md, each
/// split into its words: the tests run the README's procedures as written.
pub fn readme_commands(marker: &str) -> Vec<Vec<String>> {
    let readme = read_repo_file("README.md");
    let from = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README.md has no {marker:?}"));
    let block = &readme[from..];
    let start = block.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = start + block[start..].find("```").unwrap();
    block[start..end]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// A ground binary under `timeout`: a client waiting for something that
/// never happens fails the test in bounded time instead of hanging it.
fn bounded(binary: &str) -> Command {
    let mut c = Command::new("timeout");
    c.args(["--kill-after=10", "180"])
        .arg(crate::ground_binary(binary));
    c.env("KUBECONFIG", crate::required_env("KUBECONFIG"));
    c
}

/// `kubectl` of the test ground, as the admin.
pub fn kubectl() -> Command {
    bounded("kubectl")
}

/// `helm` of the test ground.
pub fn helm() -> Command {
    bounded("helm")
}

/// Runs a command in the workspace root; panics with its output when it fails.
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

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command with `input` on its standard input; panics when it fails.
pub fn run_with_input(cmd: &mut Command, input: &str) -> Output {
    let out = try_run_with_input(cmd, input);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\nstderr:\n{}\ninput:\n{input}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command with `input` on its standard input; its output, whatever its status.
pub fn try_run_with_input(cmd: &mut Command, input: &str) -> Output {
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

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `kubectl get -o json` of one object (or list), or `None` when it does not exist.
pub fn get_json(args: &[&str]) -> Option<Value> {
    let out = run(kubectl()
        .args(["get", "--ignore-not-found", "-o", "json"])
        .args(args));
    let text = stdout(&out);
    (!text.trim().is_empty()).then(|| serde_json::from_str(&text).unwrap())
}

/// Applies JSON or YAML in `namespace` as the admin (server-side apply).
pub fn apply(namespace: &str, manifest: &str) {
    run_with_input(
        kubectl().args([
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "videocounter-e2e",
            "-n",
            namespace,
            "-f",
            "-",
        ]),
        manifest,
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

/// One HTTP/1.0 request; the status code and body, or `None` when nothing answered.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}
