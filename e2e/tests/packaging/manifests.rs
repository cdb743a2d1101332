//! The manifests `make deploy` applies besides the chart (deploy/*.yaml,
//! examples/*.yaml) pass a server-side dry-run, and kind-config.yaml maps the
//! NodePorts those manifests open.

use crate::support::{Namespace, kubectl, read_repo_file, run, stderr, try_run_with_input, yaml_documents};
use serde_json::Value;

/// The CRD as generated, so the examples can be checked (the operator's
/// tests apply it the same way).
fn install_crd() {
    let out = try_run_with_input(
        kubectl().args([
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager",
            "videocounter-tests",
            "-f",
            "-",
        ]),
        &read_repo_file("crds/videocounter.yaml"),
    );
    assert!(
        out.status.success(),
        "applying crds/videocounter.yaml: {}",
        stderr(&out)
    );
    run(kubectl().args([
        "wait",
        "--for",
        "condition=Established",
        "--timeout",
        "60s",
        "crd/videocounters.videocounter.io",
    ]));
}

/// Dry-runs every document of `path` in `namespace`: a Namespace document
/// as it is, the others moved into the test namespace. Fails on errors and
/// on Pod Security warnings.
fn dry_run_file(path: &str, namespace: &str) -> Vec<Value> {
    let docs = yaml_documents(&read_repo_file(path));
    assert!(!docs.is_empty(), "{path} has no objects");
    let moved: Vec<Value> = docs
        .iter()
        .cloned()
        .map(|mut d| {
            if d["kind"] != "Namespace" {
                d["metadata"]["namespace"] = Value::from(namespace);
            }
            d
        })
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": moved});
    let out = try_run_with_input(
        kubectl().args(["apply", "--dry-run=server", "-f", "-"]),
        &list.to_string(),
    );
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "{path} is rejected by the API server:\n{err}"
    );
    assert!(
        !err.contains("would violate PodSecurity"),
        "{path} breaks the restricted Pod Security Standard:\n{err}"
    );
    docs
}

#[test]
fn kafka_manifest_passes_server_dry_run() {
    let ns = Namespace::restricted("deploy-kafka");
    let docs = dry_run_file("deploy/kafka.yaml", &ns.name);
    let namespace = docs
        .iter()
        .find(|d| d["kind"] == "Namespace")
        .expect("deploy/kafka.yaml creates its namespace");
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
}

#[test]
fn gateway_manifest_passes_server_dry_run() {
    let ns = Namespace::restricted("deploy-gateway");
    dry_run_file("deploy/gateway.yaml", &ns.name);
}

#[test]
fn examples_pass_server_dry_run() {
    install_crd();
    let ns = Namespace::restricted("deploy-examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(crate::support::repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let relative = format!("examples/{}", path.file_name().unwrap().to_string_lossy());
            let docs = dry_run_file(&relative, &ns.name);
            assert!(
                docs.iter().all(|d| d["kind"] == "VideoCounter"),
                "{relative} holds more than VideoCounters"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "expected examples/counter.yaml and the full variant, found {checked} files"
    );
}

/// The seed's setup: raw ids from video_clicks_ingestion, 1/5/10 minute
/// windows into video_aggregations_1/5/10, two workers; and a bootstrap
/// address that resolves from every namespace (the operator creates topics
/// from its own).
#[test]
fn the_example_is_the_seed_setup_on_the_deployed_kafka() {
    let docs = yaml_documents(&read_repo_file("examples/counter.yaml"));
    let [vc] = docs.as_slice() else {
        panic!("examples/counter.yaml should hold one VideoCounter")
    };
    let spec = &vc["spec"];
    assert_eq!(
        vc["metadata"]["name"], "likes",
        "deploy/gateway.yaml and make deploy refer to `likes`"
    );
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["topics"]["input"], "video_clicks_ingestion");
    let windows: Vec<(String, String)> = spec["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["size"].as_str().unwrap().into(),
                w["outputTopic"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(
        windows,
        [
            ("1m".to_string(), "video_aggregations_1".to_string()),
            ("5m".into(), "video_aggregations_5".into()),
            ("10m".into(), "video_aggregations_10".into())
        ]
    );
    assert_eq!(
        spec["kafka"]["bootstrapServers"], "kafka.kafka.svc.cluster.local:9092",
        "examples/counter.yaml should use deploy/kafka.yaml's address, which resolves from every namespace"
    );
}

#[test]
fn kind_config_has_two_workers_and_maps_every_node_port() {
    let config = &yaml_documents(&read_repo_file("kind-config.yaml"))[0];
    assert_eq!(config["kind"], "Cluster");
    let roles: Vec<&str> = config["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["control-plane", "worker", "worker"]);
    let mapped: Vec<i64> = config["nodes"][0]["extraPortMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["containerPort"].as_i64().unwrap())
        .collect();
    for path in ["deploy/kafka.yaml", "deploy/gateway.yaml"] {
        for doc in yaml_documents(&read_repo_file(path)) {
            if doc["kind"] == "Service" && doc["spec"]["type"] == "NodePort" {
                for port in doc["spec"]["ports"].as_array().unwrap() {
                    let node_port = port["nodePort"]
                        .as_i64()
                        .expect("fixed nodePorts, so kind can map them");
                    assert!(
                        mapped.contains(&node_port),
                        "{path}: NodePort {node_port} is not mapped in kind-config.yaml"
                    );
                }
            }
        }
    }
}
