//! The rollout budget (pure): how many worker pods may be unavailable at once.
//! The rollout planner spends it; the PodDisruptionBudget states the same
//! count, so evictions by others and the operator's own replacements share it.

use crate::crd::scaled_value;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `floor(replicas × maxUnavailable)` for a percentage, the count itself
/// otherwise, and never less than one (a rollout must be able to start).
pub fn max_unavailable(max_unavailable: &IntOrString, replicas: i32) -> i32 {
    scaled_value(max_unavailable, replicas).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_a_floor_of_at_least_one() {
        for (replicas, max, want) in [
            (2, "50%", 1),
            (3, "50%", 1),
            (10, "50%", 5),
            (1, "50%", 1),
            (0, "50%", 1),
            (7, "100%", 7),
            (4, "10%", 1),
            (4, "half", 1),
        ] {
            let value = IntOrString::String(max.into());
            assert_eq!(max_unavailable(&value, replicas), want, "{replicas} × {max}");
        }
        assert_eq!(max_unavailable(&IntOrString::Int(3), 10), 3);
    }
}
