//! `helm lint`, and what `helm template` renders checked by the API server
//! (`kubectl apply --dry-run=server`) for every combination of values that
//! changes which objects exist.

use crate::support::{
    CHART, Namespace, helm, kubectl, read_repo_file, run, stderr, try_run_with_input, yaml_documents,
};
use serde_json::Value;

/// Values that switch every optional object on.
const EVERYTHING_ON: &[&str] = &[
    "replicaCount=2",
    "metrics.serviceMonitor.enabled=true",
    "metrics.podMonitor.enabled=true",
    "prometheusRule.enabled=true",
    "grafanaDashboard.enabled=true",
];

fn set_args(values: &[&str]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| ["--set".to_string(), v.to_string()])
        .collect()
}

fn template(namespace: &str, values: &[&str]) -> String {
    let out = run(helm()
        .args(["template", "rel", CHART, "--namespace", namespace])
        .args(set_args(values)));
    String::from_utf8(out.stdout).unwrap()
}

/// Server-side dry-run of a rendered chart (every namespaced template names
/// its namespace); fails on any error or Pod Security warning.
fn dry_run(manifest: &str) {
    let out = try_run_with_input(kubectl().args(["apply", "--dry-run=server", "-f", "-"]), manifest);
    let err = stderr(&out);
    assert!(out.status.success(), "dry-run rejected the chart:\n{err}");
    assert!(
        !err.contains("would violate PodSecurity"),
        "the chart breaks the restricted Pod Security Standard:\n{err}"
    );
}

fn kinds(manifest: &str) -> Vec<(String, String)> {
    yaml_documents(manifest)
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn install_monitoring_crds() {
    run(&mut std::process::Command::new(
        crate::support::repo_root().join("e2e/kube/monitoring-crds.sh"),
    ));
}

#[test]
fn chart_lints_clean_with_defaults_and_with_every_option() {
    run(helm().args(["lint", "--strict", CHART]));
    run(helm()
        .args(["lint", "--strict", CHART, "--set", "watchNamespace=apps"])
        .args(set_args(EVERYTHING_ON)));
    // The values schema (and one template guard) reject what would otherwise render wrongly.
    for bad in [
        "logFormat=xml",
        "unknownKey=1",
        "service.port=0",
        "prometheusRule.consumerLagFor=soon",
        // Two replicas without a leader would both reconcile.
        "replicaCount=2,leaderElection.enabled=false",
    ] {
        let out = crate::support::try_run(helm().args(["template", "rel", CHART, "--set", bad]));
        assert!(!out.status.success(), "helm template accepted --set {bad}");
    }
}

#[test]
fn default_render_is_accepted_by_the_api_server() {
    let ns = Namespace::restricted("chart-default");
    let manifest = template(&ns.name, &[]);
    let mut found = kinds(&manifest);
    found.sort();
    let name = "rel-videocounter-operator".to_string();
    let expected: Vec<(String, String)> = vec![
        ("ClusterRole".into(), name.clone()),
        ("ClusterRole".into(), format!("{name}-edit")),
        ("ClusterRole".into(), format!("{name}-view")),
        ("ClusterRoleBinding".into(), name.clone()),
        ("Deployment".into(), name.clone()),
        ("Role".into(), format!("{name}-leader-election")),
        ("RoleBinding".into(), format!("{name}-leader-election")),
        ("Service".into(), name.clone()),
        ("ServiceAccount".into(), name.clone()),
    ];
    assert_eq!(found, expected);
    dry_run(&manifest);
}

#[test]
fn render_with_every_option_is_accepted_by_the_api_server() {
    install_monitoring_crds();
    let ns = Namespace::restricted("chart-all");
    let manifest = template(&ns.name, EVERYTHING_ON);
    let found: Vec<String> = kinds(&manifest).into_iter().map(|(k, _)| k).collect();
    for kind in [
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "ConfigMap",
        "PodDisruptionBudget",
    ] {
        assert!(found.iter().any(|k| k == kind), "no {kind} in\n{manifest}");
    }
    let deployment = yaml_documents(&manifest)
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    dry_run(&manifest);
}

#[test]
fn namespaced_render_needs_no_cluster_wide_permission() {
    let operator_ns = Namespace::restricted("chart-op");
    let apps_ns = Namespace::restricted("chart-apps");
    let manifest = template(
        &operator_ns.name,
        &[
            &format!("watchNamespace={}", apps_ns.name),
            "rbac.aggregateToDefaultRoles=false",
        ],
    );
    let docs = yaml_documents(&manifest);
    let cluster_scoped: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"].as_str().unwrap().starts_with("Cluster"))
        .collect();
    assert!(
        cluster_scoped.is_empty(),
        "cluster-wide objects in namespaced mode: {cluster_scoped:?}"
    );
    let role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["name"] == "rel-videocounter-operator")
        .expect("a Role for the watched namespace");
    assert_eq!(role["metadata"]["namespace"], apps_ns.name.as_str());
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    assert!(
        args.iter()
            .any(|a| a == &Value::from(format!("--namespace={}", apps_ns.name))),
        "{args:?}"
    );
    dry_run(&manifest);
}

