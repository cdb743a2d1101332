//! The worker's configuration file (YAML, camelCase keys). The operator
//! writes it into a ConfigMap; people running the worker by hand write it
//! themselves or use the worker's flags.
//!
//! The enums here (input format, emit mode, processing guarantee, security
//! protocol, SASL mechanism) and the defaults are the one vocabulary: the
//! operator's `VideoCounter` resource uses the same types and default
//! functions, so the CRD and the file cannot drift apart.
//!
//! A window has one type per stage: `VideoCounter`'s `WindowSpec` (what the
//! user writes, durations as text), [`WindowConfig`] (this file),
//! [`ResolvedWindow`] (every default applied, in milliseconds), and the
//! worker's counting window (sizes as stream-time arithmetic).

mod kafka;

pub use crate::topics::is_valid_topic_name;
pub use kafka::{KafkaConnection, SaslFiles, SaslMechanism, SecurityProtocol, TlsFiles};

use crate::duration::HumanDuration;
use crate::topics;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkerConfig {
    /// Names the consumer group, the transactional ids and the internal topics.
    #[serde(default = "default_application_id")]
    pub application_id: String,
    /// May be left out when the bootstrap servers come from elsewhere (the
    /// worker's `--bootstrap-servers`); validation then requires them.
    #[serde(default)]
    pub kafka: KafkaConnection,
    #[serde(default)]
    pub topics: TopicConfig,
    #[serde(default = "default_windows")]
    pub windows: Vec<WindowConfig>,
    /// Grace period of windows that do not set their own.
    #[serde(default = "default_grace")]
    pub grace: HumanDuration,
    /// How long a closed window stays queryable, for windows that do not set their own.
    #[serde(default = "default_retention")]
    pub retention: HumanDuration,
    #[serde(default)]
    pub emit: EmitMode,
    #[serde(default)]
    pub processing_guarantee: ProcessingGuarantee,
    /// How often a transaction (or an offset commit) closes.
    #[serde(default = "default_commit_interval")]
    pub commit_interval: HumanDuration,
    /// Where the RocksDB stores live (the pod's persistent volume).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Address of the HTTP server (health, readiness, metrics, queries).
    #[serde(default = "default_http_listen")]
    pub http_listen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicConfig {
    #[serde(default = "default_input_topic")]
    pub input: String,
    #[serde(default)]
    pub input_format: InputFormat,
    /// Partitions of the repartition, changelog, output and dead-letter topics
    /// (and of the input topic when it has to be created). Fixed for life:
    /// changing it re-shards every video id.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            input: default_input_topic(),
            input_format: InputFormat::default(),
            partitions: default_partitions(),
            dead_letter: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum InputFormat {
    /// The value is the video id as UTF-8 text (the Faust seed's format).
    #[default]
    Raw,
    /// `{"video_id": "...", "count": 1, "ts": <epoch ms>}`.
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WindowConfig {
    pub size: HumanDuration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<HumanDuration>,
}

impl WindowConfig {
    pub fn of_size(size: HumanDuration) -> Self {
        Self {
            size,
            output_topic: None,
            grace: None,
            retention: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EmitMode {
    /// The new count of every changed window at every commit.
    #[default]
    OnUpdate,
    /// One final record per window once stream time passes its end plus grace.
    OnWindowClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ProcessingGuarantee {
    /// Outputs, changelog and offsets commit in one Kafka transaction.
    #[default]
    ExactlyOnce,
    /// Faster; after a crash some events may be counted twice.
    AtLeastOnce,
}

/// A window with every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedWindow {
    pub size_ms: u64,
    pub grace_ms: u64,
    pub retention_ms: u64,
    /// The `type` field of output records: `1min`, `5min`, `30s`.
    pub label: String,
    pub output_topic: String,
}

/// The output record `type` for a window size: minutes as `Nmin` like the seed, else seconds or ms.
pub fn window_label(size_ms: u64) -> String {
    if size_ms.is_multiple_of(60_000) {
        format!("{}min", size_ms / 60_000)
    } else if size_ms.is_multiple_of(1_000) {
        format!("{}s", size_ms / 1_000)
    } else {
        format!("{size_ms}ms")
    }
}

/// Default output topic: `video_aggregations_<minutes>` as in the seed.
pub fn default_output_topic(size_ms: u64) -> String {
    if size_ms.is_multiple_of(60_000) {
        format!("video_aggregations_{}", size_ms / 60_000)
    } else {
        format!("video_aggregations_{}", window_label(size_ms))
    }
}

impl WorkerConfig {
    /// A configuration with every default, for the given brokers.
    pub fn with_bootstrap(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            application_id: default_application_id(),
            kafka: KafkaConnection {
                bootstrap_servers: bootstrap_servers.into(),
                security_protocol: SecurityProtocol::default(),
                tls: None,
                sasl: None,
            },
            topics: TopicConfig::default(),
            windows: default_windows(),
            grace: default_grace(),
            retention: default_retention(),
            emit: EmitMode::default(),
            processing_guarantee: ProcessingGuarantee::default(),
            commit_interval: default_commit_interval(),
            data_dir: default_data_dir(),
            http_listen: default_http_listen(),
        }
    }

    pub fn dead_letter_topic(&self) -> String {
        self.topics
            .dead_letter
            .clone()
            .unwrap_or_else(|| topics::default_dead_letter_topic(&self.application_id))
    }

    pub fn resolved_windows(&self) -> Vec<ResolvedWindow> {
        self.windows
            .iter()
            .map(|w| {
                let size_ms = w.size.as_millis();
                ResolvedWindow {
                    size_ms,
                    grace_ms: w.grace.unwrap_or(self.grace).as_millis(),
                    retention_ms: w.retention.unwrap_or(self.retention).as_millis(),
                    label: window_label(size_ms),
                    output_topic: w
                        .output_topic
                        .clone()
                        .unwrap_or_else(|| default_output_topic(size_ms)),
                }
            })
            .collect()
    }

    /// Every problem with the configuration, each naming the field at fault.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if !is_valid_topic_name(&self.application_id) {
            errors.push(format!(
                "applicationId {:?} must be 1-200 characters of [a-zA-Z0-9._-]",
                self.application_id
            ));
        }
        if self.kafka.bootstrap_servers.trim().is_empty() {
            errors.push("kafka.bootstrapServers is empty".into());
        }
        if self.kafka.security_protocol.uses_sasl() && self.kafka.sasl.is_none() {
            errors.push(format!(
                "kafka.securityProtocol {:?} needs kafka.sasl (mechanism, usernameFile, passwordFile)",
                self.kafka.security_protocol
            ));
        }
        if self.topics.partitions == 0 {
            errors.push("topics.partitions must be at least 1".into());
        }
        if self.windows.is_empty() {
            errors.push("windows: at least one window is needed".into());
        }
        let mut sizes = BTreeSet::new();
        let mut outputs = BTreeSet::new();
        for (i, w) in self.resolved_windows().iter().enumerate() {
            if w.size_ms == 0 {
                errors.push(format!("windows[{i}].size must be positive"));
            } else if !sizes.insert(w.size_ms) {
                errors.push(format!(
                    "windows[{i}].size {} appears twice",
                    HumanDuration::from_millis(w.size_ms)
                ));
            }
            if !is_valid_topic_name(&w.output_topic) {
                errors.push(format!(
                    "windows[{i}].outputTopic {:?} is not a valid topic name",
                    w.output_topic
                ));
            } else if !outputs.insert(w.output_topic.clone()) {
                errors.push(format!(
                    "windows[{i}].outputTopic {:?} is used by another window",
                    w.output_topic
                ));
            }
        }
        for (field, name) in [
            ("topics.input", self.topics.input.clone()),
            ("topics.deadLetter", self.dead_letter_topic()),
        ] {
            if !is_valid_topic_name(&name) {
                errors.push(format!("{field} {name:?} is not a valid topic name"));
            }
        }
        if self.commit_interval.as_millis() == 0 {
            errors.push("commitInterval must be positive".into());
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

fn default_application_id() -> String {
    "videocounter".into()
}
pub fn default_input_topic() -> String {
    "video_clicks_ingestion".into()
}
pub fn default_partitions() -> u32 {
    6
}
pub fn default_windows() -> Vec<WindowConfig> {
    [1, 5, 10]
        .into_iter()
        .map(|m| WindowConfig::of_size(HumanDuration::from_mins(m)))
        .collect()
}
pub fn default_grace() -> HumanDuration {
    HumanDuration::from_secs(10)
}
pub fn default_retention() -> HumanDuration {
    HumanDuration::from_mins(30)
}
pub fn default_commit_interval() -> HumanDuration {
    HumanDuration::from_millis(100)
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/videocounter")
}
fn default_http_listen() -> String {
    "0.0.0.0:8080".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_seed() {
        let c = WorkerConfig::with_bootstrap("k:9092");
        let w = c.resolved_windows();
        let topics: Vec<_> = w.iter().map(|w| w.output_topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "video_aggregations_1",
                "video_aggregations_5",
                "video_aggregations_10"
            ]
        );
        let labels: Vec<_> = w.iter().map(|w| w.label.as_str()).collect();
        assert_eq!(labels, ["1min", "5min", "10min"]);
        assert_eq!(c.topics.input, "video_clicks_ingestion");
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn labels_for_sub_minute_windows() {
        assert_eq!(window_label(30_000), "30s");
        assert_eq!(window_label(1_500), "1500ms");
        assert_eq!(default_output_topic(30_000), "video_aggregations_30s");
    }

    #[test]
    fn minimal_yaml_gets_defaults() {
        let c: WorkerConfig = serde_json::from_value(serde_json::json!({
            "kafka": {"bootstrapServers": "k:9092"},
            "windows": [{"size": "1m", "grace": "5s"}, {"size": "1h", "outputTopic": "hourly"}]
        }))
        .unwrap();
        let w = c.resolved_windows();
        assert_eq!(
            (w[0].size_ms, w[0].grace_ms, w[0].retention_ms),
            (60_000, 5_000, 1_800_000)
        );
        assert_eq!(
            (w[1].label.as_str(), w[1].output_topic.as_str()),
            ("60min", "hourly")
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_value::<WorkerConfig>(serde_json::json!({
            "kafka": {"bootstrapServers": "k"}, "windowz": []
        }))
        .unwrap_err();
        assert!(err.to_string().contains("windowz"), "{err}");
    }

    #[test]
    fn validation_names_each_problem() {
        let mut c = WorkerConfig::with_bootstrap("");
        c.windows = vec![
            WindowConfig::of_size(HumanDuration::from_mins(1)),
            WindowConfig::of_size(HumanDuration::from_secs(60)),
            WindowConfig::of_size(HumanDuration::from_millis(0)),
        ];
        c.topics.partitions = 0;
        c.kafka.security_protocol = SecurityProtocol::SaslSsl;
        let errors = c.validate().unwrap_err().join("\n");
        for needle in [
            "bootstrapServers is empty",
            "windows[1].size 1m appears twice",
            "windows[2].size must be positive",
            "topics.partitions must be at least 1",
            "needs kafka.sasl",
            "windows[1].outputTopic \"video_aggregations_1\" is used by another window",
        ] {
            assert!(errors.contains(needle), "missing {needle:?} in:\n{errors}");
        }
    }

    #[test]
    fn topic_plan_lists_every_topic() {
        let c = WorkerConfig::with_bootstrap("k:9092");
        let names: Vec<_> = topics::topic_plan(&c).into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "video_clicks_ingestion",
                "videocounter-repartition",
                "videocounter-counts-changelog",
                "videocounter-dead-letter",
                "video_aggregations_1",
                "video_aggregations_5",
                "video_aggregations_10"
            ]
        );
    }
}
