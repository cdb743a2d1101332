//! The `VideoCounter` custom resource (`videocounter.io/v1alpha1`).
//!
//! Every field carries a doc comment: it becomes the field's description in the
//! CRD, which is what `kubectl explain vc.spec...` prints. Rules the apiserver
//! can check at admission (ranges, unique window sizes, immutable partition
//! count) live here as schema constraints and CEL rules; everything else is
//! checked by the operator and reported as a `Degraded` condition.

// Several `printcolumn(type_ = "integer", ...)` are several columns, not a duplicate.
#![allow(clippy::duplicated_attributes)]

mod kafka;
mod rules;
mod schema;
mod status;
mod worker;

pub use kafka::{KafkaSpec, KafkaTls, SaslMechanism, SaslSpec, SecretField, SecretKeyRef, SecurityProtocol};
pub use schema::{Quantity, int_or_string, scaled_value};
pub use status::{Condition, ConditionStatus, Phase, RolloutStatus, VideoCounterStatus};
pub use worker::{
    ImagePullPolicy, PodDisruptionBudgetSpec, PvcRetentionPolicy, PvcRetentionRule, ResourcesSpec,
    RolloutSpec, ServiceSpec, ServiceType, StorageSpec, WorkerEnvVar, WorkerSpec,
};

use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};
use videocounter_protocol::config;
/// The enums the worker configuration uses, so the CRD and the file share one vocabulary.
pub use videocounter_protocol::{EmitMode, InputFormat, ProcessingGuarantee};

/// Annotation on a VideoCounter that restarts every worker pod when its value
/// changes (like `kubectl rollout restart`): the operator copies it into the pod
/// template, which makes a new revision that is rolled out in batches.
pub const RESTART_ANNOTATION: &str = "videocounter.io/restartedAt";

/// Counts likes per video in tumbling windows with a fleet of Kafka stream
/// processing workers (RocksDB state, Kafka changelog, exactly-once).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "videocounter.io",
    version = "v1alpha1",
    kind = "VideoCounter",
    plural = "videocounters",
    singular = "videocounter",
    shortname = "vc",
    category = "videocounter",
    namespaced,
    status = "VideoCounterStatus",
    derive = "PartialEq",
    doc = "A fleet of workers counting likes per video in tumbling windows, read from and written to Kafka.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Desired number of worker pods"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Worker pods that are Ready (state restored)"
    ),
    printcolumn(
        name = "Updated",
        type_ = "integer",
        json_path = ".status.updatedReplicas",
        description = "Worker pods on the current revision",
        priority = 1
    ),
    printcolumn(
        name = "Windows",
        type_ = "string",
        json_path = ".status.windows",
        description = "Window sizes counted"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Pending, Running, Progressing or Degraded"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct VideoCounterSpec {
    /// Number of worker pods. Partitions are shared among them; pods beyond
    /// `topics.partitions` stay idle. `kubectl scale vc/<name> --replicas=N` and
    /// HorizontalPodAutoscalers change this field through the scale subresource.
    // At least 0: the scale subresource's own check says so ("should be a
    // non-negative integer"); a schema minimum would say it a second time.
    #[serde(default = "default_replicas")]
    #[schemars(range(max = 1000))]
    pub replicas: i32,

    /// Kafka application id: names the consumer group, the transactional ids and
    /// the internal topics (`<applicationId>-repartition`, `-counts-changelog`,
    /// `-dead-letter`). Defaults to `<namespace>.<name>`. Changing it starts
    /// counting from scratch under new internal topics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9._-]{1,200}$"), length(max = 200))]
    pub application_id: Option<String>,

    /// How to reach the Kafka cluster. Credentials come from Secrets.
    pub kafka: KafkaSpec,

    /// Input topic and partitioning of every topic the workers create.
    #[serde(default)]
    pub topics: TopicsSpec,

    /// Tumbling windows to count likes in, each written to its own output topic.
    /// At least one; sizes must be positive and distinct.
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(validation = rules::distinct_window_sizes())]
    pub windows: Vec<WindowSpec>,

    /// Grace period of windows that set none: how long after a window's end late
    /// events are still counted in it (Go duration: `10s`, `1m30s`).
    #[serde(default = "default_grace")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    pub grace: String,

    /// How long a closed window stays in the local store (and queryable) for
    /// windows that set none.
    #[serde(default = "default_retention")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    pub retention: String,

    /// When a window count is written to its output topic.
    #[serde(default)]
    pub emit: EmitMode,

    /// Delivery guarantee between the input and the outputs.
    #[serde(default)]
    pub processing_guarantee: ProcessingGuarantee,

    /// How often the workers commit a transaction (or offsets under
    /// `atLeastOnce`). Smaller values lower output latency, larger ones raise
    /// throughput.
    #[serde(default = "default_commit_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    #[x_kube(validation = rules::positive_duration("commitInterval"))]
    pub commit_interval: String,

    /// The worker pods: image, resources, scheduling.
    #[serde(default)]
    pub worker: WorkerSpec,

    /// The persistent volume each worker keeps its RocksDB stores on.
    #[serde(default)]
    pub storage: StorageSpec,

    /// How changes that reach the pods are rolled out.
    #[serde(default)]
    pub rollout: RolloutSpec,

    /// The Service in front of the workers' HTTP API (health, metrics, queries).
    #[serde(default)]
    pub service: ServiceSpec,

    /// The PodDisruptionBudget that limits voluntary evictions (node drains).
    #[serde(default)]
    pub pod_disruption_budget: PodDisruptionBudgetSpec,
}

