//! The VideoCounter's status, computed (purely) from what one reconcile observed.
//! (Over 400 lines: two thirds are tests, one of them every combination of
//! what a reconcile can see, checked for conditions that contradict.)

use crate::crd::{Condition, ConditionStatus, Phase, RolloutStatus, VideoCounterStatus};
use crate::reconcile::outcome::Problem;
use crate::reconcile::roll::plan::RolloutPlan;

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// What one reconcile saw.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub generation: Option<i64>,
    pub selector: String,
    pub windows: Option<String>,
    pub application_id: Option<String>,
    /// Pods that exist and are not being deleted.
    pub existing_pods: i32,
    /// The rollout as planned this time; `None` before the StatefulSet has
    /// reported a revision.
    pub plan: Option<&'a RolloutPlan>,
    /// The update revision the plan is for.
    pub revision: Option<&'a str>,
    /// The StatefulSet controller has observed the latest template, so
    /// `revision` is the one pods must reach.
    pub revision_current: bool,
    /// A problem with the spec, its Secrets or Kafka: the StatefulSet is
    /// neither created nor changed and no pod is replaced until it is fixed.
    pub problem: Option<&'a Problem>,
    /// Worker pods that cannot start (bad image, bad configuration, crash
    /// loop, no node): reported, but the operator keeps applying the spec, so
    /// a fixed spec reaches the pods.
    pub pods_failing: Option<&'a Problem>,
    /// The status before this reconcile (keeps transition times).
    pub previous: Option<&'a VideoCounterStatus>,
    /// Now, RFC 3339.
    pub now: &'a str,
}

pub fn compute(obs: &Observation) -> VideoCounterStatus {
    let plan = obs.plan;
    let settled = obs.revision_current && plan.is_some_and(RolloutPlan::is_settled);
    let degraded = obs.problem.or(obs.pods_failing);
    let (progressing, progressing_reason, progressing_message) = match plan {
        // Nothing moves while the operator holds back: saying "Creating" or
        // "RollingUpdate" next to Degraded would contradict it.
        _ if obs.problem.is_some() => (
            false,
            "Blocked",
            format!(
                "the StatefulSet is not created or changed and no pod is replaced until the {} problem is fixed (see Degraded)",
                obs.problem.map_or("", |p| p.reason.as_str())
            ),
        ),
        None => (
            true,
            "Creating",
            "waiting for the StatefulSet to report its revision".to_string(),
        ),
        Some(_) if !obs.revision_current => (
            true,
            "TemplateChanged",
            "waiting for the StatefulSet controller to observe the new pod template".to_string(),
        ),
        Some(p) if p.outdated > 0 => (
            true,
            "RollingUpdate",
            format!(
                "{}/{} pods updated and ready; replacing at most {} at a time: {}",
                p.updated_ready,
                p.total,
                p.max_unavailable,
                p.current_batch.join(", ")
            ),
        ),
        Some(p) if !p.is_settled() => (
            true,
            "PodsStarting",
            format!("{}/{} pods ready", p.ready, p.total),
        ),
        Some(p) => (
            false,
            "Complete",
            format!("{} pods ready on the current revision", p.total),
        ),
    };
    let (ready, ready_reason, ready_message) = match (obs.problem, plan) {
        (Some(problem), _) => (false, problem.reason.clone(), problem.message.clone()),
        (None, Some(p)) if settled && obs.pods_failing.is_none() => (
            true,
            "AllPodsReady".into(),
            format!("{}/{} pods ready", p.ready, p.total),
        ),
        (None, Some(_)) if !obs.revision_current => {
            (false, "TemplateChanged".into(), progressing_message.clone())
        }
        (None, Some(p)) => (
            false,
            "PodsNotReady".into(),
            format!("{}/{} pods ready", p.ready, p.total),
        ),
        (None, None) => (false, "Creating".into(), progressing_message.clone()),
    };
    let (degraded_reason, degraded_message) = match degraded {
        Some(p) => (p.reason.clone(), p.message.clone()),
        None => ("Healthy".to_string(), String::new()),
    };
    let conditions = vec![
        condition(obs, READY, ready, &ready_reason, &ready_message),
        condition(
            obs,
            PROGRESSING,
            progressing,
            progressing_reason,
            &progressing_message,
        ),
        condition(
            obs,
            DEGRADED,
            degraded.is_some(),
            &degraded_reason,
            &degraded_message,
        ),
    ];
    let phase = match plan {
        _ if degraded.is_some() => Phase::Degraded,
        _ if settled => Phase::Running,
        Some(p) if obs.revision_current && p.outdated == 0 && p.ready == 0 && p.total > 0 => Phase::Pending,
        None => Phase::Pending,
        Some(_) => Phase::Progressing,
    };
    VideoCounterStatus {
        observed_generation: obs.generation,
        replicas: obs.existing_pods,
        ready_replicas: plan.map_or(0, |p| p.ready),
        updated_replicas: plan.map_or(0, |p| p.updated),
        selector: obs.selector.clone(),
        phase: Some(phase),
        windows: obs.windows.clone(),
        application_id: obs.application_id.clone(),
        rollout: plan
            .filter(|p| !p.is_settled() && obs.revision_current)
            .map(|p| RolloutStatus {
                revision: obs.revision.unwrap_or_default().to_string(),
                updated: p.updated_ready,
                total: p.total,
                max_unavailable: p.max_unavailable,
                current_batch: p.current_batch.clone(),
            }),
        conditions,
    }
}

