//! The Kubernetes side of the spec: pods, volumes, rollout, Service, PDB.

use super::schema::{Quantity, int_or_string};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings of the worker pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSpec {
    /// Worker container image. Defaults to the operator's `--worker-image`
    /// (`ghcr.io/videocounter/worker:<operator version>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// When the kubelet pulls the image. Defaults to Kubernetes' rule (Always
    /// for `:latest`, IfNotPresent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Names of Secrets holding registry credentials for the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,

    /// CPU and memory of the worker container. RocksDB's block cache and
    /// write buffers live in this memory.
    #[serde(default)]
    pub resources: ResourcesSpec,

    /// Node labels the pods must be scheduled on (`nodeSelector`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Extra labels on the worker pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,

    /// Extra annotations on the worker pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,

    /// Extra environment variables of the worker container (for example
    /// `RUST_LOG`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub env: Vec<WorkerEnvVar>,

    /// Service account the pods run as. Workers need no Kubernetes API access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Priority class of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,

    /// Seconds a pod gets to finish its transaction and flush its stores after
    /// SIGTERM before it is killed.
    #[serde(default = "default_termination_grace")]
    #[schemars(range(min = 0, max = 3600))]
    pub termination_grace_period_seconds: i64,
}

impl Default for WorkerSpec {
    fn default() -> Self {
        Self {
            image: None,
            image_pull_policy: None,
            image_pull_secrets: Vec::new(),
            resources: ResourcesSpec::default(),
            node_selector: BTreeMap::new(),
            pod_labels: BTreeMap::new(),
            pod_annotations: BTreeMap::new(),
            env: Vec::new(),
            service_account_name: None,
            priority_class_name: None,
            termination_grace_period_seconds: default_termination_grace(),
        }
    }
}

fn default_termination_grace() -> i64 {
    60
}

/// Image pull policy.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImagePullPolicy {
    /// Pull on every pod start.
    Always,
    /// Pull only when the node lacks the image.
    IfNotPresent,
    /// Never pull; the image must be on the node.
    Never,
}

impl ImagePullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// An environment variable with a literal value.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WorkerEnvVar {
    /// Variable name.
    #[schemars(regex(pattern = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"), length(min = 1, max = 256))]
    pub name: String,

    /// Variable value.
    #[serde(default)]
    pub value: String,
}

/// Resource requests and limits, keyed by resource name (`cpu`, `memory`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesSpec {
    /// What the scheduler reserves for each pod.
    #[serde(default)]
    pub requests: BTreeMap<String, Quantity>,

    /// The most each pod may use; past the memory limit the pod is killed.
    #[serde(default)]
    pub limits: BTreeMap<String, Quantity>,
}

impl Default for ResourcesSpec {
    fn default() -> Self {
        Self {
            requests: BTreeMap::from([
                ("cpu".into(), Quantity::new("250m")),
                ("memory".into(), Quantity::new("512Mi")),
            ]),
            limits: BTreeMap::from([("memory".into(), Quantity::new("1Gi"))]),
        }
    }
}

/// The persistent volume of each worker (its RocksDB stores and checkpoints).
/// The stores can always be rebuilt from the changelog topic; the volume only
/// makes restarts fast.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = super::rules::storage_fixed())]
pub struct StorageSpec {
    /// Size of each worker's volume.
    #[serde(default = "default_storage_size")]
    #[schemars(
        regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"),
        length(max = 32)
    )]
    pub size: String,

    /// StorageClass of the volumes. Defaults to the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,

    /// What happens to the volumes when the VideoCounter is deleted or scaled down.
    #[serde(default)]
    pub retention_policy: PvcRetentionPolicy,
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
            retention_policy: PvcRetentionPolicy::default(),
        }
    }
}

fn default_storage_size() -> String {
    "1Gi".into()
}

/// The StatefulSet's `persistentVolumeClaimRetentionPolicy`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PvcRetentionPolicy {
    /// When the VideoCounter (and so its StatefulSet) is deleted. Default
    /// Delete: the state is rebuilt from the changelog topic if the resource
    /// is created again.
    #[serde(default = "PvcRetentionRule::delete")]
    pub when_deleted: PvcRetentionRule,

    /// When replicas are removed by scaling down. Default Retain: scaling up
    /// again reuses the volumes and restores only the changelog tail.
    #[serde(default = "PvcRetentionRule::retain")]
    pub when_scaled: PvcRetentionRule,
}

impl Default for PvcRetentionPolicy {
    fn default() -> Self {
        Self {
            when_deleted: PvcRetentionRule::Delete,
            when_scaled: PvcRetentionRule::Retain,
        }
    }
}

/// Keep or delete a volume claim.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvcRetentionRule {
    /// Keep the claim (and its volume).
    Retain,
    /// Delete the claim.
    Delete,
}

impl PvcRetentionRule {
    fn delete() -> Self {
        Self::Delete
    }
    fn retain() -> Self {
        Self::Retain
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retain => "Retain",
            Self::Delete => "Delete",
        }
    }
}

/// Rolling restarts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Most pods unavailable at once while pods are replaced, as a count or a
    /// percentage of `replicas` rounded down (at least one pod is always
    /// allowed). Pods already unready count against it. The PodDisruptionBudget
    /// uses the same value.
    #[serde(default = "default_max_unavailable")]
    #[schemars(schema_with = "int_or_string")]
    #[x_kube(validation = super::rules::max_unavailable())]
    pub max_unavailable: IntOrString,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        Self {
            max_unavailable: default_max_unavailable(),
        }
    }
}

fn default_max_unavailable() -> IntOrString {
    IntOrString::String("50%".into())
}

/// The Service for the workers' HTTP API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Whether to create the Service. The headless Service that names the pods
    /// always exists.
    #[serde(default = "default_true")]
    pub enabled: bool,

    /// Service type.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,

    /// Port the Service listens on (the pods listen on 8080).
    #[serde(default = "default_service_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            type_: ServiceType::default(),
            port: default_service_port(),
        }
    }
}

fn default_service_port() -> i32 {
    8080
}

fn default_true() -> bool {
    true
}

/// Kubernetes Service type.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServiceType {
    /// Reachable inside the cluster.
    #[default]
    ClusterIP,
    /// Also on a port of every node.
    NodePort,
    /// Also through the cloud's load balancer.
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

/// The PodDisruptionBudget.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetSpec {
    /// Whether to create it. Its `maxUnavailable` is `rollout.maxUnavailable`.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for PodDisruptionBudgetSpec {
    fn default() -> Self {
        Self { enabled: true }
    }
}
