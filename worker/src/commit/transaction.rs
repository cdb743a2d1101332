//! One transaction's work, on the commit thread: a commit's combined
//! records, dead letters and pending counts become records (sent), the
//! transaction is committed with the consumed offsets, and the stores apply
//! the same writes.

use crate::commit::records::send_plan;
use crate::commit::sink::{Record, Sink};
use crate::config::Settings;
use crate::count::emit::CommitPlan;
use crate::count::partitioner::partition_for;
use crate::count::store::PartitionStore;
use crate::count::task::PendingCounts;
use crate::engine::CommitError;
use crate::rekey::combiner::Combined;
use crate::rekey::dead_letter::{DeadLetter, send_dead_letter};
use crate::repartition::encode_repartition_value;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the commit thread did, for the metrics.
#[derive(Default)]
pub struct Written {
    pub repartitioned: u64,
    /// Output records per window size.
    pub outputs: Vec<u64>,
}

/// One commit's work, taken from the processing state in a moment: the
/// combined records, dead letters and each partition's pending counts. The
/// commit thread turns it into records and store writes.
pub struct Job {
    pub settings: Arc<Settings>,
    pub combined: Vec<(Arc<str>, Combined)>,
    pub dead_letters: Vec<DeadLetter>,
    pub tasks: Vec<(i32, Arc<PartitionStore>, PendingCounts, Option<i64>)>,
}

/// Each counting partition's store writes, applied once the transaction committed.
pub type StoreWrites = Vec<(i32, Arc<PartitionStore>, CommitPlan)>;

pub type Outcome = Result<Written, CommitError>;

impl Job {
    /// Opens the transaction and sends everything it writes: the combined
    /// records, the dead letters, and each counting partition's outputs,
    /// changelog records and new position. Returns the store writes.
    pub fn send(self, sink: &mut Sink) -> Result<(StoreWrites, Written), CommitError> {
        let s = &self.settings;
        let mut written = Written {
            outputs: vec![0; s.specs.len()],
            ..Written::default()
        };
        sink.init()?;
        sink.begin()?;
        for (video_id, c) in self.combined {
            let value = encode_repartition_value(c.count, c.max_ts);
            sink.send(Record {
                topic: &s.repartition_topic,
                partition: Some(partition_for(video_id.as_bytes(), s.partitions)),
                key: Some(video_id.as_bytes()),
                value: Some(&value),
                // Event time travels in the value. The record carries the
                // processing time, so the topic's time-based retention never
                // deletes unprocessed records of old (replayed) events.
                timestamp: None,
                headers: None,
            })?;
            written.repartitioned += 1;
        }
        for dl in self.dead_letters {
            send_dead_letter(sink, &s.dead_letter_topic, dl)?;
        }
        let mut plans = Vec::new();
        let (mut plan_time, mut send_time, mut windows) = (Duration::ZERO, Duration::ZERO, 0);
        for (p, store, pending, position) in self.tasks {
            let t = Instant::now();
            windows += pending.deltas.len();
            let mut plan = pending.plan(&store, &s.specs, s.worker.emit, position)?;
            plan.layout = store.changelog_layout(&plan);
            plan_time += t.elapsed();
            let t = Instant::now();
            send_plan(sink, s, p, &plan)?;
            send_time += t.elapsed();
            for w in plan.outputs() {
                written.outputs[w.id.window] += 1;
            }
            plans.push((p, store, plan));
        }
        tracing::debug!(
            windows,
            plan_ms = plan_time.as_secs_f64() * 1e3,
            send_counts_ms = send_time.as_secs_f64() * 1e3,
            repartitioned = written.repartitioned,
            "commit sent"
        );
        Ok((plans, written))
    }

    /// Exactly-once, on the commit thread: the records, the transaction with
    /// the offsets, then the store writes.
    pub fn run(
        self,
        mut sink: Sink,
        offsets: TopicPartitionList,
        metadata: Option<ConsumerGroupMetadata>,
    ) -> (Sink, Outcome) {
        let started = Instant::now();
        let outcome = self.send(&mut sink).and_then(|(plans, written)| {
            let sent = started.elapsed();
            let checkpoints = sink
                .commit_transaction_with(&offsets, metadata.as_ref())
                .map_err(CommitError::from)?;
            let committed = started.elapsed();
            apply_plans(&plans, &checkpoints)?;
            tracing::debug!(
                send_ms = sent.as_secs_f64() * 1e3,
                transaction_ms = (committed - sent).as_secs_f64() * 1e3,
                store_ms = (started.elapsed() - committed).as_secs_f64() * 1e3,
                partitions = offsets.count(),
                "commit"
            );
            Ok(written)
        });
        (sink, outcome)
    }
}

/// After the transaction committed, each store applies the same writes with
/// its changelog checkpoint. Of the stores due on the timer only the first
/// writes back to RocksDB now; the others in later commits, in turn.
pub fn apply_plans(plans: &StoreWrites, checkpoints: &HashMap<i32, i64>) -> Result<(), CommitError> {
    let mut turn = true;
    for (p, store, plan) in plans {
        let wrote = store.apply_plan(plan, checkpoints.get(p).map(|o| o + 1), turn)?;
        turn &= !wrote;
    }
    Ok(())
}
