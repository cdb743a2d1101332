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
    pub combined: Vec<(String, Combined)>,
    pub dead_letters: Vec<DeadLetter>,
    pub tasks: Vec<TaskWork>,
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
        let started = Instant::now();
        let tasks = self.tasks;
        let windows: usize = tasks.iter().map(|(_, _, pending, _)| pending.deltas.len()).sum();
        let shares = split_tasks(tasks, sending_threads());
        let sent: Vec<Result<Sent, CommitError>> = if shares.len() == 1 {
            shares
                .into_iter()
                .map(|share| plan_and_send(sink, s, share))
                .collect()
        } else {
            let sink = &*sink;
            std::thread::scope(|scope| {
                let handles: Vec<_> = shares
                    .into_iter()
                    .map(|share| scope.spawn(move || plan_and_send(sink, s, share)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                    .collect()
            })
        };
        let (mut plans, mut plan_time) = (Vec::new(), Duration::ZERO);
        for share in sent {
            let share = share?;
            plan_time += share.plan_time;
            plans.extend(share.plans);
        }
        for (_, _, plan) in &plans {
            for w in &plan.outputs {
                written.outputs[w.id.window] += 1;
            }
        }
        tracing::debug!(
            windows,
            plan_ms = plan_time.as_secs_f64() * 1e3,
            plan_and_send_ms = started.elapsed().as_secs_f64() * 1e3,
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

type TaskWork = (i32, Arc<PartitionStore>, PendingCounts, Option<i64>);

/// What one sending thread planned and sent.
struct Sent {
    plans: StoreWrites,
    plan_time: Duration,
}

/// Threads that plan and send the counting partitions' records: the
/// commit's largest part (with 10,000 videos, 60,000 records), and
/// librdkafka's producer takes records from several threads. Two at most:
/// beyond that its queue locks are the limit.
fn sending_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

/// Deals the partitions out to `threads` shares, each partition whole (its
/// changelog records must stay in order), largest first to balance them.
fn split_tasks(mut tasks: Vec<TaskWork>, threads: usize) -> Vec<Vec<TaskWork>> {
    let threads = threads.clamp(1, tasks.len().max(1));
    tasks.sort_by_key(|(_, _, pending, _)| std::cmp::Reverse(pending.deltas.len()));
    let mut shares: Vec<(usize, Vec<TaskWork>)> = (0..threads).map(|_| (0, Vec::new())).collect();
    for task in tasks {
        let lightest = shares
            .iter_mut()
            .min_by_key(|(load, _)| *load)
            .expect("at least one share");
        lightest.0 += task.2.deltas.len();
        lightest.1.push(task);
    }
    shares.into_iter().map(|(_, share)| share).collect()
}

fn plan_and_send(sink: &Sink, s: &Settings, share: Vec<TaskWork>) -> Result<Sent, CommitError> {
    let mut sent = Sent {
        plans: Vec::with_capacity(share.len()),
        plan_time: Duration::ZERO,
    };
    for (p, store, pending, position) in share {
        let t = Instant::now();
        let plan = pending.plan(&store, &s.specs, s.worker.emit, position)?;
        sent.plan_time += t.elapsed();
        send_plan(sink, s, p, &plan)?;
        sent.plans.push((p, store, plan));
    }
    Ok(sent)
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