fn condition(obs: &Observation, type_: &str, status: bool, reason: &str, message: &str) -> Condition {
    let status = if status {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    let previous = obs
        .previous
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_));
    let last_transition_time = match previous {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => obs.now.to_string(),
    };
    Condition {
        type_: type_.into(),
        status,
        observed_generation: obs.generation,
        last_transition_time,
        reason: reason.into(),
        message: message.into(),
    }
}

/// The condition of a type, if present.
pub fn find<'a>(status: &'a VideoCounterStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::roll::plan::{ObservedPod, RolloutTarget, plan};

    fn observed(ready: &[bool], revisions: &[&str]) -> RolloutPlan {
        let pods: Vec<ObservedPod> = ready
            .iter()
            .zip(revisions)
            .enumerate()
            .map(|(i, (r, rev))| ObservedPod {
                name: format!("likes-{i}"),
                ordinal: i as u32,
                revision: Some(rev.to_string()),
                ready: *r,
                terminating: false,
            })
            .collect();
        plan(
            &pods,
            &RolloutTarget {
                stateful_set: "likes",
                replicas: ready.len() as i32,
                update_revision: "new",
                max_unavailable: 1,
            },
        )
    }

    fn obs<'a>(plan: Option<&'a RolloutPlan>, problem: Option<&'a Problem>) -> Observation<'a> {
        Observation {
            generation: Some(3),
            selector: "a=b".into(),
            windows: Some("1m".into()),
            application_id: Some("media.likes".into()),
            existing_pods: plan.map_or(0, |p| p.total),
            plan,
            revision: Some("new"),
            revision_current: true,
            problem,
            pods_failing: None,
            previous: None,
            now: "2025-01-01T00:00:00Z",
        }
    }

    fn status_of(s: &VideoCounterStatus, type_: &str) -> (ConditionStatus, String) {
        let c = find(s, type_).unwrap();
        (c.status, c.reason.clone())
    }

    #[test]
    fn all_pods_ready_on_the_revision_is_ready() {
        let p = observed(&[true, true], &["new", "new"]);
        let s = compute(&obs(Some(&p), None));
        assert_eq!(
            status_of(&s, READY),
            (ConditionStatus::True, "AllPodsReady".into())
        );
        assert_eq!(
            status_of(&s, PROGRESSING),
            (ConditionStatus::False, "Complete".into())
        );
        assert_eq!(
            status_of(&s, DEGRADED),
            (ConditionStatus::False, "Healthy".into())
        );
        assert_eq!(s.phase, Some(Phase::Running));
        assert_eq!(
            (s.ready_replicas, s.updated_replicas, s.observed_generation),
            (2, 2, Some(3))
        );
        assert!(s.rollout.is_none());
        assert!(s.conditions.iter().all(|c| c.observed_generation == Some(3)));
    }

    #[test]
    fn a_rollout_reports_progress() {
        let p = observed(&[true, true, false], &["old", "old", "new"]);
        let s = compute(&obs(Some(&p), None));
        assert_eq!(
            status_of(&s, PROGRESSING),
            (ConditionStatus::True, "RollingUpdate".into())
        );
        assert_eq!(status_of(&s, READY).0, ConditionStatus::False);
        assert_eq!(s.phase, Some(Phase::Progressing));
        let r = s.rollout.unwrap();
        assert_eq!(
            (r.updated, r.total, r.current_batch),
            (0, 3, vec!["likes-2".to_string()])
        );
    }

    #[test]
    fn a_problem_degrades_with_its_reason() {
        let p = observed(&[true], &["new"]);
        let problem = Problem::new("TopicPartitionMismatch", "topic x has 3 partitions, want 6");
        let s = compute(&obs(Some(&p), Some(&problem)));
        assert_eq!(
            status_of(&s, DEGRADED),
            (ConditionStatus::True, "TopicPartitionMismatch".into())
        );
        assert_eq!(
            find(&s, DEGRADED).unwrap().message,
            "topic x has 3 partitions, want 6"
        );
        assert_eq!(status_of(&s, READY).0, ConditionStatus::False);
        assert_eq!(s.phase, Some(Phase::Degraded));
    }

    #[test]
    fn first_start_is_pending() {
        let p = observed(&[false, false], &["new", "new"]);
        let s = compute(&obs(Some(&p), None));
        assert_eq!(s.phase, Some(Phase::Pending));
        assert_eq!(
            status_of(&s, PROGRESSING),
            (ConditionStatus::True, "PodsStarting".into())
        );
        assert_eq!(compute(&obs(None, None)).phase, Some(Phase::Pending));
    }

    #[test]
    fn a_template_not_yet_observed_is_not_ready() {
        let p = observed(&[true, true], &["new", "new"]);
        let mut o = obs(Some(&p), None);
        o.revision_current = false;
        let s = compute(&o);
        assert_eq!(
            status_of(&s, READY),
            (ConditionStatus::False, "TemplateChanged".into())
        );
        assert_eq!(
            status_of(&s, PROGRESSING),
            (ConditionStatus::True, "TemplateChanged".into())
        );
        assert_eq!(s.phase, Some(Phase::Progressing));
    }

    #[test]
    fn transition_times_change_only_with_the_status() {
        let p = observed(&[true], &["new"]);
        let before = compute(&obs(Some(&p), None));
        let mut later = obs(Some(&p), None);
        later.previous = Some(&before);
        later.now = "2025-01-02T00:00:00Z";
        let problem = Problem::new("KafkaUnavailable", "no broker");
        later.problem = Some(&problem);
        let after = compute(&later);
        assert_eq!(
            find(&after, PROGRESSING).unwrap().last_transition_time,
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            find(&after, DEGRADED).unwrap().last_transition_time,
            "2025-01-02T00:00:00Z"
        );
    }

    #[test]
    fn degraded_before_the_stateful_set_exists_is_not_progressing() {
        let problem = Problem::new("KafkaUnavailable", "Kafka at kafka:9092 is unreachable");
        let s = compute(&obs(None, Some(&problem)));
        assert_eq!(
            status_of(&s, DEGRADED),
            (ConditionStatus::True, "KafkaUnavailable".into())
        );
        assert_eq!(
            status_of(&s, PROGRESSING),
            (ConditionStatus::False, "Blocked".into())
        );
        assert!(
            find(&s, PROGRESSING)
                .unwrap()
                .message
                .contains("KafkaUnavailable"),
            "{:?}",
            find(&s, PROGRESSING)
        );
        assert_eq!(
            status_of(&s, READY),
            (ConditionStatus::False, "KafkaUnavailable".into())
        );
        assert_eq!(s.phase, Some(Phase::Degraded));
    }

    #[test]
    fn failing_pods_degrade_a_rollout_that_keeps_waiting() {
        let p = observed(&[true, true, false], &["old", "old", "new"]);
        let failing = Problem::new("ImagePullFailed", "1 worker pod cannot start: pod likes-2 ...");
        let mut o = obs(Some(&p), None);
        o.pods_failing = Some(&failing);
        let s = compute(&o);
        assert_eq!(
            status_of(&s, DEGRADED),
            (ConditionStatus::True, "ImagePullFailed".into())
        );
        assert_eq!(
            find(&s, DEGRADED).unwrap().message,
            "1 worker pod cannot start: pod likes-2 ..."
        );
        // Still rolling (a fixed image continues it), not ready, and says so.
        assert_eq!(
            status_of(&s, PROGRESSING),
            (ConditionStatus::True, "RollingUpdate".into())
        );
        assert_eq!(
            status_of(&s, READY),
            (ConditionStatus::False, "PodsNotReady".into())
        );
        assert_eq!(s.phase, Some(Phase::Degraded));
        assert_eq!(s.rollout.unwrap().current_batch, ["likes-2"]);
    }

    /// Every combination of what a reconcile can see gives conditions that
    /// agree with each other and with the phase.
    #[test]
    fn conditions_never_contradict_each_other() {
        let problem = Problem::new("KafkaUnavailable", "down");
        let failing = Problem::new("CrashLoopBackOff", "1 worker pod cannot start: pod likes-0 ...");
        let plans = [
            None,
            Some(observed(&[true, true], &["new", "new"])),
            Some(observed(&[false, false], &["new", "new"])),
            Some(observed(&[true, false], &["old", "new"])),
            Some(observed(&[true, true], &["old", "old"])),
        ];
        for plan in &plans {
            for blocking in [None, Some(&problem)] {
                for pods in [None, Some(&failing)] {
                    for current in [true, false] {
                        let mut o = obs(plan.as_ref(), blocking);
                        o.pods_failing = pods;
                        o.revision_current = current;
                        let s = compute(&o);
                        let is = |t: &str| find(&s, t).unwrap().status == ConditionStatus::True;
                        let case = format!("{plan:?} {blocking:?} {pods:?} current={current}: {s:#?}");
                        assert!(!(is(READY) && is(DEGRADED)), "Ready and Degraded: {case}");
                        assert!(!(is(READY) && is(PROGRESSING)), "Ready and Progressing: {case}");
                        assert!(
                            !(blocking.is_some() && is(PROGRESSING)),
                            "Progressing while blocked: {case}"
                        );
                        assert_eq!(is(READY), s.phase == Some(Phase::Running), "{case}");
                        assert_eq!(is(DEGRADED), s.phase == Some(Phase::Degraded), "{case}");
                        for c in &s.conditions {
                            assert!(!c.reason.is_empty(), "{case}");
                            if c.status == ConditionStatus::True || c.type_ == READY {
                                assert!(!c.message.is_empty(), "{} has no message: {case}", c.type_);
                            }
                        }
                    }
                }
            }
        }
    }
}
