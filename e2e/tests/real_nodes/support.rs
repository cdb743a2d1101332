//! A deployment as a user makes one, on the real nodes: the operator chart
//! installed with the images `make node-images` built, and
//! examples/counter.yaml applied, pointed at the ground's Kafka through its
//! listener for pods. Plus what the scenarios look at: the worker pods, their
//! HTTP API (reached at the pod's address from the host) and the VideoCounter.

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use videocounter_e2e::cli::{apply, eventually, helm, http, kubectl, read_repo_file, run, try_run};
use videocounter_e2e::nodes::{NodeNamespace, RealNodes};
use videocounter_e2e::objects::{Objects, POD, PVC, VIDEOCOUNTER};
use videocounter_e2e::{required_env, unique_name};

/// One real-node scenario at a time: they share two cores, and their timings
/// (stalls, time to Ready) mean little when they compete.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The name of the example VideoCounter (examples/counter.yaml).
pub const COUNTER: &str = "likes";

/// One window of the counter: output `type` label, topic, size.
#[derive(Debug, Clone)]
pub struct Window {
    pub label: String,
    pub topic: String,
    pub size_ms: i64,
}

/// The operator chart in a namespace of its own on the real nodes, managing
/// that namespace; uninstalled and deleted on drop.
pub struct Deployment {
    pub nodes: RealNodes,
    pub ns: NodeNamespace,
    pub release: String,
    /// The VideoCounter as last applied.
    pub counter: Value,
    pub windows: Vec<Window>,
    pub input: String,
    pub objects: Objects,
    _turn: MutexGuard<'static, ()>,
}

