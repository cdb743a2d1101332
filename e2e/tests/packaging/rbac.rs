//! The chart's cluster-wide RBAC (no watchNamespace) grants the operator's
//! ServiceAccount exactly the calls the operator makes, in any namespace,
//! and nothing else: asked of the real authorizer with `kubectl auth can-i`
//! while impersonating the ServiceAccount. (The namespaced variant is
//! exercised by the real operator in install.rs.)

use crate::support::{CHART, Namespace, helm, kubectl, run, stdout, try_run};
use videocounter_e2e::unique_name;

/// (verb, resource) the operator must be able to do in a managed namespace.
const GRANTED: &[(&str, &str)] = &[
    ("list", "videocounters.videocounter.io"),
    ("watch", "videocounters.videocounter.io"),
    ("patch", "videocounters.videocounter.io/status"),
    ("list", "statefulsets.apps"),
    ("watch", "statefulsets.apps"),
    ("get", "statefulsets.apps"),
    ("create", "statefulsets.apps"),
    ("patch", "statefulsets.apps"),
    ("delete", "statefulsets.apps"),
    ("patch", "statefulsets.apps/status"),
    ("watch", "services"),
    ("create", "services"),
    ("patch", "services"),
    ("delete", "services"),
    ("watch", "configmaps"),
    ("create", "configmaps"),
    ("patch", "configmaps"),
    ("delete", "configmaps"),
    ("watch", "poddisruptionbudgets.policy"),
    ("create", "poddisruptionbudgets.policy"),
    ("patch", "poddisruptionbudgets.policy"),
    ("delete", "poddisruptionbudgets.policy"),
    ("list", "pods"),
    ("watch", "pods"),
    ("delete", "pods"),
    ("get", "secrets"),
    ("create", "events.events.k8s.io"),
    ("patch", "events.events.k8s.io"),
];

/// What it must not be able to do: read every Secret, run or change
/// workloads it does not own the kind of, change its own permissions or the
/// CRD, or write the VideoCounters' specs (the users' intent).
const DENIED: &[(&str, &str)] = &[
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "secrets"),
    ("create", "pods"),
    ("patch", "pods"),
    ("create", "pods/exec"),
    ("create", "deployments.apps"),
    ("update", "statefulsets.apps"),
    ("patch", "videocounters.videocounter.io"),
    ("delete", "videocounters.videocounter.io"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("create", "persistentvolumeclaims"),
    ("delete", "persistentvolumeclaims"),
    ("create", "leases.coordination.k8s.io"),
];

fn can_i(user: &str, verb: &str, resource: &str, namespace: Option<&str>) -> bool {
    let mut cmd = kubectl();
    cmd.args(["auth", "can-i", verb, "--as", user]);
    match resource.split_once('/') {
        Some((resource, subresource)) => cmd.args([resource, "--subresource", subresource]),
        None => cmd.arg(resource),
    };
    match namespace {
        Some(ns) => cmd.args(["-n", ns]),
        None => cmd.arg("--all-namespaces"),
    };
    let out = try_run(&mut cmd);
    stdout(&out).trim() == "yes"
}

#[test]
fn cluster_wide_rbac_grants_what_the_operator_calls_and_nothing_more() {
    let operator_ns = Namespace::restricted("rbac-op");
    let other_ns = Namespace::restricted("rbac-any");
    let release = unique_name("rbac");
    run(helm().args(["install", &release, CHART, "--namespace", &operator_ns.name]));
    let user = format!(
        "system:serviceaccount:{}:{release}-videocounter-operator",
        operator_ns.name
    );

    let mut wrong = Vec::new();
    for (verb, resource) in GRANTED {
        if !can_i(&user, verb, resource, Some(&other_ns.name)) {
            wrong.push(format!("cannot {verb} {resource}"));
        }
    }
    for (verb, resource) in DENIED {
        if can_i(&user, verb, resource, Some(&other_ns.name)) {
            wrong.push(format!("can {verb} {resource}"));
        }
    }
    // Watches across all namespaces (the operator's default mode).
    for resource in ["videocounters.videocounter.io", "statefulsets.apps", "pods"] {
        if !can_i(&user, "watch", resource, None) {
            wrong.push(format!("cannot watch {resource} in all namespaces"));
        }
    }
    // Leader election only in the release namespace.
    for verb in ["get", "create", "patch"] {
        if !can_i(&user, verb, "leases.coordination.k8s.io", Some(&operator_ns.name)) {
            wrong.push(format!("cannot {verb} leases in the release namespace"));
        }
    }
    run(helm().args(["uninstall", &release, "--namespace", &operator_ns.name, "--wait"]));
    assert!(
        wrong.is_empty(),
        "the ServiceAccount {user}:\n{}",
        wrong.join("\n")
    );
    // And the grants go away with the release.
    assert!(!can_i(
        &user,
        "list",
        "videocounters.videocounter.io",
        Some(&other_ns.name)
    ));
}
