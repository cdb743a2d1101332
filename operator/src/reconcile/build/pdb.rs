//! The PodDisruptionBudget: limits voluntary evictions (node drains) by others.
//! The operator's own rolling restarts delete pods directly and enforce the same
//! budget themselves.

use super::{child_meta, names, selector_labels};
use crate::reconcile::validate::ValidCounter;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub fn pod_disruption_budget(counter: &ValidCounter) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: child_meta(counter, names::pod_disruption_budget(&counter.name)),
        spec: Some(PodDisruptionBudgetSpec {
            // The resolved count, not the percentage: the disruption controller
            // rounds percentages up, the rollout rounds down; a count means both
            // allow the same number of pods down.
            max_unavailable: Some(IntOrString::Int(counter.max_unavailable)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&counter.name)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::build::fixtures::{example, valid};

    #[test]
    fn mirrors_the_rollout_budget_as_a_count() {
        let mut vc = example();
        vc.spec.replicas = 5;
        let spec = pod_disruption_budget(&valid(&vc)).spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(2)));
        assert_eq!(
            spec.selector.unwrap().match_labels.unwrap(),
            selector_labels("likes")
        );
    }
}
