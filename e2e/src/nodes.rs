//! The test ground's real nodes (`e2e/env up node`): where they are, how a
//! namespace puts its pods on them, the images built for them, and what
//! their kubelets report.

use crate::cli::{kubectl, run, stdout, try_run};
use crate::required_env;
use serde_json::Value;
use std::path::PathBuf;

/// What `e2e/env` exports about the real nodes.
#[derive(Debug, Clone)]
pub struct RealNodes {
    /// Node names (`node-1 node-2`).
    pub names: Vec<String>,
    /// Kafka's listener for pods, on the host's bridge address.
    pub pod_bootstrap: String,
    /// The StorageClass of node-local volumes.
    pub storage_class: String,
    /// `key=value` label of the real nodes.
    pub selector: String,
    /// `key=value:Effect` taint that keeps other pods off them.
    pub taint: String,
    /// Where `make node-images` wrote the image archives it loaded.
    pub images_dir: PathBuf,
    /// Registry part of the local image names (`localhost/videocounter`).
    pub image_registry: String,
    /// The busybox image of the network checks.
    pub netcheck_image: String,
}

fn node_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the test ground's real nodes. Run `make test`, or \
             `e2e/env up && make node-images && source ~/.cache/videocounter/state/env.sh` (as root)."
        )
    })
}

impl RealNodes {
    /// The nodes, checked to be registered and Ready.
    pub fn from_env() -> Self {
        required_env("KUBECONFIG");
        let nodes = Self {
            names: node_env("VIDEOCOUNTER_NODE_NAMES")
                .split_whitespace()
                .map(String::from)
                .collect(),
            pod_bootstrap: node_env("VIDEOCOUNTER_KAFKA_POD_BOOTSTRAP"),
            storage_class: node_env("VIDEOCOUNTER_NODE_STORAGE_CLASS"),
            selector: node_env("VIDEOCOUNTER_NODE_SELECTOR"),
            taint: node_env("VIDEOCOUNTER_NODE_TAINT"),
            images_dir: PathBuf::from(node_env("VIDEOCOUNTER_NODE_IMAGES_DIR")),
            image_registry: node_env("VIDEOCOUNTER_LOCAL_IMAGE_REGISTRY"),
            netcheck_image: node_env("VIDEOCOUNTER_NETCHECK_IMAGE"),
        };
        for name in &nodes.names {
            let out = try_run(kubectl().args([
                "get",
                "node",
                name,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ]));
            assert!(
                stdout(&out).trim() == "True",
                "real node {name} is not Ready ({}): start the nodes with `e2e/env up node`, \
                 and read `e2e/env logs kubelet-{name}`",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        nodes
    }

    /// A local image of this workspace's version (`worker` →
    /// `localhost/videocounter/worker:0.1.0`), as `make node-images` names it.
    pub fn image(&self, name: &str) -> String {
        format!("{}/{name}:{}", self.image_registry, env!("CARGO_PKG_VERSION"))
    }

    /// The annotations that make every pod of a namespace run on the real
    /// nodes (the API server's PodNodeSelector and PodTolerationRestriction
    /// admission plugins): their node selector and a toleration of their taint.
    pub fn namespace_annotations(&self) -> Value {
        let (key_value, effect) = self.taint.split_once(':').expect("taint key=value:Effect");
        let (key, value) = key_value.split_once('=').expect("taint key=value");
        let toleration =
            serde_json::json!([{"key": key, "operator": "Equal", "value": value, "effect": effect}]);
        serde_json::json!({
            "scheduler.alpha.kubernetes.io/node-selector": self.selector,
            "scheduler.alpha.kubernetes.io/defaultTolerations": toleration.to_string(),
        })
    }
}

/// Label of the namespaces `NodeNamespace` makes: the id of the test process.
const RUN_LABEL: &str = "videocounter.io/e2e-run";

/// Deletes the real-node namespaces of earlier test processes: one killed
/// mid-test never dropped its namespace, and its pods would keep running
/// (and taking CPU) on the nodes. Once per process.
fn prune_earlier_runs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let selector = format!("{RUN_LABEL},{RUN_LABEL}!={}", std::process::id());
        let out = try_run(kubectl().args(["delete", "namespaces", "-l", &selector, "--wait=false"]));
        let deleted = stdout(&out);
        if !deleted.trim().is_empty() {
            eprintln!(
                "namespaces of earlier test runs on the real nodes: {}",
                deleted.trim()
            );
        }
    });
}

/// A namespace whose pods run on the real nodes, enforcing the `restricted`
/// Pod Security Standard; deleted with everything in it on drop.
pub struct NodeNamespace {
    pub name: String,
}

impl NodeNamespace {
    pub fn new(nodes: &RealNodes, prefix: &str) -> Self {
        prune_earlier_runs();
        let name = crate::unique_name(prefix);
        let ns = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "annotations": nodes.namespace_annotations(),
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                    RUN_LABEL: std::process::id().to_string(),
                },
            },
        });
        crate::cli::run_with_input(kubectl().args(["create", "-f", "-"]), &ns.to_string());
        Self { name }
    }
}

impl Drop for NodeNamespace {
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

/// Memory of one container as its kubelet reports it (the summary API,
/// through the API server): working set and RSS in bytes.
pub fn container_memory(node: &str, namespace: &str, pod: &str, container: &str) -> Option<(u64, u64)> {
    let out = run(kubectl().args([
        "get",
        "--raw",
        &format!("/api/v1/nodes/{node}/proxy/stats/summary"),
    ]));
    let summary: Value = serde_json::from_slice(&out.stdout).ok()?;
    let pod = summary["pods"]
        .as_array()?
        .iter()
        .find(|p| p["podRef"]["name"] == pod && p["podRef"]["namespace"] == namespace)?;
    let c = pod["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == container)?;
    Some((
        c["memory"]["workingSetBytes"].as_u64()?,
        c["memory"]["rssBytes"].as_u64()?,
    ))
}

/// Resident memory (VmRSS, bytes) of the processes of a container, read on
/// this machine (the nodes run here): its cgroup is the directory named
/// after the container id (`containerd://<id>` in the pod status). Unlike
/// the cgroup's usage, it counts the binary's pages charged to others.
pub fn container_processes_rss(container_id: &str) -> Option<u64> {
    let id = container_id.strip_prefix("containerd://").unwrap_or(container_id);
    let root = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        PathBuf::from("/sys/fs/cgroup/memory")
    };
    let dir = find_dir(&root, id, 8)?;
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).ok()?;
    let rss = procs
        .lines()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum::<u64>();
    Some(rss * 1024)
}

fn find_dir(dir: &std::path::Path, name: &str, depth: usize) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if entry.file_name() == name {
            return Some(entry.path());
        }
        if depth > 0
            && let Some(found) = find_dir(&entry.path(), name, depth - 1)
        {
            return Some(found);
        }
    }
    None
}