/// Topics read and created.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopicsSpec {
    /// Topic of like events. Created with `partitions` partitions if it does not
    /// exist; an existing one may have any partition count.
    #[serde(default = "default_input_topic")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9._-]{1,200}$"), length(max = 200))]
    pub input: String,

    /// Encoding of input records.
    #[serde(default)]
    pub input_format: InputFormat,

    /// Partitions of the repartition, changelog, output and dead-letter topics
    /// (and of the input topic when it is created). Fixed for the life of the
    /// resource: changing it would move every video id to another partition.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1, max = 10000))]
    #[x_kube(validation = rules::partitions_fixed())]
    pub partitions: i32,

    /// Dead-letter topic for input records that cannot be decoded. Defaults to
    /// `<applicationId>-dead-letter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9._-]{1,200}$"), length(max = 200))]
    pub dead_letter: Option<String>,

    /// Replication factor of the topics the operator creates. Defaults to the
    /// broker's `default.replication.factor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32))]
    pub replication_factor: Option<i32>,
}

impl Default for TopicsSpec {
    /// The worker configuration's defaults.
    fn default() -> Self {
        let topics = config::TopicConfig::default();
        Self {
            input: topics.input,
            input_format: topics.input_format,
            partitions: topics.partitions as i32,
            dead_letter: topics.dead_letter,
            replication_factor: None,
        }
    }
}

/// One tumbling window.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WindowSpec {
    /// Window length as a Go duration: `30s`, `1m`, `1h30m` (units ms, s, m, h).
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    #[x_kube(validation = rules::positive_duration("window size"))]
    pub size: String,

    /// Topic the window's counts are written to. Defaults to
    /// `video_aggregations_<minutes>` (`video_aggregations_30s` below a minute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9._-]{1,200}$"), length(max = 200))]
    pub output_topic: Option<String>,

    /// Grace period of this window; defaults to `spec.grace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    pub grace: Option<String>,

    /// Retention of this window's closed counts; defaults to `spec.retention`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    pub retention: Option<String>,
}

fn default_replicas() -> i32 {
    2
}
// The defaults are the worker configuration's, written as the spec writes them.
fn default_input_topic() -> String {
    config::default_input_topic()
}
fn default_partitions() -> i32 {
    config::default_partitions() as i32
}
fn default_grace() -> String {
    config::default_grace().to_string()
}
fn default_retention() -> String {
    config::default_retention().to_string()
}
fn default_commit_interval() -> String {
    config::default_commit_interval().to_string()
}

impl VideoCounter {
    /// The application id in effect: the spec's, or `<namespace>.<name>` (a dot
    /// cannot appear in a namespace, so two resources never share one).
    pub fn application_id(&self) -> String {
        self.spec.application_id.clone().unwrap_or_else(|| {
            format!(
                "{}.{}",
                self.metadata.namespace.as_deref().unwrap_or("default"),
                self.metadata.name.as_deref().unwrap_or_default()
            )
        })
    }
}

/// The CRD as YAML, as checked in under `crds/`.
pub fn crd_yaml() -> String {
    let crd = VideoCounter::crd();
    let yaml = serde_saphyr::to_string(&crd).expect("a CRD always serializes");
    format!(
        "# Generated by `videocounter-operator crd` from operator/src/crd; do not edit.\n# Regenerate with `make crds`.\n---\n{yaml}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_crd_matches_the_code() {
        let checked_in = include_str!("../../../crds/videocounter.yaml");
        assert!(
            checked_in == crd_yaml(),
            "crds/videocounter.yaml differs from what the code generates: run `make crds`"
        );
    }

    #[test]
    fn the_minimal_example_gets_every_default() {
        let spec: VideoCounterSpec = serde_json::from_value(serde_json::json!({
            "kafka": {"bootstrapServers": "kafka:9092"},
            "windows": [{"size": "1m"}]
        }))
        .unwrap();
        assert_eq!(spec.replicas, 2);
        assert_eq!(spec.topics.input, "video_clicks_ingestion");
        assert_eq!(spec.topics.partitions, 6);
        assert_eq!(spec.grace, "10s");
        assert_eq!(spec.rollout, RolloutSpec::default());
        assert!(spec.service.enabled && spec.pod_disruption_budget.enabled);
    }

    #[test]
    fn the_schema_carries_descriptions_and_rules() {
        let json = serde_json::to_string(&VideoCounter::crd()).unwrap();
        for needle in [
            "Number of worker pods",
            "self == oldSelf",
            "window sizes must be distinct",
            "FieldValueForbidden",
            "x-kubernetes-int-or-string",
            "labelSelectorPath",
        ] {
            assert!(json.contains(needle), "CRD lacks {needle:?}");
        }
    }
}
