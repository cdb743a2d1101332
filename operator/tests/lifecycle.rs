//! The operator binary against the real control plane and Kafka: the example
//! VideoCounter gets every child, its topics and a Ready status; kubectl scale
//! works; a child removed from the spec is deleted; deleting the VideoCounter
//! cleans up everything, volumes included.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Resource, ResourceExt};
use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use std::time::Duration;
use videocounter_e2e::kafka;
use videocounter_e2e::kube::eventually;
use videocounter_operator::crd::{ConditionStatus, Phase, VideoCounter};

const TIMEOUT: Duration = Duration::from_secs(90);

fn controller_uid<K: Resource>(obj: &K) -> Option<String> {
    obj.meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true) && r.kind == "VideoCounter")
        .map(|r| r.uid.clone())
}

#[tokio::test]
async fn the_example_gets_every_child_its_topics_and_becomes_ready() {
    let ns = TestNamespace::new("op-create").await;
    let _operator = Operator::start(&ns.name, "a");
    let topics = TestTopics::new(&ns.name);
    let created = apply_vc(&ns, &example_counter(&topics, 2)).await;
    let uid = created.uid().unwrap();

    let vc = wait_ready(&ns, "likes", 2, TIMEOUT).await;
    let status = vc.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Running));
    assert_eq!(
        status.selector,
        "app.kubernetes.io/instance=likes,app.kubernetes.io/name=videocounter"
    );
    assert_eq!(status.windows.as_deref(), Some("1m,5m,10m"));
    assert_eq!(status.application_id, Some(format!("{}.likes", ns.name)));
    assert_eq!(
        condition(&vc, "Degraded").map(|c| c.0),
        Some(ConditionStatus::False)
    );
    assert_eq!(
        condition(&vc, "Progressing").map(|c| (c.0, c.1)),
        Some((ConditionStatus::False, "Complete".into()))
    );

    // Every child exists and is controlled by the VideoCounter.
    let sts = ns.api::<StatefulSet>().get("likes").await.unwrap();
    let cm = ns.api::<ConfigMap>().get("likes-config").await.unwrap();
    let headless = ns.api::<Service>().get("likes-headless").await.unwrap();
    let service = ns.api::<Service>().get("likes").await.unwrap();
    let pdb = ns.api::<PodDisruptionBudget>().get("likes").await.unwrap();
    for (kind, owner) in [
        ("StatefulSet", controller_uid(&sts)),
        ("ConfigMap", controller_uid(&cm)),
        ("headless Service", controller_uid(&headless)),
        ("Service", controller_uid(&service)),
        ("PodDisruptionBudget", controller_uid(&pdb)),
    ] {
        assert_eq!(
            owner.as_deref(),
            Some(uid.as_str()),
            "{kind} is not owned by the VideoCounter"
        );
    }
    let spec = sts.spec.unwrap();
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(spec.update_strategy.unwrap().type_.as_deref(), Some("OnDelete"));
    assert_eq!(spec.replicas, Some(2));
    let config = &cm.data.unwrap()["config.yaml"];
    let worker: videocounter_protocol::WorkerConfig = serde_saphyr::from_str(config).unwrap();
    assert_eq!(worker.kafka.bootstrap_servers, kafka::bootstrap());
    assert_eq!(worker.topics.input, topics.input);
    assert_eq!(
        pdb.spec.unwrap().max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );

    // Pods run with their name as static member id, on Bound volumes.
    let pods = pods_of(&ns, "likes").await;
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| pod_image(p) == TEST_IMAGE && is_ready(p)));
    let claims = ns
        .api::<PersistentVolumeClaim>()
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut claim_names: Vec<_> = claims.items.iter().map(|c| c.name_any()).collect();
    claim_names.sort();
    assert_eq!(claim_names, ["data-likes-0", "data-likes-1"]);

    // Every topic exists with 6 partitions (the input was absent, so it was created too).
    let names = example_topic_names(&ns.name, &topics);
    for name in &names {
        assert_eq!(kafka::partition_count(name), 6, "partitions of {name}");
    }
    let changelog = format!("{}.likes-counts-changelog", ns.name);
    let configs = kafka::admin()
        .describe_configs([&ResourceSpecifier::Topic(&changelog)], &AdminOptions::new())
        .await
        .unwrap();
    let policy = configs[0]
        .as_ref()
        .unwrap()
        .get("cleanup.policy")
        .unwrap()
        .value
        .clone();
    assert_eq!(policy.as_deref(), Some("compact"));

    // kubectl shows the printer columns.
    let table = kubectl_ok(&ns.name, &["get", "vc", "likes"]);
    for column in ["REPLICAS", "READY", "WINDOWS", "PHASE", "1m,5m,10m", "Running"] {
        assert!(table.contains(column), "kubectl get vc lacks {column}:\n{table}");
    }
    delete_topics(&names).await;
}

