//! The rolling-restart planner (pure): from the pods as observed right now,
//! which pods to delete so they come back on the new revision, without ever
//! having more than `maxUnavailable` pods down.
//!
//! The plan is derived only from what is observed (pod revisions, readiness,
//! deletion marks), never from memory, so an operator restarted mid-rollout
//! picks up exactly where the previous one stopped.
//!
//! Rules, for the pods of ordinals `0..replicas`:
//! - *unavailable* = `replicas` − pods that are Ready and not terminating
//!   (missing, starting, restoring and terminating pods all count);
//! - an outdated pod (not on the update revision) that is already unready costs
//!   nothing to replace: deleting it does not lower availability, and it may be
//!   unready precisely because its revision is broken;
//! - Ready outdated pods are deleted, highest ordinal first, only while
//!   unavailable + deleted ≤ `maxUnavailable`; then the planner waits for the
//!   replacements to become Ready (state restored) before the next batch.
//!
//! (Over 400 lines: most of it is tests, two of which play whole rollouts
//! for every fleet size and budget.)

use k8s_openapi::api::core::v1::Pod;

/// Label the StatefulSet controller puts on each pod: the revision it was created from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// A worker pod as observed from the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedPod {
    pub name: String,
    /// The ordinal from the pod name (`<statefulset>-<ordinal>`).
    pub ordinal: u32,
    /// The `controller-revision-hash` label.
    pub revision: Option<String>,
    /// The pod's Ready condition is True.
    pub ready: bool,
    /// The pod has a deletion timestamp.
    pub terminating: bool,
}

impl ObservedPod {
    /// The planner's view of a pod of `stateful_set`; `None` for pods whose
    /// name carries no ordinal of that StatefulSet.
    pub fn from_pod(stateful_set: &str, pod: &Pod) -> Option<Self> {
        let name = pod.metadata.name.clone()?;
        let ordinal = ordinal_of(stateful_set, &name)?;
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        Some(Self {
            name,
            ordinal,
            revision: pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_LABEL).cloned()),
            ready,
            terminating: pod.metadata.deletion_timestamp.is_some(),
        })
    }
}

/// What the planner needs to know besides the pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutTarget<'a> {
    /// Name of the StatefulSet (pod names are `<name>-<ordinal>`).
    pub stateful_set: &'a str,
    /// Wanted number of pods.
    pub replicas: i32,
    /// The StatefulSet's `status.updateRevision`.
    pub update_revision: &'a str,
    /// Most pods that may be unavailable at once (at least 1).
    pub max_unavailable: i32,
}

/// Where a rollout stands and what to do now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RolloutPlan {
    /// Pods to delete now, highest ordinal first.
    pub delete: Vec<String>,
    /// Pods wanted (`replicas`).
    pub total: i32,
    /// Pods on the update revision (terminating ones excluded).
    pub updated: i32,
    /// Pods on the update revision and Ready.
    pub updated_ready: i32,
    /// Pods Ready and not terminating.
    pub ready: i32,
    /// Pods not yet on the update revision (terminating ones excluded).
    pub outdated: i32,
    /// `total − ready` before this plan's deletions.
    pub unavailable: i32,
    /// The budget used.
    pub max_unavailable: i32,
    /// Pods being replaced or started right now, including `delete`.
    pub current_batch: Vec<String>,
}

impl RolloutPlan {
    /// Every wanted pod is on the update revision (it may still be starting).
    pub fn is_complete(&self) -> bool {
        self.outdated == 0
    }

    /// Every wanted pod is on the update revision and Ready.
    pub fn is_settled(&self) -> bool {
        self.is_complete() && self.updated_ready == self.total
    }

    /// Outdated pods remain, and the budget is used up by unavailable pods.
    pub fn is_waiting(&self) -> bool {
        !self.is_complete() && self.delete.is_empty()
    }
}

