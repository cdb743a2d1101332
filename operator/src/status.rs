//! The VideoCounter's status, computed (purely) from what one reconcile observed.

use crate::crd::{Condition, ConditionStatus, Phase, RolloutStatus, VideoCounterStatus};
use crate::rollout::RolloutPlan;

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// Something wrong that the operator cannot fix by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// CamelCase reason, e.g. `TopicPartitionMismatch`.
    pub reason: String,
    pub message: String,
}

impl Problem {
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

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
    pub problem: Option<&'a Problem>,
    /// The status before this reconcile (keeps transition times).
    pub previous: Option<&'a VideoCounterStatus>,
    /// Now, RFC 3339.
    pub now: &'a str,
}

pub fn compute(obs: &Observation) -> VideoCounterStatus {
    let plan = obs.plan;
    let settled = obs.revision_current && plan.is_some_and(RolloutPlan::is_settled);
    let (progressing, progressing_reason, progressing_message) = match plan {
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
        (None, Some(p)) if settled => (
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
    let (degraded_reason, degraded_message) = match obs.problem {
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
            obs.problem.is_some(),
            &degraded_reason,
            &degraded_message,
        ),
    ];
    let phase = match plan {
        _ if obs.problem.is_some() => Phase::Degraded,
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
    use crate::rollout::{ObservedPod, RolloutTarget, plan};

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
}