#[tokio::test]
async fn scale_prune_and_delete() {
    let ns = TestNamespace::new("op-scale").await;
    let _operator = Operator::start(&ns.name, "a");
    let topics = TestTopics::new(&ns.name);
    apply_vc(&ns, &example_counter(&topics, 2)).await;
    wait_ready(&ns, "likes", 2, TIMEOUT).await;

    // kubectl scale goes through the scale subresource.
    kubectl_ok(&ns.name, &["scale", "vc/likes", "--replicas=4"]);
    let vc = wait_ready(&ns, "likes", 4, TIMEOUT).await;
    assert_eq!(vc.spec.replicas, 4);
    assert_eq!(vc.status.as_ref().unwrap().replicas, 4);
    assert_eq!(statefulset_replicas(&ns, "likes").await, Some(4));
    let scale = kubectl_ok(
        &ns.name,
        &[
            "get",
            "--raw",
            &format!(
                "/apis/videocounter.io/v1alpha1/namespaces/{}/videocounters/likes/scale",
                ns.name
            ),
        ],
    );
    let scale: serde_json::Value = serde_json::from_str(&scale).unwrap();
    assert_eq!(scale["status"]["replicas"], 4);
    assert_eq!(
        scale["status"]["selector"],
        "app.kubernetes.io/instance=likes,app.kubernetes.io/name=videocounter"
    );
    // Scaling restarts no pod: the template did not change.
    let pdb = ns.api::<PodDisruptionBudget>().get("likes").await.unwrap();
    assert_eq!(
        pdb.spec.unwrap().max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(2))
    );

    // A child removed from the spec is deleted; the others stay.
    merge_patch_vc(
        &ns,
        "likes",
        serde_json::json!({"spec": {"service": {"enabled": false}}}),
    )
    .await;
    let services: Api<Service> = ns.api();
    eventually("Service likes deleted", TIMEOUT, || async {
        services.get_opt("likes").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(services.get_opt("likes-headless").await.unwrap().is_some());

    // Deleting the VideoCounter removes every child, pod and volume claim.
    ns.vcs()
        .delete("likes", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("every child, pod and claim gone", TIMEOUT, || async {
        let left = [
            ns.api::<StatefulSet>()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len(),
            ns.api::<ConfigMap>()
                .list(&ListParams::default().labels("app.kubernetes.io/managed-by=videocounter-operator"))
                .await
                .unwrap()
                .items
                .len(),
            services.list(&ListParams::default()).await.unwrap().items.len(),
            ns.api::<PodDisruptionBudget>()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len(),
            pods_of(&ns, "likes").await.len(),
            ns.api::<PersistentVolumeClaim>()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len(),
            ns.vcs().list(&ListParams::default()).await.unwrap().items.len(),
        ];
        (left == [0; 7]).then_some(())
    })
    .await;
    delete_topics(&example_topic_names(&ns.name, &topics)).await;
}

#[tokio::test]
async fn the_status_follows_the_generation() {
    let ns = TestNamespace::new("op-gen").await;
    let _operator = Operator::start(&ns.name, "a");
    let topics = TestTopics::new(&ns.name);
    apply_vc(&ns, &example_counter(&topics, 1)).await;
    let first: VideoCounter = wait_ready(&ns, "likes", 1, TIMEOUT).await;
    merge_patch_vc(
        &ns,
        "likes",
        serde_json::json!({"spec": {"commitInterval": "250ms"}}),
    )
    .await;
    let second = wait_ready(&ns, "likes", 1, TIMEOUT).await;
    assert_eq!(
        second.status.unwrap().observed_generation,
        Some(first.metadata.generation.unwrap() + 1)
    );
    let cm = ns.api::<ConfigMap>().get("likes-config").await.unwrap();
    assert!(cm.data.unwrap()["config.yaml"].contains("commitInterval: 250ms"));
    delete_topics(&example_topic_names(&ns.name, &topics)).await;
}
