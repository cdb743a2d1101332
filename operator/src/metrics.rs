//! Prometheus metrics of the operator, served on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::time::Instant;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct Metrics {
    pub reconciles: Counter,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub pods_deleted: Counter,
    pub topics_created: Counter,
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reconciles: Counter::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.002, 2.0, 14)),
            pods_deleted: Counter::default(),
            topics_created: Counter::default(),
            leader: Gauge::default(),
        }
    }
}

impl Metrics {
    /// Registers every metric under the `videocounter_operator` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("videocounter_operator");
        r.register("reconciles", "Reconciliations run", self.reconciles.clone());
        r.register(
            "reconcile_errors",
            "Reconciliations that failed, by kind of error",
            self.reconcile_errors.clone(),
        );
        r.register_with_unit(
            "reconcile_duration",
            "Time one reconciliation took",
            Unit::Seconds,
            self.reconcile_duration.clone(),
        );
        r.register(
            "pods_deleted",
            "Worker pods deleted to move them to a new revision",
            self.pods_deleted.clone(),
        );
        r.register(
            "topics_created",
            "Kafka topics created",
            self.topics_created.clone(),
        );
        r.register(
            "leader",
            "1 while this replica holds the leader lease",
            self.leader.clone(),
        );
    }

    /// Counts a reconcile and records its duration when dropped.
    pub fn start_reconcile(&self) -> ReconcileTimer<'_> {
        self.reconciles.inc();
        ReconcileTimer {
            metrics: self,
            start: Instant::now(),
        }
    }

    pub fn count_error(&self, kind: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels { kind: kind.into() })
            .inc();
    }
}

pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .reconcile_duration
            .observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions() {
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        drop(metrics.start_reconcile());
        metrics.count_error("api");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for name in [
            "videocounter_operator_reconciles_total 1",
            "videocounter_operator_reconcile_errors_total{kind=\"api\"} 1",
            "videocounter_operator_reconcile_duration_seconds_count 1",
            "videocounter_operator_pods_deleted_total 0",
            "videocounter_operator_leader 0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
