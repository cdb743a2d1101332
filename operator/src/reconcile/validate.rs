//! Stage 2, validate (pure): the VideoCounter's spec becomes a
//! [`ValidCounter`], the worker configuration and everything the children
//! are built from, or one `InvalidSpec` problem naming every field at fault
//! (what the CRD's schema and CEL rules cannot see).
//!
//! The builders read the [`ValidCounter`], never the spec: what reaches the
//! cluster is what passed here. The same `WorkerConfig` drives the ConfigMap
//! (what the workers read), the Kafka topic plan (what the operator creates)
//! and the pod-template hash (so a configuration change restarts the pods).

use crate::crd::RESTART_ANNOTATION;
use crate::crd::{KafkaSpec, SecretKeyRef, ServiceSpec, StorageSpec, VideoCounter, WorkerSpec};
use crate::reconcile::outcome::Problem;
use crate::reconcile::pod_layout::{DATA_DIR, HTTP_PORT, secret_file};
use crate::reconcile::roll::budget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};
use std::collections::BTreeSet;
use std::path::PathBuf;
use videocounter_protocol::config::{KafkaConnection, SaslFiles, TlsFiles, TopicConfig};
use videocounter_protocol::{HumanDuration, WindowConfig, WorkerConfig};

/// Operator-wide defaults for what a spec leaves out.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// Image of workers whose spec names none (`--worker-image`).
    pub worker_image: String,
}

/// A VideoCounter that passed validation, with every default resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidCounter {
    /// The VideoCounter's name: the children are named after it.
    pub name: String,
    pub namespace: Option<String>,
    /// The controller owner reference every child carries.
    pub owner: Option<OwnerReference>,
    /// The worker configuration file.
    pub config: WorkerConfig,
    pub replicas: i32,
    /// Most pods unavailable at once, as a count (rollout and PDB alike).
    pub max_unavailable: i32,
    /// The worker image in effect.
    pub image: String,
    /// The worker pods' settings (resources, scheduling, extra env, ...).
    pub worker: WorkerSpec,
    pub storage: StorageSpec,
    /// The API Service, when enabled.
    pub service: Option<ServiceSpec>,
    pub pod_disruption_budget: bool,
    /// The `videocounter.io/restartedAt` annotation, copied to the pod template.
    pub restarted_at: Option<String>,
    /// Secrets the pods mount (the Kafka connection's), sorted.
    pub secrets: BTreeSet<String>,
    /// Replication factor of the topics the operator creates (`None`: the broker's default).
    pub replication_factor: Option<i32>,
}

/// Validates `vc`: the children's inputs, or the `InvalidSpec` problem.
pub fn validate(vc: &VideoCounter, defaults: &Defaults) -> Result<ValidCounter, Problem> {
    let config = worker_config(vc).map_err(|errors| Problem::new("InvalidSpec", errors.join("; ")))?;
    let spec = &vc.spec;
    Ok(ValidCounter {
        name: vc.name_any(),
        namespace: vc.namespace(),
        owner: vc.controller_owner_ref(&()),
        config,
        replicas: spec.replicas,
        max_unavailable: budget::max_unavailable(&spec.rollout.max_unavailable, spec.replicas),
        image: spec
            .worker
            .image
            .clone()
            .unwrap_or_else(|| defaults.worker_image.clone()),
        worker: spec.worker.clone(),
        storage: spec.storage.clone(),
        service: spec.service.enabled.then(|| spec.service.clone()),
        pod_disruption_budget: spec.pod_disruption_budget.enabled,
        restarted_at: vc.annotations().get(RESTART_ANNOTATION).cloned(),
        secrets: spec.kafka.secret_names(),
        replication_factor: spec.topics.replication_factor,
    })
}

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
            input_format: spec.topics.input_format,
            partitions: spec.topics.partitions.max(1) as u32,
            dead_letter: spec.topics.dead_letter.clone(),
        },
        windows,
        grace,
        retention,
        emit: spec.emit,
        processing_guarantee: spec.processing_guarantee,
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

/// The connection as the workers see it: Secrets become the files mounted.
fn kafka_connection(kafka: &KafkaSpec) -> KafkaConnection {
    let file = |r: &SecretKeyRef| secret_file(&r.name, &r.key);
    KafkaConnection {
        bootstrap_servers: kafka.bootstrap_servers.clone(),
        security_protocol: kafka.security_protocol,
        tls: kafka.tls.as_ref().map(|tls| TlsFiles {
            ca_file: tls.ca.as_ref().map(file),
            cert_file: tls.cert.as_ref().map(file),
            key_file: tls.key.as_ref().map(file),
        }),
        sasl: kafka.sasl.as_ref().map(|sasl| SaslFiles {
            mechanism: sasl.mechanism,
            username_file: file(&sasl.username),
            password_file: file(&sasl.password),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::build::config_yaml;
    use crate::reconcile::build::fixtures::{defaults, example, sasl_ssl_kafka};
    use crate::reconcile::status::windows_summary;

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
        vc.spec.kafka = sasl_ssl_kafka();
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
            validate(&vc, &defaults())
                .unwrap()
                .secrets
                .into_iter()
                .collect::<Vec<_>>(),
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

    #[test]
    fn an_invalid_spec_is_one_problem_naming_every_field() {
        let mut vc = example();
        vc.spec.grace = "soon".into();
        vc.spec.windows[0].retention = Some("forever".into());
        let problem = validate(&vc, &defaults()).unwrap_err();
        assert_eq!(problem.reason, "InvalidSpec");
        assert!(
            problem
                .message
                .starts_with("spec.grace: invalid duration \"soon\""),
            "{}",
            problem.message
        );
        assert!(
            problem
                .message
                .contains("; spec.windows[0].retention: invalid duration"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn defaults_and_switches_are_resolved() {
        let mut vc = example();
        let valid = validate(&vc, &defaults()).unwrap();
        assert_eq!(valid.image, defaults().worker_image);
        assert_eq!((valid.replicas, valid.max_unavailable), (2, 1));
        assert!(valid.service.is_some() && valid.pod_disruption_budget);
        assert_eq!(valid.owner.as_ref().unwrap().uid, "uid-1");
        vc.spec.worker.image = Some("registry.example/worker:2".into());
        vc.spec.service.enabled = false;
        vc.annotations_mut()
            .insert(RESTART_ANNOTATION.into(), "2025-01-01T00:00:00Z".into());
        let valid = validate(&vc, &defaults()).unwrap();
        assert_eq!(valid.image, "registry.example/worker:2");
        assert!(valid.service.is_none());
        assert_eq!(valid.restarted_at.as_deref(), Some("2025-01-01T00:00:00Z"));
    }
}
