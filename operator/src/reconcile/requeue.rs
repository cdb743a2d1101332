//! When to look at a VideoCounter again without being asked (pure). Watches
//! on the VideoCounter, its children and its pods trigger most reconciles;
//! these intervals cover what no watch sees (Kafka, Secrets, deleted topics).

use crate::reconcile::roll::plan::RolloutPlan;
use std::time::Duration;

/// The requeue interval after a reconcile that was `blocked` by a problem
/// (or not) and planned `plan` (`None`: no StatefulSet revision yet).
pub fn requeue_after(blocked: bool, plan: Option<&RolloutPlan>) -> Duration {
    match (blocked, plan) {
        // Kafka may come back, a Secret may appear: look again soon.
        (true, _) => Duration::from_secs(15),
        // The StatefulSet controller has yet to report a revision.
        (false, None) => Duration::from_secs(10),
        // Pod events drive a rollout; this is a safety net.
        (false, Some(plan)) if !plan.is_settled() => Duration::from_secs(30),
        // Re-check topics now and then (someone may delete one).
        (false, Some(_)) => Duration::from_secs(300),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(total: i32, updated_ready: i32, outdated: i32) -> RolloutPlan {
        RolloutPlan {
            total,
            updated_ready,
            outdated,
            ..RolloutPlan::default()
        }
    }

    #[test]
    fn a_problem_is_looked_at_again_soon_whatever_the_rollout() {
        for p in [None, Some(plan(2, 2, 0)), Some(plan(2, 0, 2))] {
            assert_eq!(requeue_after(true, p.as_ref()), Duration::from_secs(15));
        }
    }

    #[test]
    fn a_rollout_in_progress_has_a_safety_net() {
        assert_eq!(
            requeue_after(false, Some(&plan(4, 2, 2))),
            Duration::from_secs(30)
        );
        // Every pod updated but one still starting: not settled either.
        assert_eq!(
            requeue_after(false, Some(&plan(4, 3, 0))),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn a_settled_counter_is_checked_rarely() {
        assert_eq!(
            requeue_after(false, Some(&plan(3, 3, 0))),
            Duration::from_secs(300)
        );
        assert_eq!(requeue_after(false, None), Duration::from_secs(10));
    }
}
