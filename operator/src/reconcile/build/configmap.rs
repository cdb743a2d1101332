//! The ConfigMap holding the worker's configuration file.

use super::{child_meta, names};
use crate::reconcile::pod_layout::CONFIG_FILE;
use crate::reconcile::validate::ValidCounter;
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;
use videocounter_protocol::WorkerConfig;

pub fn config_map(counter: &ValidCounter) -> ConfigMap {
    ConfigMap {
        metadata: child_meta(counter, names::config_map(&counter.name)),
        data: Some(BTreeMap::from([(
            CONFIG_FILE.to_string(),
            config_yaml(&counter.config),
        )])),
        ..ConfigMap::default()
    }
}

/// The configuration file's text as the workers read it.
pub fn config_yaml(config: &WorkerConfig) -> String {
    serde_saphyr::to_string(config).expect("a WorkerConfig always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::build::fixtures::{config, example, valid};

    #[test]
    fn holds_the_rendered_configuration() {
        let vc = example();
        let cm = config_map(&valid(&vc));
        assert_eq!(cm.metadata.name.as_deref(), Some("likes-config"));
        let text = &cm.data.unwrap()["config.yaml"];
        let parsed: WorkerConfig = serde_saphyr::from_str(text).unwrap();
        assert_eq!(parsed, config(&vc));
    }
}
