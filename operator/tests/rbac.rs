//! The operator runs as a ServiceAccount holding exactly the permissions
//! documented in `operator/src/lib.rs` (and the README), and does its whole
//! job: creates every child, reads a Secret, scales, prunes, rolls pods,
//! publishes Events, holds its Lease, without a single failed reconcile.

mod common;

use common::*;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{ListParams, PostParams};
use std::time::Duration;
use videocounter_e2e::kube::eventually;
use videocounter_operator::crd::ConditionStatus;

const TIMEOUT: Duration = Duration::from_secs(90);

/// The documented rules, as a namespaced Role.
fn operator_role() -> Role {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "videocounter-operator"},
        "rules": [
            {"apiGroups": ["videocounter.io"], "resources": ["videocounters"], "verbs": ["list", "watch"]},
            {"apiGroups": ["videocounter.io"], "resources": ["videocounters/status"], "verbs": ["patch"]},
            {"apiGroups": ["apps"], "resources": ["statefulsets"],
             "verbs": ["get", "list", "watch", "create", "patch"]},
            {"apiGroups": ["apps"], "resources": ["statefulsets/status"], "verbs": ["patch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch", "create", "patch"]},
            {"apiGroups": ["", "policy"], "resources": ["services", "poddisruptionbudgets"],
             "verbs": ["list", "watch", "create", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "patch"]}
        ]
    }))
    .unwrap()
}

/// A kubeconfig like the admin's, authenticating as the ServiceAccount.
async fn service_account_kubeconfig(ns: &TestNamespace) -> std::path::PathBuf {
    let accounts: Api<ServiceAccount> = ns.api();
    let account: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "videocounter-operator"}})).unwrap();
    accounts.create(&PostParams::default(), &account).await.unwrap();
    ns.api::<Role>()
        .create(&PostParams::default(), &operator_role())
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "videocounter-operator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "videocounter-operator"},
        "subjects": [{"kind": "ServiceAccount", "name": "videocounter-operator", "namespace": ns.name}]
    }))
    .unwrap();
    ns.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let request = serde_json::from_value(serde_json::json!({"spec": {"expirationSeconds": 3600}})).unwrap();
    let token = accounts
        .create_token_request("videocounter-operator", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;

    let admin = std::fs::read_to_string(videocounter_e2e::required_env("KUBECONFIG")).unwrap();
    let mut config: serde_json::Value = serde_saphyr::from_str(&admin).unwrap();
    config["users"][0]["user"] = serde_json::json!({"token": token});
    let path = std::env::temp_dir().join(format!("{}.kubeconfig", ns.name));
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn the_documented_permissions_are_enough() {
    let ns = TestNamespace::new("op-rbac").await;
    let kubeconfig = service_account_kubeconfig(&ns).await;
    let operator = Operator::start_as(&ns.name, "a", &kubeconfig);
    let topics = TestTopics::new(&ns.name);

    apply_vc(&ns, &example_counter(&topics, 2)).await;
    wait_ready(&ns, "likes", 2, TIMEOUT).await;
    kubectl_ok(&ns.name, &["scale", "vc/likes", "--replicas=3"]);
    wait_ready(&ns, "likes", 3, TIMEOUT).await;
    merge_patch_vc(
        &ns,
        "likes",
        serde_json::json!({"spec": {"service": {"enabled": false}, "worker": {"image": "example.invalid/w:2"}}}),
    )
    .await;
    wait_ready(&ns, "likes", 3, TIMEOUT).await;
    assert!(ns.api::<Service>().get_opt("likes").await.unwrap().is_none());
    assert!(
        pods_of(&ns, "likes")
            .await
            .iter()
            .all(|p| pod_image(p) == "example.invalid/w:2")
    );
    // Completing the rollout in the StatefulSet's status is allowed too.
    let stateful_sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = ns.api();
    eventually("currentRevision updated", TIMEOUT, || async {
        let status = stateful_sets.get("likes").await.ok()?.status?;
        (status.current_revision.is_some() && status.current_revision == status.update_revision).then_some(())
    })
    .await;

    // Reading a Secret: the SASL credentials are found (Kafka then refuses
    // SASL on its plaintext listener, which is a Degraded condition, not an error).
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "kafka-user"}, "stringData": {"user": "u", "password": "p"}
    }))
    .unwrap();
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let mut sasl = example_counter(&TestTopics::new(&format!("{}-sasl", ns.name)), 1);
    sasl["metadata"]["name"] = "sasl".into();
    sasl["spec"]["kafka"]["securityProtocol"] = "SASL_PLAINTEXT".into();
    sasl["spec"]["kafka"]["sasl"] = serde_json::json!({"mechanism": "PLAIN",
        "username": {"name": "kafka-user", "key": "user"}, "password": {"name": "kafka-user", "key": "password"}});
    apply_vc(&ns, &sasl).await;
    let reason = eventually("sasl Degraded", TIMEOUT, || async {
        let vc = ns.vcs().get("sasl").await.ok()?;
        let (status, reason, _) = condition(&vc, "Degraded")?;
        (status == ConditionStatus::True).then_some(reason)
    })
    .await;
    assert_eq!(reason, "KafkaUnavailable");

    let events: Api<Event> = ns.api();
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    for reason in ["TopicsCreated", "RollingRestart", "KafkaUnavailable"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} event in {reasons:?}"
        );
    }
    let (_, metrics) = operator.get("/metrics").await.unwrap();
    let errors: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("videocounter_operator_reconcile_errors_total{"))
        .collect();
    assert!(
        errors.is_empty(),
        "failed reconciles: {errors:?}\n{}",
        operator.log_tail()
    );
    delete_topics(&example_topic_names(&ns.name, &topics)).await;
}
