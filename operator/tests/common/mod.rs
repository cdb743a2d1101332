//! Helpers for the operator's tests against the real control plane: a
//! namespace per test, the CRD from `crds/`, the operator binary as a child
//! process restricted to that namespace, and a pod watcher that checks the
//! rollout bound at every event.
#![allow(dead_code)]

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use videocounter_e2e::kube::eventually;
use videocounter_e2e::{ground_binary, kafka, unique_name};
use videocounter_operator::crd::{ConditionStatus, VideoCounter};
use videocounter_operator::reconcile::roll::plan::REVISION_LABEL;

pub const TEST_IMAGE: &str = "example.invalid/videocounter-worker:test";

/// A namespace of its own, deleted (with everything in it) on drop.
pub struct TestNamespace {
    pub client: Client,
    pub name: String,
}

impl TestNamespace {
    pub async fn new(prefix: &str) -> Self {
        let client = videocounter_e2e::kube::client().await;
        require_node_heartbeats(&client).await;
        install_crd(&client).await;
        let name = unique_name(prefix);
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        namespaces.create(&PostParams::default(), &ns).await.unwrap();
        Self { client, name }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    pub fn vcs(&self) -> Api<VideoCounter> {
        self.api()
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Best effort, on a runtime of its own: the test's runtime may be gone or
        // blocked in this very drop, and its client with it.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(client) = Client::try_default().await {
                    let _ = Api::<Namespace>::all(client)
                        .delete(&name, &DeleteParams::background())
                        .await;
                }
            });
        })
        .join();
    }
}

/// Fails unless kwok renews the fake nodes' Leases. Without them the node
/// lifecycle controller turns each node NotReady about 50 s after its last
/// status heartbeat and marks its pods unready: pods would flap under the
/// rollout tests, whose whole point is counting unready pods.
pub async fn require_node_heartbeats(client: &Client) {
    use k8s_openapi::api::coordination::v1::Lease;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = k8s_openapi::jiff::Timestamp::now();
    for node in ["kwok-node-0", "kwok-node-1", "kwok-node-2"] {
        let renewed = leases
            .get_opt(node)
            .await
            .unwrap()
            .and_then(|l| l.spec?.renew_time)
            .map(|t| now.duration_since(t.0).as_secs());
        assert!(
            renewed.is_some_and(|age| age < 40),
            "node Lease kube-node-lease/{node} is missing or stale (renewed {renewed:?} s ago): kwok must run \
             with --node-lease-duration-seconds (e2e/lib/kube.sh); restart kwok with `e2e/env up` after stopping it"
        );
    }
}

/// The CRD as checked in, applied with server-side apply; waits until it is served.
pub async fn install_crd(client: &Client) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds/videocounter.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "videocounters.videocounter.io",
        &PatchParams::apply("videocounter-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    eventually(
        "the VideoCounter CRD to be established",
        Duration::from_secs(30),
        || async {
            let crd = crds.get("videocounters.videocounter.io").await.ok()?;
            let established = crd
                .status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(())
        },
    )
    .await;
}

/// The operator binary, running as a child process until dropped.
pub struct Operator {
    pub child: Child,
    pub http: String,
    pub log: PathBuf,
}

impl Operator {
    /// Starts an operator managing `namespace` only, with its own Lease there.
    pub fn start(namespace: &str, identity: &str) -> Self {
        let kubeconfig = PathBuf::from(videocounter_e2e::required_env("KUBECONFIG"));
        Self::start_as(namespace, identity, &kubeconfig)
    }

    /// Like [`Operator::start`], authenticating with another kubeconfig.
    pub fn start_as(namespace: &str, identity: &str, kubeconfig: &std::path::Path) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("{namespace}-{identity}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_videocounter-operator"))
            .args(["--namespace", namespace, "--lease-namespace", namespace])
            .args(["--lease-duration-seconds", "3", "--identity", identity])
            .args(["--worker-image", TEST_IMAGE])
            .args(["--http-listen", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,videocounter_operator=debug")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("starting videocounter-operator");
        Self {
            child,
            http: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// SIGKILL: no lease release, no cleanup; the next leader waits for expiry.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::get(format!("{}{path}", self.http)).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// A metric's value from `/metrics`.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics").await?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Resident memory now (`VmRSS`) and at its peak (`VmHWM`), in KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        (self.proc_status("VmRSS:"), self.proc_status("VmHWM:"))
    }

    fn proc_status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Topic names unique to one test, so tests never share Kafka state.
pub struct TestTopics {
    pub input: String,
    pub outputs: [String; 3],
}

impl TestTopics {
    pub fn new(namespace: &str) -> Self {
        Self {
            input: format!("{namespace}-clicks"),
            outputs: [1, 5, 10].map(|m| format!("{namespace}-agg-{m}")),
        }
    }
}

/// `examples/counter.yaml` pointed at the test broker and this test's topics.
pub fn example_counter(topics: &TestTopics, replicas: i32) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/counter.yaml");
    let mut vc: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    vc["spec"]["replicas"] = replicas.into();
    vc["spec"]["kafka"]["bootstrapServers"] = kafka::bootstrap().into();
    vc["spec"]["topics"]["input"] = topics.input.clone().into();
    for (i, out) in topics.outputs.iter().enumerate() {
        vc["spec"]["windows"][i]["outputTopic"] = out.clone().into();
    }
    vc
}

/// Creates (or takes over) a VideoCounter from JSON with server-side apply.
pub async fn apply_vc(ns: &TestNamespace, vc: &serde_json::Value) -> VideoCounter {
    let name = vc["metadata"]["name"].as_str().unwrap();
    ns.vcs()
        .patch(
            name,
            &PatchParams::apply("videocounter-tests").force(),
            &Patch::Apply(vc),
        )
        .await
        .unwrap_or_else(|e| panic!("applying VideoCounter {name}: {e}"))
}

pub async fn merge_patch_vc(ns: &TestNamespace, name: &str, patch: serde_json::Value) {
    ns.vcs()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("patching VideoCounter {name}: {e}"));
}

