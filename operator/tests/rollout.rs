//! Rolling restarts against the real StatefulSet controller: a watcher checks
//! after every pod event that no more than `maxUnavailable` of the wanted pods
//! were unready, terminating or missing.

mod common;

use common::*;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use std::collections::BTreeMap;
use std::time::Duration;
use videocounter_e2e::kube::eventually;
use videocounter_e2e::unique_name;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Pods of `likes` by name → (uid, image, ready, scheduled).
async fn pod_states(ns: &TestNamespace) -> BTreeMap<String, (String, String, bool, bool)> {
    pods_of(ns, "likes")
        .await
        .iter()
        .map(|p: &Pod| {
            let scheduled = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
            (
                p.name_any(),
                (p.uid().unwrap(), pod_image(p), is_ready(p), scheduled),
            )
        })
        .collect()
}

/// Sets (or with `null`, removes) a label on one of kwok's fake nodes.
async fn label_node(ns: &TestNamespace, key: &str, value: serde_json::Value) {
    let nodes: Api<Node> = Api::all(ns.client.clone());
    nodes
        .patch(
            "kwok-node-0",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {key: value}}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_image_change_rolls_ten_pods_in_batches_of_five() {
    let ns = TestNamespace::new("op-roll").await;
    let operator = Operator::start(&ns.name, "a");
    let topics = TestTopics::new(&ns.name);
    apply_vc(&ns, &example_counter(&topics, 10)).await;
    wait_ready(&ns, "likes", 10, TIMEOUT).await;
    let before = pod_states(&ns).await;

    let new_image = "example.invalid/videocounter-worker:v2".to_string();
    let watcher = PodWatcher::start(&ns, "likes", 10, Some(new_image.clone())).await;
    merge_patch_vc(
        &ns,
        "likes",
        serde_json::json!({"spec": {"worker": {"image": new_image}}}),
    )
    .await;
    let vc = wait_ready(&ns, "likes", 10, TIMEOUT).await;
    let after = pod_states(&ns).await;
    let log = watcher.stop();

    assert!(
        log.max_unavailable <= 5,
        "{} pods were unavailable at once (budget 5) at {}\n{}",
        log.max_unavailable,
        log.worst,
        log.trace.join("\n")
    );
    assert!(log.max_unavailable >= 1, "no pod was ever replaced: {log:?}");
    assert!(
        log.mixed_ready,
        "the new image was never Ready next to the old one: not batched"
    );
    for (name, (uid, image, ready, _)) in &after {
        assert_ne!(&before[name].0, uid, "{name} was not replaced");
        assert_eq!(image, &new_image, "{name}");
        assert!(ready, "{name}");
        assert_eq!(
            log.created.get(name),
            Some(&1),
            "{name} was created more than once: {:?}",
            log.created
        );
    }
    assert_eq!(after.len(), 10);
    assert!(vc.status.unwrap().rollout.is_none());
    let deleted = operator.metric("videocounter_operator_pods_deleted_total").await;
    assert_eq!(deleted, Some(10.0));
    delete_topics(&example_topic_names(&ns.name, &topics)).await;
}

#[tokio::test]
async fn restarts_replace_every_pod_one_at_a_time() {
    let ns = TestNamespace::new("op-restart").await;
    let _operator = Operator::start(&ns.name, "a");
    let topics = TestTopics::new(&ns.name);
    apply_vc(&ns, &example_counter(&topics, 3)).await;
    wait_ready(&ns, "likes", 3, TIMEOUT).await;
    let before = pod_states(&ns).await;

    let watcher = PodWatcher::start(&ns, "likes", 3, None).await;
    kubectl_ok(
        &ns.name,
        &[
            "annotate",
            "vc/likes",
            "videocounter.io/restartedAt=2025-06-01T12:00:00Z",
            "--overwrite",
        ],
    );
    // The annotation is metadata: generation does not change, so wait for new pods.
    eventually("every pod replaced and Ready", TIMEOUT, || async {
        let now = pod_states(&ns).await;
        (now.len() == 3
            && now
                .iter()
                .all(|(n, (uid, _, ready, _))| *ready && before[n].0 != *uid))
        .then_some(())
    })
    .await;
    wait_ready(&ns, "likes", 3, TIMEOUT).await;

    // `kubectl rollout restart` on the StatefulSet is rolled the same way, and
    // the operator's server-side apply keeps kubectl's template annotation.
    let middle = pod_states(&ns).await;
    kubectl_ok(&ns.name, &["rollout", "restart", "statefulset/likes"]);
    eventually("every pod replaced again and Ready", TIMEOUT, || async {
        let now = pod_states(&ns).await;
        (now.len() == 3
            && now
                .iter()
                .all(|(n, (uid, _, ready, _))| *ready && middle[n].0 != *uid))
        .then_some(())
    })
    .await;
    wait_ready(&ns, "likes", 3, TIMEOUT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = watcher.stop();
    for name in before.keys() {
        assert_eq!(
            log.created.get(name),
            Some(&2),
            "{name}: one replacement per restart expected: {:?}",
            log.created
        );
    }
    // floor(3 × 50%) = 1: one pod at a time.
    assert_eq!(
        log.max_unavailable,
        1,
        "worst: {}\n{}",
        log.worst,
        log.trace.join("\n")
    );
    delete_topics(&example_topic_names(&ns.name, &topics)).await;
}

/// The new revision needs nodes labelled with a pool no node has yet, so the
/// first batch's replacements stay Pending: the rollout is stuck mid-way,
/// deterministically. The operator is killed there (SIGKILL, no lease release)
/// and a new one started; it must not delete more pods while the first batch
/// is unready, and must finish once the pool exists.
#[tokio::test]
async fn an_operator_killed_mid_rollout_resumes_within_the_budget() {
    let ns = TestNamespace::new("op-kill").await;
    let mut first = Operator::start(&ns.name, "first");
    let topics = TestTopics::new(&ns.name);
    apply_vc(&ns, &example_counter(&topics, 6)).await;
    wait_ready(&ns, "likes", 6, TIMEOUT).await;
    let before = pod_states(&ns).await;

    let pool = unique_name("pool");
    let pool_label = format!("videocounter.io/test-{pool}");
    let watcher = PodWatcher::start(&ns, "likes", 6, None).await;
    merge_patch_vc(
        &ns,
        "likes",
        serde_json::json!({"spec": {"worker": {"nodeSelector": {pool_label.clone(): "yes"}}}}),
    )
    .await;
    // Batch 1 = floor(6 × 50%) = 3 pods, recreated but unschedulable.
    let stuck = eventually("3 replacements Pending", TIMEOUT, || async {
        let now = pod_states(&ns).await;
        let pending: Vec<String> = now
            .iter()
            .filter(|(n, (uid, _, _, scheduled))| before[*n].0 != *uid && !scheduled)
            .map(|(n, _)| n.clone())
            .collect();
        (pending.len() == 3).then_some(pending)
    })
    .await;
    assert_eq!(
        stuck,
        ["likes-3", "likes-4", "likes-5"],
        "highest ordinals go first"
    );
    let (vc, rollout) = eventually("rollout progress in the status", TIMEOUT, || async {
        let vc = ns.vcs().get("likes").await.ok()?;
        let rollout = vc.status.as_ref()?.rollout.clone()?;
        (rollout.current_batch.len() == 3).then_some((vc, rollout))
    })
    .await;
    assert_eq!(
        (rollout.updated, rollout.total, rollout.max_unavailable),
        (0, 6, 3)
    );
    assert_eq!(rollout.current_batch, ["likes-3", "likes-4", "likes-5"]);
    assert_eq!(
        condition(&vc, "Progressing").map(|c| (c.0, c.1)),
        Some((
            videocounter_operator::crd::ConditionStatus::True,
            "RollingUpdate".into()
        ))
    );
    assert_eq!(
        vc.status.unwrap().phase,
        Some(videocounter_operator::crd::Phase::Progressing)
    );

    first.kill();
    let second = Operator::start(&ns.name, "second");
    // The new leader reconciles (lease expiry is 3 s), after the first batch got
    // stuck, and must wait, not delete.
    eventually("the second operator reconciling", TIMEOUT, || async {
        let n = second.metric("videocounter_operator_reconciles_total").await?;
        (n >= 1.0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now = pod_states(&ns).await;
    for name in ["likes-0", "likes-1", "likes-2"] {
        assert_eq!(
            now[name].0, before[name].0,
            "{name} was deleted while the budget was used up"
        );
    }
    assert_eq!(
        second.metric("videocounter_operator_pods_deleted_total").await,
        Some(0.0)
    );

    // The pool appears: the first batch becomes Ready, the second follows.
    label_node(&ns, &pool_label, "yes".into()).await;
    let finished = tokio::time::timeout(TIMEOUT, async {
        loop {
            let now = pod_states(&ns).await;
            if now.len() == 6
                && now
                    .iter()
                    .all(|(n, (uid, _, ready, _))| *ready && before[n].0 != *uid)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    label_node(&ns, &pool_label, serde_json::Value::Null).await;
    let log = watcher.stop();
    finished.unwrap_or_else(|_| panic!("rollout did not finish; operator log:\n{}", second.log_tail()));
    wait_ready(&ns, "likes", 6, TIMEOUT).await;
    assert!(
        log.max_unavailable <= 3,
        "{} unavailable at {}\n{}",
        log.max_unavailable,
        log.worst,
        log.trace.join("\n")
    );
    assert_eq!(log.max_unavailable, 3);
    assert_eq!(
        second.metric("videocounter_operator_pods_deleted_total").await,
        Some(3.0)
    );
    delete_topics(&example_topic_names(&ns.name, &topics)).await;
}
