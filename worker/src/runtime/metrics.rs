//! Prometheus metrics of the worker (`/metrics`). The hot loop counts in
//! plain integers and adds them here at each commit.

use crate::count::window::CountWindow;
use crate::rekey::decode::DecodeError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WindowLabel {
    pub window: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicPartitionLabel {
    pub topic: String,
    pub partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

pub struct Metrics {
    registry: Registry,
    pub records_consumed: Family<TopicLabel, Counter>,
    pub repartition_records_produced: Counter,
    pub combined_records_counted_locally: Counter,
    pub events_counted: Family<WindowLabel, Counter>,
    pub late_events: Family<WindowLabel, Counter>,
    pub dead_letter_records: Family<ReasonLabel, Counter>,
    pub output_records: Family<WindowLabel, Counter>,
    pub commit_duration_seconds: Histogram,
    pub commits: Family<KindLabel, Counter>,
    pub restored_records: Counter,
    pub restore_remaining_records: Family<PartitionLabel, Gauge>,
    pub consumer_lag_records: Family<TopicPartitionLabel, Gauge>,
    pub rebalances: Family<KindLabel, Counter>,
    pub assigned_partitions: Family<TopicLabel, Gauge>,
    pub ready: Gauge,
}

impl Metrics {
    pub fn new(specs: &[CountWindow], topics: &[&str]) -> Self {
        let mut registry = Registry::with_prefix("videocounter");
        let m = Self {
            records_consumed: Family::default(),
            repartition_records_produced: Counter::default(),
            combined_records_counted_locally: Counter::default(),
            events_counted: Family::default(),
            late_events: Family::default(),
            dead_letter_records: Family::default(),
            output_records: Family::default(),
            commit_duration_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            commits: Family::default(),
            restored_records: Counter::default(),
            restore_remaining_records: Family::default(),
            consumer_lag_records: Family::default(),
            rebalances: Family::default(),
            assigned_partitions: Family::default(),
            ready: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "records_consumed",
            "Records read from the input (re-key stage) and repartition (count stage) topics",
            m.records_consumed.clone(),
        );
        registry.register(
            "repartition_records_produced",
            "Combined records written to the repartition topic",
            m.repartition_records_produced.clone(),
        );
        registry.register(
            "combined_records_counted_locally",
            "Combined records counted by a counting partition of the same consumer session, without the repartition topic",
            m.combined_records_counted_locally.clone(),
        );
        registry.register(
            "events_counted",
            "Likes added to windows, per window size",
            m.events_counted.clone(),
        );
        registry.register(
            "late_events",
            "Likes dropped because their window had closed (older than end + grace), per window size",
            m.late_events.clone(),
        );
        registry.register(
            "dead_letter_records",
            "Input records sent to the dead-letter topic, per reason",
            m.dead_letter_records.clone(),
        );
        registry.register(
            "output_records",
            "Window count records written to the output topics, per window size",
            m.output_records.clone(),
        );
        registry.register(
            "commit_duration_seconds",
            "Time to commit one transaction (or one at-least-once flush and offset commit)",
            m.commit_duration_seconds.clone(),
        );
        registry.register("commits", "Commits by result", m.commits.clone());
        registry.register(
            "restored_records",
            "Changelog records applied to partition stores while restoring",
            m.restored_records.clone(),
        );
        registry.register(
            "restore_remaining_records",
            "Changelog records left to restore, per partition",
            m.restore_remaining_records.clone(),
        );
        registry.register(
            "consumer_lag_records",
            "Records between the consumer position and the last stable offset",
            m.consumer_lag_records.clone(),
        );
        registry.register("rebalances", "Rebalance callbacks by kind", m.rebalances.clone());
        registry.register(
            "assigned_partitions",
            "Partitions assigned to this worker",
            m.assigned_partitions.clone(),
        );
        registry.register(
            "ready",
            "1 when every assigned partition is restored",
            m.ready.clone(),
        );
        for s in specs {
            let w = WindowLabel {
                window: s.label.clone(),
            };
            let _ = m.events_counted.get_or_create(&w);
            let _ = m.late_events.get_or_create(&w);
            let _ = m.output_records.get_or_create(&w);
        }
        for reason in DecodeError::KINDS {
            let _ = m.dead_letter_records.get_or_create(&ReasonLabel {
                reason: reason.into(),
            });
        }
        for topic in topics {
            let _ = m.records_consumed.get_or_create(&TopicLabel {
                topic: (*topic).into(),
            });
            let _ = m.assigned_partitions.get_or_create(&TopicLabel {
                topic: (*topic).into(),
            });
        }
        for kind in ["assign", "revoke", "lost"] {
            let _ = m.rebalances.get_or_create(&KindLabel { kind: kind.into() });
        }
        for kind in ["ok", "failed"] {
            let _ = m.commits.get_or_create(&KindLabel { kind: kind.into() });
        }
        Self { registry, ..m }
    }

    /// The text exposition format.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn encode(&self) -> String {
        videocounter_shell::metrics::encode(&self.registry)
    }

    pub fn window(&self, label: &str) -> WindowLabel {
        WindowLabel { window: label.into() }
    }

    pub fn topic(&self, topic: &str) -> TopicLabel {
        TopicLabel { topic: topic.into() }
    }

    pub fn kind(&self, kind: &str) -> KindLabel {
        KindLabel { kind: kind.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let spec = CountWindow {
            size_ms: 60_000,
            grace_ms: 0,
            retention_ms: 0,
            label: "1min".into(),
            output_topic: "o".into(),
        };
        let m = Metrics::new(&[spec], &["in", "rep"]);
        m.late_events.get_or_create(&m.window("1min")).inc_by(3);
        m.commit_duration_seconds.observe(0.02);
        let text = m.encode();
        for needle in [
            "videocounter_records_consumed_total{topic=\"in\"} 0",
            "videocounter_late_events_total{window=\"1min\"} 3",
            "videocounter_dead_letter_records_total{reason=\"invalid_json\"} 0",
            "videocounter_commit_duration_seconds_count 1",
            "videocounter_rebalances_total{kind=\"lost\"} 0",
            "videocounter_ready 0",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
