//! The ConfigMap holding the worker's configuration file.

use super::{child_meta, names};
use crate::crd::VideoCounter;
use crate::render::{CONFIG_FILE, config_yaml};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use std::collections::BTreeMap;
use videocounter_protocol::WorkerConfig;

pub fn config_map(vc: &VideoCounter, config: &WorkerConfig) -> ConfigMap {
    ConfigMap {
        metadata: child_meta(vc, names::config_map(&vc.name_any())),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), config_yaml(config))])),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::{config, example};

    #[test]
    fn holds_the_rendered_configuration() {
        let vc = example();
        let cm = config_map(&vc, &config(&vc));
        assert_eq!(cm.metadata.name.as_deref(), Some("likes-config"));
        let text = &cm.data.unwrap()["config.yaml"];
        let parsed: WorkerConfig = serde_saphyr::from_str(text).unwrap();
        assert_eq!(parsed, config(&vc));
    }
}
