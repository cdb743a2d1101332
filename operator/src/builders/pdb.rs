//! The PodDisruptionBudget: limits voluntary evictions (node drains) by others.
//! The operator's own rolling restarts delete pods directly and enforce the same
//! budget themselves.

use super::{child_meta, max_unavailable, names, selector_labels};
use crate::crd::VideoCounter;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

pub fn pod_disruption_budget(vc: &VideoCounter) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: child_meta(vc, names::pod_disruption_budget(&vc.name_any())),
        spec: Some(PodDisruptionBudgetSpec {
            // The resolved count, not the percentage: the disruption controller
            // rounds percentages up, the rollout rounds down; a count means both
            // allow the same number of pods down.
            max_unavailable: Some(IntOrString::Int(max_unavailable(vc))),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(vc)),
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
    use crate::builders::fixtures::example;

    #[test]
    fn mirrors_the_rollout_budget_as_a_count() {
        let mut vc = example();
        vc.spec.replicas = 5;
        let spec = pod_disruption_budget(&vc).spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(2)));
        assert_eq!(spec.selector.unwrap().match_labels.unwrap(), selector_labels(&vc));
    }
}
