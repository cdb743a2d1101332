//! The worker's configuration file, rendered from a VideoCounter (pure).
//!
//! The same `WorkerConfig` drives the ConfigMap (what the workers read), the
//! Kafka topic plan (what the operator creates) and the pod-template hash (so a
//! configuration change restarts the pods).

use crate::crd::{KafkaSpec, SecretKeyRef, VideoCounter};
use std::collections::BTreeSet;
use std::path::PathBuf;
use videocounter_protocol::config::{KafkaConnection, SaslFiles, TlsFiles, TopicConfig};
use videocounter_protocol::{HumanDuration, WindowConfig, WorkerConfig};

/// Where the ConfigMap is mounted in the worker container.
pub const CONFIG_DIR: &str = "/etc/videocounter";
/// File name of the worker configuration inside the ConfigMap.
pub const CONFIG_FILE: &str = "config.yaml";
/// Mount point of the persistent volume (RocksDB stores).
pub const DATA_DIR: &str = "/var/lib/videocounter";
/// Secrets are mounted under `<SECRETS_DIR>/<secret name>/<key>`.
pub const SECRETS_DIR: &str = "/var/run/secrets/videocounter";
/// The workers' HTTP port (health, readiness, metrics, queries).
pub const HTTP_PORT: i32 = 8080;