/// Ordinal of a pod named `<stateful_set>-<ordinal>`.
pub fn ordinal_of(stateful_set: &str, pod_name: &str) -> Option<u32> {
    pod_name
        .strip_prefix(stateful_set)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// Plans the next step of a rollout from the observed pods.
pub fn plan(pods: &[ObservedPod], target: &RolloutTarget) -> RolloutPlan {
    let total = target.replicas.max(0);
    let budget = target.max_unavailable.max(1);
    let wanted: Vec<&ObservedPod> = pods
        .iter()
        .filter(|p| (p.ordinal as i64) < total as i64)
        .collect();
    let on_update = |p: &ObservedPod| p.revision.as_deref() == Some(target.update_revision);
    let available = |p: &ObservedPod| p.ready && !p.terminating;

    let ready = wanted.iter().filter(|p| available(p)).count() as i32;
    let updated = wanted.iter().filter(|p| !p.terminating && on_update(p)).count() as i32;
    let updated_ready = wanted.iter().filter(|p| available(p) && on_update(p)).count() as i32;
    let mut outdated: Vec<&ObservedPod> = wanted
        .iter()
        .copied()
        .filter(|p| !p.terminating && !on_update(p))
        .collect();
    outdated.sort_by_key(|p| std::cmp::Reverse(p.ordinal));
    let unavailable = total - ready;

    let mut delete: Vec<&ObservedPod> = outdated.iter().copied().filter(|p| !p.ready).collect();
    let free = (budget - unavailable).max(0) as usize;
    delete.extend(outdated.iter().copied().filter(|p| p.ready).take(free));
    delete.sort_by_key(|p| std::cmp::Reverse(p.ordinal));

    let mut batch: Vec<(u32, String)> = (0..total as u32)
        .filter_map(|ordinal| match wanted.iter().find(|p| p.ordinal == ordinal) {
            None => Some((ordinal, format!("{}-{ordinal}", target.stateful_set))),
            Some(p) if p.terminating || (on_update(p) && !p.ready) => Some((ordinal, p.name.clone())),
            Some(p) if delete.iter().any(|d| d.name == p.name) => Some((ordinal, p.name.clone())),
            Some(_) => None,
        })
        .collect();
    batch.sort();

    RolloutPlan {
        delete: delete.iter().map(|p| p.name.clone()).collect(),
        total,
        updated,
        updated_ready,
        ready,
        outdated: outdated.len() as i32,
        unavailable,
        max_unavailable: budget,
        current_batch: batch.into_iter().map(|(_, name)| name).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "rev-old";
    const NEW: &str = "rev-new";

    fn pod(ordinal: u32, revision: &str, ready: bool) -> ObservedPod {
        ObservedPod {
            name: format!("likes-{ordinal}"),
            ordinal,
            revision: Some(revision.into()),
            ready,
            terminating: false,
        }
    }

    fn fleet(n: u32, revision: &str) -> Vec<ObservedPod> {
        (0..n).map(|i| pod(i, revision, true)).collect()
    }

    fn target(replicas: i32, max_unavailable: i32) -> RolloutTarget<'static> {
        RolloutTarget {
            stateful_set: "likes",
            replicas,
            update_revision: NEW,
            max_unavailable,
        }
    }

    #[test]
    fn pods_are_observed_from_their_labels_and_conditions() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "likes-3", "labels": {"controller-revision-hash": "likes-abc"},
                         "deletionTimestamp": "2025-01-01T00:00:00Z"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        assert_eq!(
            ObservedPod::from_pod("likes", &pod),
            Some(ObservedPod {
                name: "likes-3".into(),
                ordinal: 3,
                revision: Some("likes-abc".into()),
                ready: true,
                terminating: true,
            })
        );
        let unready: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "likes-0"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}
        }))
        .unwrap();
        assert!(!ObservedPod::from_pod("likes", &unready).unwrap().ready);
        assert_eq!(ObservedPod::from_pod("other", &unready), None);
    }

    #[test]
    fn ordinals_come_from_pod_names() {
        assert_eq!(ordinal_of("likes", "likes-12"), Some(12));
        assert_eq!(ordinal_of("likes", "likes-x"), None);
        assert_eq!(ordinal_of("likes", "likesx-1"), None);
        assert_eq!(ordinal_of("a-b", "a-b-3"), Some(3));
    }

    #[test]
    fn first_batch_is_the_budget_highest_ordinals_first() {
        let p = plan(&fleet(10, OLD), &target(10, 5));
        assert_eq!(p.delete, ["likes-9", "likes-8", "likes-7", "likes-6", "likes-5"]);
        assert_eq!(p.current_batch.len(), 5);
        assert_eq!((p.outdated, p.updated, p.unavailable), (10, 0, 0));
    }

    #[test]
    fn odd_counts_round_the_budget_down() {
        // floor(3 × 50%) = 1, floor(5 × 50%) = 2: the caller passes the budget.
        assert_eq!(plan(&fleet(3, OLD), &target(3, 1)).delete, ["likes-2"]);
        assert_eq!(plan(&fleet(5, OLD), &target(5, 2)).delete, ["likes-4", "likes-3"]);
    }

    #[test]
    fn a_single_replica_is_replaced_alone() {
        let p = plan(&fleet(1, OLD), &target(1, 1));
        assert_eq!(p.delete, ["likes-0"]);
    }

    #[test]
    fn waits_while_the_replacements_restore() {
        let mut pods = fleet(4, OLD);
        pods[3] = pod(3, NEW, false);
        pods[2] = pod(2, NEW, false);
        let p = plan(&pods, &target(4, 2));
        assert!(p.delete.is_empty() && p.is_waiting());
        assert_eq!(p.current_batch, ["likes-2", "likes-3"]);
        assert_eq!((p.updated, p.updated_ready), (2, 0));
    }

    #[test]
    fn next_batch_once_the_replacements_are_ready() {
        let mut pods = fleet(4, OLD);
        pods[3] = pod(3, NEW, true);
        pods[2] = pod(2, NEW, true);
        let p = plan(&pods, &target(4, 2));
        assert_eq!(p.delete, ["likes-1", "likes-0"]);
    }

    #[test]
    fn unready_pods_count_against_the_budget() {
        let mut pods = fleet(6, OLD);
        // An up-to-date pod that is unready for its own reasons uses one of three slots.
        pods[5] = pod(5, NEW, false);
        let p = plan(&pods, &target(6, 3));
        assert_eq!(p.delete, ["likes-4", "likes-3"]);
    }

    #[test]
    fn unready_outdated_pods_are_replaced_for_free() {
        let mut pods = fleet(6, OLD);
        pods[1].ready = false;
        pods[2].ready = false;
        pods[3].ready = false;
        // Three down already (budget 3): only the unready outdated pods go, which
        // leaves availability where it was; a broken old revision gets replaced.
        let p = plan(&pods, &target(6, 3));
        assert_eq!(p.delete, ["likes-3", "likes-2", "likes-1"]);
    }

    #[test]
    fn missing_and_terminating_pods_count_as_unavailable() {
        let mut pods = fleet(4, OLD);
        pods[3].terminating = true;
        pods.remove(2); // deleted, not yet recreated
        let p = plan(&pods, &target(4, 2));
        assert!(p.delete.is_empty());
        assert_eq!(p.unavailable, 2);
        assert_eq!(p.current_batch, ["likes-2", "likes-3"]);
    }

    #[test]
    fn nothing_to_do_when_every_pod_is_updated() {
        let p = plan(&fleet(3, NEW), &target(3, 1));
        assert!(p.is_complete() && p.is_settled() && p.delete.is_empty());
        assert!(p.current_batch.is_empty());
    }

    #[test]
    fn scale_up_during_a_rollout_waits_for_the_new_pods() {
        // 4 → 6 replicas: likes-4 and likes-5 do not exist yet and use the budget of 3.
        let p = plan(&fleet(4, OLD), &target(6, 3));
        assert_eq!(p.delete, ["likes-3"]);
        assert_eq!(p.current_batch, ["likes-3", "likes-4", "likes-5"]);
    }

    #[test]
    fn scale_down_during_a_rollout_ignores_the_removed_ordinals() {
        // 6 → 2 replicas: likes-2..5 are being removed by the StatefulSet controller.
        let mut pods = fleet(6, OLD);
        for p in &mut pods[2..] {
            p.terminating = true;
        }
        let p = plan(&pods, &target(2, 1));
        assert_eq!(p.delete, ["likes-1"]);
        assert_eq!((p.total, p.outdated, p.unavailable), (2, 2, 0));
    }

    #[test]
    fn zero_replicas_is_complete() {
        let p = plan(&[], &target(0, 1));
        assert!(p.is_settled() && p.delete.is_empty());
    }

    #[test]
    fn unknown_revisions_are_outdated() {
        let mut pods = fleet(2, NEW);
        pods[0].revision = None;
        assert_eq!(plan(&pods, &target(2, 1)).delete, ["likes-0"]);
    }

    /// A new revision whose pods never become Ready (bad image, bad
    /// configuration: ImagePullBackOff, CrashLoopBackOff, ...) costs exactly
    /// the first batch: the planner waits for the replacements however often
    /// it is asked, and the other pods keep running the old revision.
    #[test]
    fn a_revision_that_never_becomes_ready_stops_after_the_first_batch() {
        for replicas in 1..=12u32 {
            for percent in [10, 25, 50, 75, 100] {
                let budget = ((replicas * percent / 100) as i32).max(1);
                let mut pods = fleet(replicas, OLD);
                let mut deleted = Vec::new();
                for _ in 0..5 {
                    let p = plan(&pods, &target(replicas as i32, budget));
                    for name in &p.delete {
                        let pod = pods.iter_mut().find(|x| &x.name == name).unwrap();
                        // Recreated on the new revision, and stuck unready.
                        *pod = ObservedPod {
                            revision: Some(NEW.into()),
                            ready: false,
                            ..pod.clone()
                        };
                        deleted.push(name.clone());
                    }
                    if deleted.len() as u32 == replicas {
                        break; // 100%: everything was allowed at once
                    }
                    assert!(!p.is_settled());
                }
                assert_eq!(
                    deleted.len() as i32,
                    budget.min(replicas as i32),
                    "{replicas} pods at {percent}%: deleted {deleted:?}"
                );
                let old_ready = pods
                    .iter()
                    .filter(|p| p.ready && p.revision.as_deref() == Some(OLD))
                    .count() as i32;
                assert_eq!(old_ready, replicas as i32 - budget.min(replicas as i32));
                let p = plan(&pods, &target(replicas as i32, budget));
                assert!(p.delete.is_empty(), "{replicas} pods at {percent}%: {p:?}");
            }
        }
    }

    /// Plays whole rollouts: the "cluster" recreates deleted pods on the new
    /// revision unready, and makes one starting pod Ready per step. At every
    /// step no more than the budget is down, and the rollout ends.
    #[test]
    fn whole_rollouts_never_exceed_the_budget_and_finish() {
        for replicas in 1..=12u32 {
            for percent in [10, 25, 50, 75, 100] {
                let budget = ((replicas * percent / 100) as i32).max(1);
                let mut pods = fleet(replicas, OLD);
                let mut steps = 0;
                loop {
                    let p = plan(&pods, &target(replicas as i32, budget));
                    if p.is_settled() {
                        break;
                    }
                    for name in &p.delete {
                        let pod = pods.iter_mut().find(|x| &x.name == name).unwrap();
                        *pod = ObservedPod {
                            revision: Some(NEW.into()),
                            ready: false,
                            ..pod.clone()
                        };
                    }
                    let down = pods.iter().filter(|x| !x.ready).count() as i32;
                    assert!(
                        down <= budget,
                        "{replicas} pods at {percent}%: {down} down > {budget}"
                    );
                    if let Some(starting) = pods.iter_mut().find(|x| !x.ready) {
                        starting.ready = true;
                    }
                    steps += 1;
                    assert!(
                        steps <= 3 * replicas,
                        "{replicas} pods at {percent}% did not finish"
                    );
                }
                assert!(pods.iter().all(|p| p.revision.as_deref() == Some(NEW) && p.ready));
            }
        }
    }
}