/// Waits until the VideoCounter is Ready for its current generation with
/// `replicas` ready pods; on timeout, fails with what it last saw.
pub async fn wait_ready(ns: &TestNamespace, name: &str, replicas: i32, timeout: Duration) -> VideoCounter {
    let vcs = ns.vcs();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let vc = vcs.get_opt(name).await.ok().flatten();
        if let Some(vc) = &vc
            && let Some(status) = &vc.status
        {
            let ready = status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True);
            if ready
                && status.observed_generation == vc.metadata.generation
                && status.ready_replicas == replicas
                && status.updated_replicas == replicas
            {
                return vc.clone();
            }
        }
        if std::time::Instant::now() > deadline {
            let pods: Vec<String> = pods_of(ns, name)
                .await
                .iter()
                .map(|p| {
                    format!(
                        "{} rev={:?} ready={} deleting={} node={:?}",
                        p.name_any(),
                        p.labels().get(REVISION_LABEL),
                        is_ready(p),
                        p.metadata.deletion_timestamp.is_some(),
                        p.spec.as_ref().and_then(|s| s.node_name.clone())
                    )
                })
                .collect();
            let sts = ns.api::<StatefulSet>().get_opt(name).await.ok().flatten();
            panic!(
                "timed out after {timeout:?} waiting for VideoCounter {name} Ready with {replicas} pods\n\
                 generation {:?}, status {:#?}\nStatefulSet generation {:?} status {:#?}\npods:\n{}",
                vc.as_ref().and_then(|v| v.metadata.generation),
                vc.as_ref().and_then(|v| v.status.clone()),
                sts.as_ref().and_then(|s| s.metadata.generation),
                sts.and_then(|s| s.status),
                pods.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The condition `type_` of a VideoCounter as (status, reason, message).
pub fn condition(vc: &VideoCounter, type_: &str) -> Option<(ConditionStatus, String, String)> {
    let c = vc.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)?;
    Some((c.status, c.reason.clone(), c.message.clone()))
}

pub fn kubectl(namespace: &str, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(ground_binary("kubectl"))
        .args(["--namespace", namespace])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kubectl");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

pub fn kubectl_ok(namespace: &str, args: &[&str]) -> String {
    let out = kubectl(namespace, args, None);
    assert!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn pod_image(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

/// What a [`PodWatcher`] saw.
#[derive(Debug, Default, Clone)]
pub struct WatchLog {
    /// Events seen after the initial list.
    pub events: usize,
    /// Most pods unavailable (missing, unready or terminating) at any event.
    pub max_unavailable: i32,
    /// The event at which `max_unavailable` was reached, for failure messages.
    pub worst: String,
    /// Pod creations seen (new uids), by pod name.
    pub created: BTreeMap<String, usize>,
    /// Whether, at some event, a Ready pod with the new image and a pod
    /// with another image existed together (the rollout went in batches).
    pub mixed_ready: bool,
    /// One line per event: the pod that changed and the resulting availability.
    pub trace: Vec<String>,
}

/// Watches the pods of a StatefulSet and records, after every single event,
/// how many of the `replicas` wanted pods were not Ready-and-running.
pub struct PodWatcher {
    log: Arc<Mutex<WatchLog>>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWatcher {
    pub async fn start(ns: &TestNamespace, sts: &str, replicas: i32, new_image: Option<String>) -> Self {
        let pods: Api<Pod> = ns.api();
        let log = Arc::new(Mutex::new(WatchLog::default()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task_log = log.clone();
        let sts = sts.to_string();
        let task = tokio::spawn(async move {
            let mut current: BTreeMap<String, Pod> = BTreeMap::new();
            let mut initial: BTreeMap<String, Pod> = BTreeMap::new();
            let mut ready_tx = Some(ready_tx);
            let mut seen_uids = std::collections::BTreeSet::new();
            let stream = watcher::watcher(pods, watcher::Config::default());
            futures::pin_mut!(stream);
            while let Ok(Some(event)) = stream.try_next().await {
                match event {
                    watcher::Event::Init => initial.clear(),
                    watcher::Event::InitApply(p) => {
                        seen_uids.insert(p.uid().unwrap_or_default());
                        initial.insert(p.name_any(), p);
                    }
                    watcher::Event::InitDone => {
                        current = std::mem::take(&mut initial);
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    watcher::Event::Apply(p) => {
                        if seen_uids.insert(p.uid().unwrap_or_default()) {
                            *task_log.lock().unwrap().created.entry(p.name_any()).or_default() += 1;
                        }
                        let change = describe(&p, "apply");
                        current.insert(p.name_any(), p);
                        record(&task_log, &current, &sts, replicas, new_image.as_deref(), change);
                    }
                    watcher::Event::Delete(p) => {
                        current.remove(&p.name_any());
                        let change = describe(&p, "delete");
                        record(&task_log, &current, &sts, replicas, new_image.as_deref(), change);
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), ready_rx)
            .await
            .expect("pod watcher initial list")
            .unwrap();
        Self { log, task }
    }

    pub fn log(&self) -> WatchLog {
        self.log.lock().unwrap().clone()
    }

    /// Puts a line of the test's own (e.g. "second restart") into the trace,
    /// so a failure shows which step the events that follow belong to.
    pub fn mark(&self, step: &str) {
        self.log.lock().unwrap().trace.push(format!("-- {step}"));
    }

    pub fn stop(self) -> WatchLog {
        self.task.abort();
        self.log()
    }
}

fn describe(p: &Pod, what: &str) -> String {
    format!(
        "{what} {} uid={} rv={} revision={} phase={} ready={} deleting={} node={}",
        p.name_any(),
        &p.uid().unwrap_or_default()[..8.min(p.uid().unwrap_or_default().len())],
        p.resource_version().unwrap_or_default(),
        p.labels().get(REVISION_LABEL).map(String::as_str).unwrap_or("-"),
        p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("-"),
        is_ready(p),
        p.metadata.deletion_timestamp.is_some(),
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    )
}

fn record(
    log: &Mutex<WatchLog>,
    pods: &BTreeMap<String, Pod>,
    sts: &str,
    replicas: i32,
    new_image: Option<&str>,
    change: String,
) {
    let wanted: Vec<&Pod> = (0..replicas)
        .filter_map(|i| pods.get(&format!("{sts}-{i}")))
        .collect();
    let available: Vec<&&Pod> = wanted
        .iter()
        .filter(|p| is_ready(p) && p.metadata.deletion_timestamp.is_none())
        .collect();
    let unavailable = replicas - available.len() as i32;
    let mut log = log.lock().unwrap();
    log.events += 1;
    let line = format!("#{} {change} -> unavailable {unavailable}", log.events);
    log.trace.push(line);
    if unavailable > log.max_unavailable {
        log.max_unavailable = unavailable;
        log.worst = format!(
            "event {}: available {:?}",
            log.events,
            available.iter().map(|p| p.name_any()).collect::<Vec<_>>()
        );
    }
    if let Some(image) = new_image {
        let new_ready = available.iter().any(|p| pod_image(p) == image);
        let old_present = wanted.iter().any(|p| pod_image(p) != image);
        log.mixed_ready |= new_ready && old_present;
    }
}

pub async fn statefulset_replicas(ns: &TestNamespace, name: &str) -> Option<i32> {
    let sts: Api<StatefulSet> = ns.api();
    sts.get_opt(name).await.ok()??.spec?.replicas
}

/// Deletes the Kafka topics a test created (best effort; names are unique).
pub async fn delete_topics(names: &[String]) {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let _ = kafka::admin()
        .delete_topics(&refs, &rdkafka::admin::AdminOptions::new())
        .await;
}

/// Every topic of a VideoCounter created from [`example_counter`] in `ns`.
pub fn example_topic_names(ns: &str, topics: &TestTopics) -> Vec<String> {
    let app = format!("{ns}.likes");
    let mut names = vec![
        topics.input.clone(),
        format!("{app}-repartition"),
        format!("{app}-counts-changelog"),
        format!("{app}-dead-letter"),
    ];
    names.extend(topics.outputs.iter().cloned());
    names
}

pub async fn pods_of(ns: &TestNamespace, vc: &str) -> Vec<Pod> {
    let pods: Api<Pod> = ns.api();
    let list = pods
        .list(&kube::api::ListParams::default().labels(&format!("app.kubernetes.io/instance={vc}")))
        .await
        .unwrap();
    list.items
}

/// Events about the VideoCounter `name`, oldest first, as (type, reason, note).
pub async fn events_of(ns: &TestNamespace, name: &str) -> Vec<(String, String, String)> {
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let mut found: Vec<_> = events
        .list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    found.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    found
        .into_iter()
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

/// `kubectl wait` as the README documents it, on a thread (it blocks): the
/// exit status and what it printed.
pub async fn kubectl_wait(namespace: &str, args: &[&str]) -> Output {
    let namespace = namespace.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut all = vec!["wait".to_string()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        kubectl(&namespace, &refs, None)
    })
    .await
    .unwrap()
}
