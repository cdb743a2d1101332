//! The child objects of a VideoCounter, built as pure functions of the
//! resource and its rendered worker configuration. The controller applies
//! them with server-side apply; nothing here talks to the API server.

mod configmap;
mod pdb;
mod services;
mod statefulset;

#[cfg(test)]
pub mod fixtures;

pub use configmap::config_map;
pub use pdb::pod_disruption_budget;
pub use services::{api_service, headless_service};
pub use statefulset::{CONFIG_HASH_ANNOTATION, stateful_set};

use crate::crd::{VideoCounter, scaled_value};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;
use videocounter_protocol::WorkerConfig;

pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const APP_NAME: &str = "videocounter";
pub const MANAGER: &str = "videocounter-operator";

/// Operator-wide settings that shape the children.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// Image of workers whose spec names none.
    pub default_worker_image: String,
}

/// Every child a VideoCounter should have right now. Optional children that
/// are `None` are deleted if they exist.
#[derive(Debug, Clone)]
pub struct Children {
    pub config_map: ConfigMap,
    pub headless_service: Service,
    pub api_service: Option<Service>,
    pub stateful_set: StatefulSet,
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
}

/// Builds every child of `vc`.
pub fn children(vc: &VideoCounter, config: &WorkerConfig, settings: &BuildSettings) -> Children {
    let config_map = config_map(vc, config);
    Children {
        stateful_set: stateful_set(vc, &config_map, settings),
        config_map,
        headless_service: headless_service(vc),
        api_service: vc.spec.service.enabled.then(|| api_service(vc)),
        pod_disruption_budget: vc
            .spec
            .pod_disruption_budget
            .enabled
            .then(|| pod_disruption_budget(vc)),
    }
}

/// Names of the children, derived from the VideoCounter's name.
pub mod names {
    pub fn stateful_set(vc: &str) -> String {
        vc.to_string()
    }
    pub fn headless_service(vc: &str) -> String {
        format!("{vc}-headless")
    }
    pub fn api_service(vc: &str) -> String {
        vc.to_string()
    }
    pub fn config_map(vc: &str) -> String {
        format!("{vc}-config")
    }
    pub fn pod_disruption_budget(vc: &str) -> String {
        vc.to_string()
    }
}

/// Labels that select a VideoCounter's pods. Never change them: a
/// StatefulSet's selector is immutable.
pub fn selector_labels(vc: &VideoCounter) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), APP_NAME.to_string()),
        (INSTANCE_LABEL.to_string(), vc.name_any()),
    ])
}

/// The selector as the string the scale subresource and HPAs read.
pub fn selector_string(vc: &VideoCounter) -> String {
    selector_labels(vc)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Labels on every child: the selector labels plus component and manager.
pub fn labels(vc: &VideoCounter) -> BTreeMap<String, String> {
    let mut labels = selector_labels(vc);
    labels.insert(COMPONENT_LABEL.into(), "worker".into());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGER.into());
    labels
}

/// Label selector of everything this operator manages for one VideoCounter.
pub fn managed_children_selector(vc_name: &str) -> String {
    format!("{INSTANCE_LABEL}={vc_name},{MANAGED_BY_LABEL}={MANAGER}")
}

/// Metadata of a child: name, namespace, labels and the controller owner
/// reference that makes the garbage collector delete it with the VideoCounter.
pub fn child_meta(vc: &VideoCounter, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: vc.namespace(),
        labels: Some(labels(vc)),
        owner_references: vc.controller_owner_ref(&()).map(|r| vec![r]),
        ..ObjectMeta::default()
    }
}

/// How many pods may be unavailable at once: `floor(replicas × maxUnavailable)`
/// for a percentage, the count itself otherwise, and never less than one.
pub fn max_unavailable(vc: &VideoCounter) -> i32 {
    scaled_value(&vc.spec.rollout.max_unavailable, vc.spec.replicas)
        .unwrap_or(1)
        .max(1)
}

/// A stable 64-bit FNV-1a hash as hex: equal input, equal output, across
/// operator versions and restarts (unlike `DefaultHasher`).
pub fn content_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::fixtures::example;
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn every_child_is_owned_by_the_video_counter() {
        let vc = example();
        let kids = children(&vc, &fixtures::config(&vc), &fixtures::settings());
        let metas = [
            &kids.config_map.metadata,
            &kids.headless_service.metadata,
            &kids.api_service.as_ref().unwrap().metadata,
            &kids.stateful_set.metadata,
            &kids.pod_disruption_budget.as_ref().unwrap().metadata,
        ];
        for meta in metas {
            let owner = &meta.owner_references.as_ref().unwrap()[0];
            assert_eq!(
                (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
                ("VideoCounter", "likes", "uid-1")
            );
            assert_eq!(owner.controller, Some(true));
            assert_eq!(meta.namespace.as_deref(), Some("media"));
            assert_eq!(meta.labels.as_ref().unwrap()[MANAGED_BY_LABEL], MANAGER);
        }
    }

    #[test]
    fn disabled_children_are_absent() {
        let mut vc = example();
        vc.spec.service.enabled = false;
        vc.spec.pod_disruption_budget.enabled = false;
        let kids = children(&vc, &fixtures::config(&vc), &fixtures::settings());
        assert!(kids.api_service.is_none() && kids.pod_disruption_budget.is_none());
    }

    #[test]
    fn budget_is_a_floor_of_at_least_one() {
        let mut vc = example();
        for (replicas, max, want) in [
            (2, "50%", 1),
            (3, "50%", 1),
            (10, "50%", 5),
            (1, "50%", 1),
            (0, "50%", 1),
            (7, "100%", 7),
            (4, "10%", 1),
        ] {
            vc.spec.replicas = replicas;
            vc.spec.rollout.max_unavailable = IntOrString::String(max.into());
            assert_eq!(max_unavailable(&vc), want, "{replicas} × {max}");
        }
        vc.spec.replicas = 10;
        vc.spec.rollout.max_unavailable = IntOrString::Int(3);
        assert_eq!(max_unavailable(&vc), 3);
    }

    #[test]
    fn selector_string_lists_labels_in_order() {
        assert_eq!(
            selector_string(&example()),
            "app.kubernetes.io/instance=likes,app.kubernetes.io/name=videocounter"
        );
    }

    #[test]
    fn content_hash_is_stable() {
        assert_eq!(content_hash(""), "cbf29ce484222325");
        assert_eq!(content_hash("a"), "af63dc4c8601ec8c");
        assert_ne!(content_hash("a: 1"), content_hash("a: 2"));
    }
}