#[test]
fn existing_service_account_and_no_rbac_render() {
    let ns = Namespace::restricted("chart-norbac");
    let manifest = template(
        &ns.name,
        &[
            "serviceAccount.create=false",
            "serviceAccount.name=my-operator",
            "rbac.create=false",
            "rbac.aggregateToDefaultRoles=false",
        ],
    );
    let found: Vec<String> = kinds(&manifest).into_iter().map(|(k, _)| k).collect();
    assert_eq!(found, ["Service", "Deployment"], "{manifest}");
    assert!(manifest.contains("serviceAccountName: my-operator"));
    dry_run(&manifest);
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let generated = read_repo_file("crds/videocounter.yaml");
    let in_chart = read_repo_file("charts/videocounter-operator/crds/videocounter.yaml");
    assert!(
        generated == in_chart,
        "charts/videocounter-operator/crds/videocounter.yaml differs from crds/videocounter.yaml: run `make crds`"
    );
    let crd = yaml_documents(&generated)
        .into_iter()
        .find(|d| d["kind"] == "CustomResourceDefinition");
    assert_eq!(
        crd.expect("crds/videocounter.yaml holds a CustomResourceDefinition")["metadata"]["name"],
        "videocounters.videocounter.io"
    );
}

/// The versions that must move together: chart appVersion and image tags
/// with the workspace version, the Kafka image with the tested Kafka.
#[test]
fn versions_agree() {
    let cargo = read_repo_file("Cargo.toml");
    let version = cargo
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .map(|v| v.trim_end_matches('"'))
        .expect("workspace version");
    let chart = &yaml_documents(&read_repo_file("charts/videocounter-operator/Chart.yaml"))[0];
    assert_eq!(chart["appVersion"], version, "Chart.yaml appVersion");
    let gateway = read_repo_file("deploy/gateway.yaml");
    assert!(
        gateway.contains(&format!("image: ghcr.io/videocounter/gateway:{version}")),
        "deploy/gateway.yaml image tag"
    );

    let versions = read_repo_file("e2e/versions.env");
    let kafka = versions
        .lines()
        .find_map(|l| l.strip_prefix("KAFKA_VERSION="))
        .expect("KAFKA_VERSION");
    assert!(
        read_repo_file("deploy/kafka.yaml").contains(&format!("image: apache/kafka:{kafka}")),
        "deploy/kafka.yaml image tag"
    );

    let rust_version = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .map(|v| v.trim_end_matches('"'))
        .expect("rust-version");
    let dockerfile = read_repo_file("docker/Dockerfile");
    let builder = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG RUST_VERSION="))
        .expect("ARG RUST_VERSION in docker/Dockerfile");
    let minor = |v: &str| v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok()).unwrap();
    assert!(
        minor(builder) >= minor(rust_version),
        "the image builds with Rust {builder}, the workspace needs {rust_version}"
    );
}
