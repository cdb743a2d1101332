//! `helm install` into the test ground, then the real operator binary run
//! out of cluster with the chart's Deployment arguments and a kubeconfig that
//! impersonates the chart's ServiceAccount: it must reconcile the example
//! VideoCounter to Ready with no "forbidden" answer, which proves the chart's
//! RBAC is enough. Then `helm uninstall` must leave only what the README says
//! it keeps. Along the way, the metric names the chart's alerts and dashboard
//! use are checked against real scrapes of the operator and a worker, and
//! deploy/gateway.yaml's gateway runs on the rendered configuration.

use crate::process::Process;
use crate::support::{
    CHART, Namespace, apply, eventually, free_port, get_json, helm, http_get, kubectl, read_repo_file,
    repo_root, run, stderr, stdout, try_run, yaml_documents,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use videocounter_e2e::{kafka, required_env, unique_name};

/// A binary `make build` (or `cargo build --release`) leaves in the target directory.
pub fn release_binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    let path = target.join("release").join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`make build`, or `cargo build --release -p {name}`)",
        path.display()
    );
    path
}

/// A kubeconfig that acts as `user` through impersonation (the admin token
/// is allowed to impersonate).
fn impersonating_kubeconfig(dir: &Path, user: &str) -> PathBuf {
    let out = run(kubectl().args(["config", "view", "--raw", "--minify", "--flatten", "-o", "json"]));
    let mut config: Value = serde_json::from_slice(&out.stdout).unwrap();
    config["users"][0]["user"]["as"] = Value::from(user);
    let path = dir.join("impersonating.kubeconfig");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// examples/counter.yaml, pointed at the test ground's broker, with topic
/// names of its own (the broker is shared with other tests).
fn example_counter(suffix: &str) -> Value {
    let docs = yaml_documents(&read_repo_file("examples/counter.yaml"));
    let mut vc = docs
        .into_iter()
        .next()
        .expect("examples/counter.yaml holds a VideoCounter");
    vc["spec"]["kafka"]["bootstrapServers"] = Value::from(kafka::bootstrap());
    let input = format!("{}-{suffix}", vc["spec"]["topics"]["input"].as_str().unwrap());
    vc["spec"]["topics"]["input"] = Value::from(input);
    for window in vc["spec"]["windows"].as_array_mut().unwrap() {
        let output = format!("{}-{suffix}", window["outputTopic"].as_str().unwrap());
        window["outputTopic"] = Value::from(output);
    }
    vc
}

fn condition<'a>(vc: &'a Value, type_: &str) -> Option<&'a Value> {
    vc["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Everything listable in `namespace`, as `kind/name`, minus what every
/// namespace has and Events (they expire on their own).
fn objects_in(namespace: &str) -> BTreeSet<String> {
    let resources = stdout(&run(kubectl().args([
        "api-resources",
        "--verbs=list",
        "--namespaced",
        "-o",
        "name",
    ])));
    let kinds: Vec<&str> = resources.lines().filter(|r| !r.starts_with("events")).collect();
    let out = run(kubectl().args([
        "get",
        &kinds.join(","),
        "-n",
        namespace,
        "--ignore-not-found",
        "-o",
        "json",
    ]));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .filter(|o| o != "ConfigMap/kube-root-ca.crt" && o != "ServiceAccount/default")
        .collect()
}

/// Cluster-scoped objects of the release.
fn cluster_objects_of(release: &str) -> BTreeSet<String> {
    let selector = format!("app.kubernetes.io/instance={release}");
    let out = run(kubectl().args([
        "get",
        "clusterroles,clusterrolebindings",
        "-l",
        &selector,
        "-o",
        "json",
    ]));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// One install of the chart: the operator in `operator_ns`, managing `apps_ns`.
struct Install {
    operator_ns: Namespace,
    apps_ns: Namespace,
    release: String,
    fullname: String,
}

impl Install {
    /// `helm install --wait`: the Deployment's pod (on a kwok node) must pass
    /// restricted admission and become available.
    fn new() -> Self {
        let operator_ns = Namespace::restricted("chart-op");
        let apps_ns = Namespace::restricted("chart-apps");
        let release = unique_name("vc");
        run(helm().args([
            "install",
            &release,
            CHART,
            "--namespace",
            &operator_ns.name,
            "--set",
            &format!("watchNamespace={}", apps_ns.name),
            "--wait",
            "--timeout",
            "120s",
        ]));
        let fullname = format!("{release}-videocounter-operator");
        Self {
            operator_ns,
            apps_ns,
            release,
            fullname,
        }
    }

    /// The real operator with the chart Deployment's arguments (only the
    /// listen address moved to `http_port` on loopback) and, through
    /// impersonation, exactly the chart ServiceAccount's rights.
    fn start_operator(&self, dir: &Path, http_port: u16, identity: &str) -> Process {
        let deployment = get_json(&["deployment", &self.fullname, "-n", &self.operator_ns.name])
            .expect("the operator Deployment");
        let pod_spec = &deployment["spec"]["template"]["spec"];
        let user = format!(
            "system:serviceaccount:{}:{}",
            self.operator_ns.name,
            pod_spec["serviceAccountName"].as_str().unwrap()
        );
        let kubeconfig = impersonating_kubeconfig(dir, &user);
        let denied = try_run(kubectl().env("KUBECONFIG", &kubeconfig).args([
            "get",
            "secrets",
            "-n",
            &self.apps_ns.name,
        ]));
        assert!(
            !denied.status.success() && stderr(&denied).contains("forbidden"),
            "the impersonating kubeconfig should not list Secrets: it is not acting as the ServiceAccount"
        );
        let args: Vec<String> = pod_spec["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| match a.as_str().unwrap() {
                a if a.starts_with("--http-listen=") => format!("--http-listen=127.0.0.1:{http_port}"),
                a => a.to_string(),
            })
            .collect();
        Process::start(
            Command::new(release_binary("videocounter-operator"))
                .args(&args)
                .env("KUBECONFIG", &kubeconfig)
                .env("POD_NAME", identity)
                .env("POD_NAMESPACE", &self.operator_ns.name)
                .env("RUST_LOG", "info")
                .env_remove("VIDEOCOUNTER_NAMESPACE"),
            dir.join("operator.log"),
        )
    }

    /// The operator holds the lease in the release namespace and records events.
    fn assert_leader_and_events(&self, identity: &str, vc_name: &str) {
        let lease =
            get_json(&["lease", &self.fullname, "-n", &self.operator_ns.name]).expect("the leader Lease");
        assert_eq!(lease["spec"]["holderIdentity"], identity);
        let events = stdout(&run(kubectl().args([
            "get",
            "events",
            "-n",
            &self.apps_ns.name,
            "--field-selector",
            &format!("involvedObject.name={vc_name}"),
            "-o",
            "jsonpath={.items[*].reason}",
        ])));
        assert!(events.contains("TopicsCreated"), "events of {vc_name}: {events}");
    }

    /// `helm uninstall`: what stays is what the README says: the CRD (Helm
    /// never deletes CRDs), the VideoCounter with its workers, and the Lease
    /// the operator created at run time. Nothing of the chart.
    fn uninstall_and_check_leftovers(&self, vc_name: &str) {
        run(helm().args([
            "uninstall",
            &self.release,
            "--namespace",
            &self.operator_ns.name,
            "--wait",
            "--timeout",
            "120s",
        ]));
        let expected: BTreeSet<String> = [format!("Lease/{}", self.fullname)].into();
        eventually(
            "only the Lease left in the operator namespace",
            Duration::from_secs(60),
            || (objects_in(&self.operator_ns.name) == expected).then_some(()),
        );
        assert_eq!(
            cluster_objects_of(&self.release),
            BTreeSet::new(),
            "cluster-scoped objects left by the release"
        );
        assert!(
            get_json(&["crd", "videocounters.videocounter.io"]).is_some(),
            "the CRD stays"
        );
        let kept = objects_in(&self.apps_ns.name);
        for object in [
            format!("VideoCounter/{vc_name}"),
            format!("StatefulSet/{vc_name}"),
            format!("ConfigMap/{vc_name}-config"),
        ] {
            assert!(kept.contains(&object), "{object} should be kept; left: {kept:?}");
        }
    }
}

#[test]
fn chart_rbac_is_enough_for_the_real_operator_and_uninstall_leaves_only_what_the_docs_say() {
    required_env("VIDEOCOUNTER_KAFKA_BOOTSTRAP");
    let tmp_dir = tempfile::tempdir().unwrap();
    let tmp = tmp_dir.path();
    let install = Install::new();
    let apps = &install.apps_ns.name;
    let http_port = free_port();
    let identity = format!("{}-test", install.release);
    let mut operator = install.start_operator(tmp, http_port, &identity);

    // The example, as a user would apply it (bootstrap and topic names
    // adapted to the shared test broker), reconciled to Ready.
    let vc = example_counter(&unique_name("t"));
    apply(apps, &vc.to_string());
    let name = vc["metadata"]["name"].as_str().unwrap().to_string();
    let replicas = vc["spec"]["replicas"].as_i64().unwrap();
    let ready = eventually(
        "the example VideoCounter to be Ready",
        Duration::from_secs(120),
        || {
            operator.assert_running("the operator");
            let vc = get_json(&["videocounter", &name, "-n", apps])?;
            (condition(&vc, "Ready")?["status"] == "True").then_some(vc)
        },
    );
    assert_eq!(ready["status"]["readyReplicas"], replicas, "{ready:#}");
    install.assert_leader_and_events(&identity, &name);

    // Rolling restart and scaling as the README says: pod deletion and
    // StatefulSet changes with the chart's permissions.
    crate::operations::restart_and_scale(apps, &name, replicas);

    // The metric names the chart's alerts and dashboard query, against real
    // scrapes: this operator's, and a worker's on the configuration the
    // operator rendered; and the gateway of `make deploy` on that configuration.
    let operator_metrics = eventually("the operator's /metrics", Duration::from_secs(10), || {
        http_get(http_port, "/metrics")
    });
    let config_map = get_json(&["configmap", &format!("{name}-config"), "-n", apps]).expect("worker config");
    let worker_config = config_map["data"]["config.yaml"].as_str().unwrap();
    let input_topic = vc["spec"]["topics"]["input"].as_str().unwrap();
    crate::metrics::check_against_real_scrapes(&operator_metrics, worker_config, input_topic, tmp);
    crate::gateway::check_manifest_runs_the_gateway(worker_config, input_topic, tmp);

    operator.assert_running("the operator");
    operator.terminate();
    let log = operator.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the operator was refused something:\n{log}"
    );

    install.uninstall_and_check_leftovers(&name);
}
