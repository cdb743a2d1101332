//! What the operator reports back: replica counts for the scale subresource,
//! rollout progress, and conditions per the Kubernetes API conventions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a VideoCounter.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct VideoCounterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Worker pods that exist.
    #[serde(default)]
    pub replicas: i32,

    /// Worker pods that are Ready (their state is restored).
    #[serde(default)]
    pub ready_replicas: i32,

    /// Worker pods on the current revision of the pod template.
    #[serde(default)]
    pub updated_replicas: i32,

    /// Label selector of the worker pods, as a string (for the scale
    /// subresource and HorizontalPodAutoscalers).
    #[serde(default)]
    pub selector: String,

    /// One-word summary: Pending, Running, Progressing or Degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// Window sizes counted, comma-separated (for `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<String>,

    /// The application id in effect (names the consumer group and internal topics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,

    /// Progress of the current rolling restart, if pods are not all on the
    /// current revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,

    /// Ready, Progressing and Degraded.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// One-word summary of a VideoCounter.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not every worker is up yet (first start).
    Pending,
    /// Every worker is Ready on the current revision.
    Running,
    /// Pods are being replaced or added.
    Progressing,
    /// Something needs attention; see the Degraded condition.
    Degraded,
}

/// Progress of a rolling restart.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The pod-template revision pods are moving to.
    pub revision: String,

    /// Pods Ready on that revision.
    pub updated: i32,

    /// Pods wanted.
    pub total: i32,

    /// Most pods that may be unavailable at once.
    pub max_unavailable: i32,

    /// Pods being replaced right now.
    #[serde(default)]
    pub current_batch: Vec<String>,
}

/// A condition, as in the Kubernetes API conventions.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Ready, Progressing or Degraded.
    #[serde(rename = "type")]
    pub type_: String,

    /// True, False or Unknown.
    pub status: ConditionStatus,

    /// The `metadata.generation` the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,

    /// Machine-readable CamelCase reason.
    pub reason: String,

    /// Human-readable details.
    #[serde(default)]
    pub message: String,
}

/// Status of a condition.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}
