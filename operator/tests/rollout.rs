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
    // The README's one command that waits for a rollout: it returns only once
    // every pod runs the new spec and is Ready (the condition carries the
    // generation, so the status from before the change does not satisfy it).
    let waited = kubectl_wait(&ns.name, &["vc/likes", "--for=condition=Ready", "--timeout=120s"]).await;
    let after = pod_states(&ns).await;
    assert!(
        waited.status.success(),
        "kubectl wait failed: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert!(
        after
            .values()
            .all(|(_, image, ready, _)| image == &new_image && *ready),
        "kubectl wait returned before the rollout finished: {after:?}"
    );
    let vc = ns.vcs().get("likes").await.unwrap();
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

    // One event per batch of deletions, each naming its pods: together they
    // name every pod once, highest ordinals first, at most 5 at a time.
    let batches: Vec<Vec<String>> = events_of(&ns, "likes")
        .await
        .into_iter()
        .filter(|(_, reason, _)| reason == "RollingRestart")
        .map(|(_, _, note)| {
            let pods = note
                .strip_prefix("replacing ")
                .and_then(|rest| rest.split(" to move them").next())
                .unwrap_or_else(|| panic!("unexpected note {note:?}"));
            pods.split(", ").map(String::from).collect()
        })
        .collect();
    assert_eq!(
        batches[0],
        ["likes-9", "likes-8", "likes-7", "likes-6", "likes-5"],
        "{batches:?}"
    );
    assert!(batches.iter().all(|b| b.len() <= 5), "{batches:?}");
    let named: Vec<String> = batches.concat();
    let every: Vec<String> = (0..10).rev().map(|i| format!("likes-{i}")).collect();
    assert_eq!(named, every, "each pod named once, in order: {batches:?}");

    // The StatefulSet tells the same story: its current revision is the new one.
    let sts: Api<k8s_openapi::api::apps::v1::StatefulSet> = ns.api();
    let status = eventually("the StatefulSet's currentRevision updated", TIMEOUT, || async {
        let status = sts.get("likes").await.ok()?.status?;
        (status.current_revision.is_some()
            && status.current_revision == status.update_revision
            && status.current_replicas == Some(10))
        .then_some(status)
    })
    .await;
    assert_eq!(status.updated_replicas, Some(10));
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
    watcher.mark("restart 1: videocounter.io/restartedAt on the VideoCounter");
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
    watcher.mark("restart 2: kubectl rollout restart statefulset/likes");
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

    // A restart through the spec (the pod template's annotations, as `kubectl
    // rollout restart` does for a Deployment) changes the generation, so the
    // README's `kubectl wait` returns only once it is done.
    let third = pod_states(&ns).await;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(
        readme.contains(r#"{"spec":{"worker":{"podAnnotations":{"kubectl.kubernetes.io/restartedAt":"#)
            && readme.contains("kubectl wait vc/likes --for=condition=Ready --timeout=10m"),
        "README.md no longer documents the restart this test runs"
    );
    watcher.mark("restart 3: podAnnotations in the spec");
    kubectl_ok(
        &ns.name,
        &[
            "patch",
            "vc",
            "likes",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"worker":{"podAnnotations":{"kubectl.kubernetes.io/restartedAt":"2025-06-01T13:00:00Z"}}}}"#,
        ],
    );
    let waited = kubectl_wait(&ns.name, &["vc/likes", "--for=condition=Ready", "--timeout=120s"]).await;
    let now = pod_states(&ns).await;
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert!(
        now.len() == 3
            && now
                .iter()
                .all(|(n, (uid, _, ready, _))| *ready && third[n].0 != *uid),
        "kubectl wait returned before every pod was replaced: {now:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = watcher.stop();
    for name in before.keys() {
        assert_eq!(
            log.created.get(name),
            Some(&3),
            "{name}: one replacement per restart expected: {:?}\n{}",
            log.created,
            log.trace.join("\n")
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
    // Pods that cannot start are named in the status, with the scheduler's
    // reason, and in a Warning event.
    let (_, reason, message) = eventually("the stuck pods in Degraded", TIMEOUT, || async {
        let vc = ns.vcs().get("likes").await.ok()?;
        let degraded = condition(&vc, "Degraded")?;
        (degraded.0 == videocounter_operator::crd::ConditionStatus::True
            && degraded.2.starts_with("3 worker pods cannot start"))
        .then_some(degraded)
    })
    .await;
    assert_eq!(reason, "Unschedulable");
    // The scheduler counts every node of the test ground (its real nodes too, if up).
    for pod in ["likes-3", "likes-4", "likes-5"] {
        let said = message
            .split(&format!("pod {pod} cannot be scheduled: 0/"))
            .nth(1)
            .unwrap_or_else(|| panic!("{pod} not named as unschedulable: {message}"));
        assert!(
            said.split_once(' ')
                .is_some_and(|(_, rest)| rest.starts_with("nodes are available")),
            "{message}"
        );
    }
    let vc = ns.vcs().get("likes").await.unwrap();
    assert_eq!(
        vc.status.as_ref().unwrap().phase,
        Some(videocounter_operator::crd::Phase::Degraded)
    );
    assert_eq!(condition(&vc, "Ready").map(|c| c.1), Some("PodsNotReady".into()));
    eventually("an Unschedulable warning event", TIMEOUT, || async {
        events_of(&ns, "likes")
            .await
            .iter()
            .any(|(t, r, note)| t == "Warning" && r == "Unschedulable" && note.contains("pod likes-3"))
            .then_some(())
    })
    .await;

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
    let vc = ns.vcs().get("likes").await.unwrap();
    assert_eq!(
        condition(&vc, "Degraded").map(|c| (c.0, c.1)),
        Some((
            videocounter_operator::crd::ConditionStatus::False,
            "Healthy".into()
        ))
    );
    assert!(
        events_of(&ns, "likes")
            .await
            .iter()
            .any(|(t, r, note)| t == "Normal" && r == "Recovered" && note.contains("Unschedulable")),
        "{:#?}",
        events_of(&ns, "likes").await
    );
    delete_topics(&example_topic_names(&ns.name, &topics)).await;
}

/// A worker the kubelet reports in CrashLoopBackOff (here its status is set
/// the way a real kubelet writes it; kwok leaves a Running pod's status
/// alone): the VideoCounter is Degraded with the pod, the container and how
/// it ended, a Warning event says the same, and both clear once the pod is
/// Ready again. (kwok turns every Pending pod Ready at once, so a pod stuck
/// in ImagePullBackOff cannot be held on these nodes; `pod_health`'s unit
/// tests cover those reasons.)
#[tokio::test]
async fn a_crash_looping_worker_is_named_in_the_status_and_an_event() {
    let ns = TestNamespace::new("op-crash").await;
    let _operator = Operator::start(&ns.name, "a");
    let topics = TestTopics::new(&ns.name);
    apply_vc(&ns, &example_counter(&topics, 2)).await;
    wait_ready(&ns, "likes", 2, TIMEOUT).await;

    let pods: Api<Pod> = ns.api();
    let crash = serde_json::json!({"status": {
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
            {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"}
        ],
        "containerStatuses": [{
            "name": "worker", "image": TEST_IMAGE, "imageID": "", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                "message": "back-off 1m20s restarting failed container=worker"}},
            "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                "startedAt": "2025-06-01T12:00:00Z", "finishedAt": "2025-06-01T12:00:01Z"}}
        }]
    }});
    pods.patch_status("likes-1", &PatchParams::default(), &Patch::Strategic(&crash))
        .await
        .unwrap();
    let (_, reason, message) = eventually("likes-1 in Degraded", TIMEOUT, || async {
        let vc = ns.vcs().get("likes").await.ok()?;
        let degraded = condition(&vc, "Degraded")?;
        (degraded.0 == videocounter_operator::crd::ConditionStatus::True).then_some(degraded)
    })
    .await;
    assert_eq!(reason, "CrashLoopBackOff");
    assert_eq!(
        message,
        "1 worker pod cannot start: pod likes-1 container worker CrashLoopBackOff: last exit code 2 (Error)"
    );
    // kwok did not overwrite the status: the report stays.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let vc = ns.vcs().get("likes").await.unwrap();
    assert_eq!(condition(&vc, "Degraded").map(|c| c.2), Some(message.clone()));
    assert_eq!(vc.status.as_ref().unwrap().ready_replicas, 1);
    eventually("a CrashLoopBackOff warning event", TIMEOUT, || async {
        events_of(&ns, "likes")
            .await
            .iter()
            .any(|(t, r, note)| t == "Warning" && r == "CrashLoopBackOff" && note == &message)
            .then_some(())
    })
    .await;

    // The container comes back and stays up: Ready, and no longer Degraded.
    let recovered = serde_json::json!({"status": {
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "ContainersReady", "status": "True"}
        ],
        "containerStatuses": [{
            "name": "worker", "image": TEST_IMAGE, "imageID": "", "ready": true, "restartCount": 5,
            "state": {"running": {"startedAt": "2025-06-01T12:02:00Z"}},
            "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                "startedAt": "2025-06-01T12:00:00Z", "finishedAt": "2025-06-01T12:00:01Z"}}
        }]
    }});
    pods.patch_status("likes-1", &PatchParams::default(), &Patch::Strategic(&recovered))
        .await
        .unwrap();
    wait_ready(&ns, "likes", 2, TIMEOUT).await;
    let vc = ns.vcs().get("likes").await.unwrap();
    assert_eq!(
        condition(&vc, "Degraded").map(|c| c.0),
        Some(videocounter_operator::crd::ConditionStatus::False)
    );
    delete_topics(&example_topic_names(&ns.name, &topics)).await;
}
