//! Helpers of the packaging tests: the repository's files, helm and kubectl
//! from the test ground run as subprocesses, namespaces that clean up after
//! themselves, and YAML documents as JSON values.

use serde_json::Value;
use std::net::TcpListener;
use videocounter_e2e::cli::http;
pub use videocounter_e2e::cli::{
    apply, eventually, get_json, helm, kubectl, read_repo_file, repo_root, run, stderr, stdout, try_run,
    try_run_with_input,
};
use videocounter_e2e::unique_name;

pub const CHART: &str = "charts/videocounter-operator";

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
    let (code, body) = http(([127, 0, 0, 1], port).into(), "GET", path, "")?;
    (code == 200).then_some(body)
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