/// The worker configuration for a VideoCounter, or every problem found, each
/// naming the field at fault.
pub fn worker_config(vc: &VideoCounter) -> Result<WorkerConfig, Vec<String>> {
    let spec = &vc.spec;
    let mut errors = Vec::new();
    let mut duration = |field: String, text: &str| -> HumanDuration {
        text.parse().unwrap_or_else(|e| {
            errors.push(format!("spec.{field}: {e}"));
            HumanDuration::default()
        })
    };
    let grace = duration("grace".into(), &spec.grace);
    let retention = duration("retention".into(), &spec.retention);
    let commit_interval = duration("commitInterval".into(), &spec.commit_interval);
    let windows: Vec<WindowConfig> = spec
        .windows
        .iter()
        .enumerate()
        .map(|(i, w)| WindowConfig {
            size: duration(format!("windows[{i}].size"), &w.size),
            output_topic: w.output_topic.clone(),
            grace: w
                .grace
                .as_deref()
                .map(|g| duration(format!("windows[{i}].grace"), g)),
            retention: w
                .retention
                .as_deref()
                .map(|r| duration(format!("windows[{i}].retention"), r)),
        })
        .collect();
    if spec.topics.partitions < 1 {
        errors.push("spec.topics.partitions must be at least 1".into());
    }
    let config = WorkerConfig {
        application_id: vc.application_id(),
        kafka: kafka_connection(&spec.kafka),
        topics: TopicConfig {
            input: spec.topics.input.clone(),
            input_format: match spec.topics.input_format {
                crate::crd::InputFormat::Raw => videocounter_protocol::InputFormat::Raw,
                crate::crd::InputFormat::Json => videocounter_protocol::InputFormat::Json,
            },
            partitions: spec.topics.partitions.max(1) as u32,
            dead_letter: spec.topics.dead_letter.clone(),
        },
        windows,
        grace,
        retention,
        emit: match spec.emit {
            crate::crd::EmitMode::OnUpdate => videocounter_protocol::EmitMode::OnUpdate,
            crate::crd::EmitMode::OnWindowClose => videocounter_protocol::EmitMode::OnWindowClose,
        },
        processing_guarantee: match spec.processing_guarantee {
            crate::crd::ProcessingGuarantee::ExactlyOnce => {
                videocounter_protocol::ProcessingGuarantee::ExactlyOnce
            }
            crate::crd::ProcessingGuarantee::AtLeastOnce => {
                videocounter_protocol::ProcessingGuarantee::AtLeastOnce
            }
        },
        commit_interval,
        data_dir: PathBuf::from(DATA_DIR),
        http_listen: format!("0.0.0.0:{HTTP_PORT}"),
    };
    if let Err(problems) = config.validate() {
        errors.extend(problems.into_iter().map(|p| format!("spec: {p}")));
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

fn kafka_connection(kafka: &KafkaSpec) -> KafkaConnection {
    KafkaConnection {
        bootstrap_servers: kafka.bootstrap_servers.clone(),
        security_protocol: kafka.security_protocol.to_protocol(),
        tls: kafka.tls.as_ref().map(|tls| TlsFiles {
            ca_file: tls.ca.as_ref().map(secret_file),
            cert_file: tls.cert.as_ref().map(secret_file),
            key_file: tls.key.as_ref().map(secret_file),
        }),
        sasl: kafka.sasl.as_ref().map(|sasl| SaslFiles {
            mechanism: sasl.mechanism.to_protocol(),
            username_file: secret_file(&sasl.username),
            password_file: secret_file(&sasl.password),
        }),
    }
}

/// Path of a Secret key inside the worker container.
pub fn secret_file(r: &SecretKeyRef) -> PathBuf {
    PathBuf::from(SECRETS_DIR).join(&r.name).join(&r.key)
}

/// Every Secret key the Kafka connection refers to.
pub fn secret_refs(kafka: &KafkaSpec) -> Vec<&SecretKeyRef> {
    let mut refs = Vec::new();
    if let Some(tls) = &kafka.tls {
        refs.extend([&tls.ca, &tls.cert, &tls.key].into_iter().flatten());
    }
    if let Some(sasl) = &kafka.sasl {
        refs.extend([&sasl.username, &sasl.password]);
    }
    refs
}

/// Names of the Secrets to mount, each once, sorted.
pub fn secret_names(kafka: &KafkaSpec) -> BTreeSet<String> {
    secret_refs(kafka).into_iter().map(|r| r.name.clone()).collect()
}

/// The configuration file's text as the workers read it.
pub fn config_yaml(config: &WorkerConfig) -> String {
    serde_saphyr::to_string(config).expect("a WorkerConfig always serializes")
}

/// Window sizes for `kubectl get`, e.g. `1m,5m,10m`.
pub fn windows_summary(config: &WorkerConfig) -> String {
    config
        .windows
        .iter()
        .map(|w| w.size.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::example;

    #[test]
    fn the_example_renders_the_seed_setup() {
        let config = worker_config(&example()).unwrap();
        assert_eq!(config.application_id, "media.likes");
        assert_eq!(config.topics.input, "video_clicks_ingestion");
        assert_eq!(config.topics.partitions, 6);
        let outputs: Vec<_> = config
            .resolved_windows()
            .into_iter()
            .map(|w| w.output_topic)
            .collect();
        assert_eq!(
            outputs,
            [
                "video_aggregations_1",
                "video_aggregations_5",
                "video_aggregations_10"
            ]
        );
        assert_eq!(config.data_dir, PathBuf::from(DATA_DIR));
        assert_eq!(config.http_listen, "0.0.0.0:8080");
        assert_eq!(windows_summary(&config), "1m,5m,10m");
    }

    #[test]
    fn the_rendered_file_parses_back() {
        let config = worker_config(&example()).unwrap();
        let parsed: WorkerConfig = serde_saphyr::from_str(&config_yaml(&config)).unwrap();
        assert_eq!(parsed, config);
    }

    #[test]
    fn secrets_become_file_paths() {
        let mut vc = example();
        vc.spec.kafka = serde_json::from_value(serde_json::json!({
            "bootstrapServers": "k:9093",
            "securityProtocol": "SASL_SSL",
            "tls": {"ca": {"name": "kafka-ca", "key": "ca.crt"}},
            "sasl": {"mechanism": "SCRAM-SHA-512",
                     "username": {"name": "kafka-user", "key": "username"},
                     "password": {"name": "kafka-user", "key": "password"}}
        }))
        .unwrap();
        let config = worker_config(&vc).unwrap();
        let tls = config.kafka.tls.unwrap();
        assert_eq!(
            tls.ca_file,
            Some(PathBuf::from("/var/run/secrets/videocounter/kafka-ca/ca.crt"))
        );
        let sasl = config.kafka.sasl.unwrap();
        assert_eq!(
            sasl.password_file,
            PathBuf::from("/var/run/secrets/videocounter/kafka-user/password")
        );
        assert_eq!(
            secret_names(&vc.spec.kafka).into_iter().collect::<Vec<_>>(),
            ["kafka-ca", "kafka-user"]
        );
    }

    #[test]
    fn problems_the_schema_cannot_see_are_named() {
        let mut vc = example();
        vc.spec.windows[1].output_topic = Some("video_aggregations_1".into());
        vc.spec.windows[2].size = "99999999999999999999h".into();
        let errors = worker_config(&vc).unwrap_err().join("\n");
        assert!(
            errors.contains("spec.windows[2].size: invalid duration"),
            "{errors}"
        );
        assert!(
            errors.contains("outputTopic \"video_aggregations_1\" is used by another window"),
            "{errors}"
        );
    }
}