impl Deployment {
    /// `helm install` of the chart with the local images; waits for the operator.
    pub fn install(prefix: &str) -> Self {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let nodes = RealNodes::from_env();
        // Helm never upgrades CRDs: apply this checkout's, as the README says before an upgrade.
        run(kubectl().args([
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "charts/videocounter-operator/crds/",
        ]));
        let ns = NodeNamespace::new(&nodes, prefix);
        let release = unique_name("vc");
        let (operator_repo, tag) = nodes
            .image("operator")
            .rsplit_once(':')
            .map(|(r, t)| (r.to_string(), t.to_string()))
            .unwrap();
        let worker_repo = nodes.image("worker").rsplit_once(':').unwrap().0.to_string();
        let start = Instant::now();
        run(helm().args([
            "install",
            &release,
            "charts/videocounter-operator",
            "--namespace",
            &ns.name,
            "--set",
            &format!("watchNamespace={}", ns.name),
            "--set",
            &format!("image.repository={operator_repo},image.tag={tag}"),
            "--set",
            &format!("workerImage.repository={worker_repo},workerImage.tag={tag}"),
            // Cluster-wide aggregation roles would outlive the namespace.
            "--set",
            "rbac.aggregateToDefaultRoles=false,logFormat=text",
            "--wait",
            "--timeout",
            "150s",
        ]));
        println!("helm install --wait: {:.1} s", start.elapsed().as_secs_f64());
        let suffix = unique_name("t");
        let counter = example_counter(&nodes, &suffix);
        let windows = counter["spec"]["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                let size = w["size"].as_str().unwrap();
                let minutes: i64 = size
                    .trim_end_matches('m')
                    .parse()
                    .expect("the example's windows are in minutes");
                Window {
                    label: format!("{minutes}min"),
                    topic: w["outputTopic"].as_str().unwrap().to_string(),
                    size_ms: minutes * 60_000,
                }
            })
            .collect();
        let input = counter["spec"]["topics"]["input"].as_str().unwrap().to_string();
        Self {
            nodes,
            ns,
            release,
            counter,
            windows,
            input,
            objects: Objects::new(),
            _turn: turn,
        }
    }

    /// `kubectl apply` of the counter with `replicas` workers; returns when
    /// the apply returned.
    pub fn apply_counter(&mut self, replicas: i64) {
        self.counter["spec"]["replicas"] = Value::from(replicas);
        apply(&self.ns.name, &self.counter.to_string());
    }

    /// The consumer group and internal-topic prefix: `<namespace>.<name>`.
    pub fn application_id(&self) -> String {
        format!("{}.{COUNTER}", self.ns.name)
    }

    /// The topic between the re-key and count stages (`<application id>-repartition`).
    pub fn repartition_topic(&self) -> String {
        format!("{}-repartition", self.application_id())
    }

    pub fn videocounter(&self) -> Value {
        self.objects
            .get(VIDEOCOUNTER, &self.ns.name, COUNTER)
            .expect("the VideoCounter")
    }

    /// Worker pods (not terminating ones), by name.
    pub fn worker_pods(&self) -> Vec<Value> {
        let mut pods: Vec<Value> = self
            .objects
            .list(
                POD,
                &self.ns.name,
                &format!("app.kubernetes.io/instance={COUNTER}"),
            )
            .into_iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .collect();
        pods.sort_by_key(|p| p["metadata"]["name"].as_str().unwrap().to_string());
        pods
    }

    pub fn pod(&self, name: &str) -> Option<Value> {
        self.objects.get(POD, &self.ns.name, name)
    }

    /// A claim that exists and is not being deleted.
    pub fn claim(&self, name: &str) -> Option<Value> {
        self.objects
            .get(PVC, &self.ns.name, name)
            .filter(|c| c["metadata"]["deletionTimestamp"].is_null())
    }

    /// Waits until the counter is Ready with `replicas` workers, each Ready
    /// pod on a real node answering `/readyz` 200 with every counting
    /// partition it owns restored (`active`, nothing left to restore).
    /// Returns how long that took.
    pub fn wait_ready(&self, replicas: i64, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let vc = self.videocounter();
            let ready = condition_true(&vc, "Ready")
                && vc["status"]["readyReplicas"] == replicas
                && vc["status"]["updatedReplicas"] == replicas
                && vc["status"]["observedGeneration"] == vc["metadata"]["generation"];
            if ready {
                let pods = self.worker_pods();
                if pods.len() as i64 == replicas && pods.iter().all(|p| self.is_restored(p)) {
                    return start.elapsed();
                }
            }
            assert!(
                start.elapsed() < timeout,
                "{COUNTER} not Ready with {replicas} restored workers after {timeout:?}: {}\n{}",
                vc["status"],
                self.worker_logs(20)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pod is Ready on a real node, and its worker says why: in the
    /// group, every owned counting partition active with nothing left to restore.
    pub fn is_restored(&self, pod: &Value) -> bool {
        let on_real_node = pod["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| self.nodes.names.iter().any(|r| r == n));
        if !on_real_node || !pod_ready(pod) {
            return false;
        }
        let Some(addr) = pod_http(pod) else { return false };
        let Some((200, body)) = http(addr, "GET", "/v1/partitions", "") else {
            return false;
        };
        let Ok(p) = serde_json::from_str::<Value>(&body) else {
            return false;
        };
        p["ready"] == true
            && p["partitions"].as_array().is_some_and(|parts| {
                parts
                    .iter()
                    .all(|x| x["state"] == "active" && x["restore_remaining_records"] == 0)
            })
    }

    /// Deletes worker pod `name` and waits until its replacement (a new uid)
    /// is restored; how long that took.
    pub fn replace_pod(&self, name: &str) -> Duration {
        let old_uid = self.pod(name).expect("the pod to replace")["metadata"]["uid"].clone();
        let deleted = Instant::now();
        run(kubectl().args(["delete", "pod", name, "-n", &self.ns.name, "--wait=false"]));
        eventually(
            &format!("{name} replaced and restored"),
            Duration::from_secs(120),
            || {
                let p = self.pod(name)?;
                (p["metadata"]["uid"] != old_uid && self.is_restored(&p)).then_some(())
            },
        );
        deleted.elapsed()
    }

    /// `/v1/partitions` of every worker pod, by pod name.
    pub fn assignments(&self) -> Vec<(String, Value)> {
        self.worker_pods()
            .iter()
            .filter_map(|p| {
                let (code, body) = http(pod_http(p)?, "GET", "/v1/partitions", "")?;
                (code == 200).then(|| (pod_name(p), serde_json::from_str(&body).unwrap()))
            })
            .collect()
    }

    /// The README's rolling restart: the restart annotation on the VideoCounter.
    pub fn restart(&self) {
        let out = run(std::process::Command::new("date").args(["-u", "+%FT%T.%NZ"]));
        let now = String::from_utf8(out.stdout).unwrap();
        run(kubectl().args([
            "annotate",
            &format!("vc/{COUNTER}"),
            &format!("videocounter.io/restartedAt={}", now.trim()),
            "--overwrite",
            "-n",
            &self.ns.name,
        ]));
    }

    /// The worker log lines of every pod (for failure messages).
    pub fn worker_logs(&self, lines: usize) -> String {
        self.worker_pods()
            .iter()
            .map(|p| {
                let name = pod_name(p);
                let out = try_run(kubectl().args([
                    "logs",
                    "-n",
                    &self.ns.name,
                    &name,
                    "--tail",
                    &lines.to_string(),
                ]));
                format!(
                    "--- {name}:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .collect()
    }

    /// Every log line of every worker pod, the containers before their last
    /// restart too (`--previous`), written to one file whose path is returned:
    /// a failure's whole story, where 40 lines hold only its end.
    pub fn save_worker_logs(&self) -> String {
        let dir = std::path::Path::new(&required_env("VIDEOCOUNTER_NODE_DIR")).join("../logs");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{}-workers.log", self.ns.name));
        let mut text = String::new();
        for p in self.worker_pods() {
            let name = pod_name(&p);
            for previous in [true, false] {
                let mut args = vec!["logs", "-n", &self.ns.name, &name];
                if previous {
                    args.push("--previous");
                }
                let out = try_run(kubectl().args(&args));
                text += &format!(
                    "=== {name}{}:\n{}{}",
                    if previous { " (previous container)" } else { "" },
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        match std::fs::write(&path, text) {
            Ok(()) => path.display().to_string(),
            Err(e) => format!("(worker logs not saved: {e})"),
        }
    }

    /// `videocounter_late_events_total` summed over the running workers (a
    /// late like is not in the counts, so it explains a missing one).
    pub fn late_events(&self) -> u64 {
        self.worker_pods()
            .iter()
            .filter_map(|p| http(pod_http(p)?, "GET", "/metrics", ""))
            .map(|(_, text)| {
                text.lines()
                    .filter(|l| l.starts_with("videocounter_late_events_total"))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum::<f64>() as u64
            })
            .sum()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = try_run(helm().args([
            "uninstall",
            &self.release,
            "--namespace",
            &self.ns.name,
            "--wait",
            "--timeout",
            "60s",
        ]));
        let _ = try_run(kubectl().args(["delete", "namespace", &self.ns.name, "--wait=false"]));
        // Let the pods go before the next scenario starts (they shut down warm).
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline && !self.objects.list(POD, &self.ns.name, "").is_empty() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// examples/counter.yaml as a user of this cluster applies it: the broker is
/// the ground's listener for pods, the volumes come from the real nodes'
/// StorageClass (the cluster's default class serves the fake nodes), and the
/// topic names are made unique (the broker is shared by every test).
fn example_counter(nodes: &RealNodes, suffix: &str) -> Value {
    let text = read_repo_file("examples/counter.yaml");
    let mut vc: Value = serde_saphyr::from_str(&text).expect("examples/counter.yaml");
    assert_eq!(vc["metadata"]["name"], COUNTER);
    vc["spec"]["kafka"]["bootstrapServers"] = Value::from(nodes.pod_bootstrap.as_str());
    vc["spec"]["storage"] = serde_json::json!({"storageClassName": nodes.storage_class});
    let input = format!("{}-{suffix}", vc["spec"]["topics"]["input"].as_str().unwrap());
    vc["spec"]["topics"]["input"] = Value::from(input);
    for window in vc["spec"]["windows"].as_array_mut().unwrap() {
        let output = format!("{}-{suffix}", window["outputTopic"].as_str().unwrap());
        window["outputTopic"] = Value::from(output);
    }
    vc
}

pub fn condition_true(object: &Value, type_: &str) -> bool {
    object["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == type_ && c["status"] == "True"))
}

pub fn pod_ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null() && condition_true(pod, "Ready")
}

pub fn pod_name(pod: &Value) -> String {
    pod["metadata"]["name"].as_str().unwrap().to_string()
}

/// The worker's HTTP address: the pod's IP on the nodes' bridge, port 8080.
pub fn pod_http(pod: &Value) -> Option<SocketAddr> {
    let ip = pod["status"]["podIP"].as_str()?;
    format!("{ip}:8080").parse().ok()
}
