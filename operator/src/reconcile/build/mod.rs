//! Stage 4, build (pure): the child objects of a VideoCounter, each a
//! function of its [`ValidCounter`] alone (never of the raw spec). The apply
//! stage sends them with server-side apply; nothing here talks to the API server.

mod configmap;
mod pdb;
mod services;
mod statefulset;

#[cfg(test)]
pub mod fixtures;

pub use configmap::{config_map, config_yaml};
pub use pdb::pod_disruption_budget;
pub use services::{api_service, headless_service};
pub use statefulset::{CONFIG_HASH_ANNOTATION, stateful_set};

use crate::reconcile::validate::ValidCounter;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const APP_NAME: &str = "videocounter";
pub const MANAGER: &str = "videocounter-operator";

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

/// Builds every child.
pub fn children(counter: &ValidCounter) -> Children {
    let config_map = config_map(counter);
    Children {
        stateful_set: stateful_set(counter, &config_map),
        config_map,
        headless_service: headless_service(counter),
        api_service: counter
            .service
            .as_ref()
            .map(|service| api_service(counter, service)),
        pod_disruption_budget: counter
            .pod_disruption_budget
            .then(|| pod_disruption_budget(counter)),
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
pub fn selector_labels(vc_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), APP_NAME.to_string()),
        (INSTANCE_LABEL.to_string(), vc_name.to_string()),
    ])
}

/// The selector as the string the scale subresource and HPAs read.
pub fn selector_string(vc_name: &str) -> String {
    selector_labels(vc_name)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Labels on every child: the selector labels plus component and manager.
pub fn labels(vc_name: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(vc_name);
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
pub fn child_meta(counter: &ValidCounter, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: counter.namespace.clone(),
        labels: Some(labels(&counter.name)),
        owner_references: counter.owner.clone().map(|r| vec![r]),
        ..ObjectMeta::default()
    }
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
    use super::fixtures::{example, valid};
    use super::*;

    #[test]
    fn every_child_is_owned_by_the_video_counter() {
        let vc = example();
        let kids = children(&valid(&vc));
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
        let kids = children(&valid(&vc));
        assert!(kids.api_service.is_none() && kids.pod_disruption_budget.is_none());
    }

    #[test]
    fn selector_string_lists_labels_in_order() {
        assert_eq!(
            selector_string(&example().metadata.name.unwrap()),
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
