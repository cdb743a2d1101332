//! What the engine tells the outside: metrics at each commit, the status
//! behind readiness and the HTTP API, and the SIGUSR1 dump.

use super::Engine;
use crate::count::task::Task;
use crate::runtime::state::{PartitionView, Phase};
use std::collections::BTreeMap;

impl Engine {
    pub(super) fn flush_tally(&mut self) {
        let m = &self.shared.metrics;
        let s = &self.settings;
        let t = &mut self.tally;
        m.records_consumed
            .get_or_create(&m.topic(&s.input_topic))
            .inc_by(std::mem::take(&mut t.consumed_input));
        m.records_consumed
            .get_or_create(&m.topic(&s.repartition_topic))
            .inc_by(std::mem::take(&mut t.consumed_repartition));
        m.repartition_records_produced
            .inc_by(std::mem::take(&mut t.repartitioned));
        m.combined_records_counted_locally
            .inc_by(std::mem::take(&mut t.counted_locally));
        for (w, spec) in s.specs.iter().enumerate() {
            let label = m.window(&spec.label);
            m.events_counted
                .get_or_create(&label)
                .inc_by(std::mem::take(&mut t.counted[w]));
            m.late_events
                .get_or_create(&label)
                .inc_by(std::mem::take(&mut t.late[w]));
            m.output_records
                .get_or_create(&label)
                .inc_by(std::mem::take(&mut t.outputs[w]));
        }
        for (reason, n) in t.dead.drain() {
            m.dead_letter_records
                .get_or_create(&crate::runtime::metrics::ReasonLabel {
                    reason: reason.into(),
                })
                .inc_by(n);
        }
        for (p, task) in &self.tasks {
            let remaining = match task {
                Task::Active(_) => 0,
                other => other.progress().remaining().max(0),
            };
            m.restore_remaining_records
                .get_or_create(&crate::runtime::metrics::PartitionLabel {
                    partition: p.to_string(),
                })
                .set(remaining);
        }
    }

    /// Publishes the assignment and restore states for HTTP and readiness.
    pub fn publish_status(&mut self) {
        self.status_changed = false;
        let mut status = self.shared.slot_mut(self.slot);
        status.inputs = self.inputs.keys().copied().collect();
        status.partitions = self
            .tasks
            .iter()
            .map(|(p, t)| {
                let view = match t {
                    Task::Restoring { job, .. } => PartitionView {
                        phase: Phase::Restoring,
                        store: None,
                        restore: job.progress.clone(),
                    },
                    Task::Active(a) => PartitionView {
                        phase: Phase::Active,
                        store: Some(a.store.clone()),
                        restore: a.progress.clone(),
                    },
                    Task::Failed { error, progress, .. } => PartitionView {
                        phase: Phase::Failed(error.clone()),
                        store: None,
                        restore: progress.clone(),
                    },
                };
                (*p, view)
            })
            .collect();
        drop(status);
        // The whole process's partitions (every session's).
        let process = self.shared.status();
        let m = &self.shared.metrics;
        m.assigned_partitions
            .get_or_create(&m.topic(&self.settings.input_topic))
            .set(process.inputs.len() as i64);
        m.assigned_partitions
            .get_or_create(&m.topic(&self.settings.repartition_topic))
            .set(process.partitions.len() as i64);
        self.shared.refresh_ready();
    }

    /// Memory by owner, for the dump and debug logs.
    pub fn log_memory(&self) {
        let stores: u64 = self
            .tasks
            .values()
            .map(|t| match t {
                Task::Active(a) => a.store.memory_bytes(),
                _ => 0,
            })
            .sum();
        tracing::info!(
            rss_mib = resident_mib(),
            stores_mib = stores >> 20,
            block_cache_mib = self.resources.block_cache_bytes() >> 20,
            producer_queue = self.sink.as_ref().map_or(-1, |s| s.queued()),
            committing = self.committing(),
            combined_records = self.combiner.records(),
            windows_in_memory = self.pending_summary().1,
            "dump: memory"
        );
    }

    /// SIGUSR1: what this worker holds right now.
    pub fn dump(&self, lag: &BTreeMap<(String, i32), i64>) {
        tracing::info!(
            instance = %self.settings.instance_id,
            input_partitions = ?self.inputs.keys().collect::<Vec<_>>(),
            combined_records = self.combiner.records(),
            combined_events = self.combiner.events(),
            dead_letters_pending = self.dead_letters.len(),
            "dump: worker"
        );
        self.log_memory();
        for (p, task) in &self.tasks {
            match task {
                Task::Active(a) => tracing::info!(
                    partition = p,
                    state = "active",
                    stream_time = ?a.counts.stream_time(),
                    committed_stream_time = ?a.counts.committed_stream_time(),
                    windows_in_memory = a.counts.touched_windows(),
                    next_offset = a.offsets.next(),
                    store = %a.store.path().display(),
                    "dump: partition"
                ),
                Task::Restoring { job, .. } => tracing::info!(
                    partition = p,
                    state = "restoring",
                    restored = job.progress.restored.load(std::sync::atomic::Ordering::Relaxed),
                    remaining = job.progress.remaining(),
                    "dump: partition"
                ),
                Task::Failed { error, .. } => {
                    tracing::info!(partition = p, state = "failed", %error, "dump: partition")
                }
            }
        }
        for ((topic, p), lag) in lag {
            tracing::info!(%topic, partition = p, lag, "dump: consumer lag");
        }
    }

    /// How much the next commit will write: combined records and touched windows.
    pub fn pending_summary(&self) -> (usize, usize) {
        let windows = self
            .tasks
            .values()
            .map(|t| match t {
                Task::Active(a) => a.counts.touched_windows(),
                _ => 0,
            })
            .sum();
        (self.combiner.records(), windows)
    }
}

/// Resident set size of this process, from /proc.
fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib >> 10)
}
