//! Committing, overlapped with processing. Kafka allows one open transaction
//! per producer, so commits are strictly one after the other, but the poll
//! loop does not wait for them: a commit is prepared on the processing
//! thread (the records it writes are sent, the offsets and plans fixed),
//! then committed on a thread of its own while the next records are
//! processed into memory. The next commit starts once that one is done, so a
//! slow commit makes the next one bigger, not the consumer idle.
//!
//! After a commit each partition's offsets and stream time move to what
//! that commit was prepared with; the records processed meanwhile belong to
//! the next one. A failed commit is aborted and everything since the last
//! good one is redone (see [`Engine::rewind_to_last_commit`]).

use super::{CommitError, CommitOffset, Engine, MAX_COMMIT_FAILURES, MAX_PENDING, Source};
use crate::codec;
use crate::emit::CommitPlan;
use crate::partitioner::partition_for;
use crate::sink::{Record, Sink, SinkError};
use crate::store::PartitionStore;
use crate::task::Task;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::records::{send_dead_letter, send_plan};

/// What a commit was prepared with, to apply once it is known to have gone through.
pub(super) struct Prepared {
    offsets: Vec<CommitOffset>,
    /// Per counting partition: the stream time this commit writes.
    stream_times: Vec<(i32, Option<i64>)>,
    /// Output records per window size.
    outputs: Vec<u64>,
    started: Instant,
}

/// The work of the commit thread: the Kafka commit, then the store writes.
struct Job {
    sink: Sink,
    offsets: TopicPartitionList,
    metadata: Option<ConsumerGroupMetadata>,
    plans: Vec<(i32, Arc<PartitionStore>, CommitPlan)>,
}

pub(super) struct InFlight {
    handle: JoinHandle<(Sink, Result<(), CommitError>)>,
    prepared: Prepared,
}

impl Job {
    fn run(mut self) -> (Sink, Result<(), CommitError>) {
        let started = Instant::now();
        let committed = self
            .sink
            .commit_transaction_with(&self.offsets, self.metadata.as_ref())
            .map_err(CommitError::from);
        let transaction = started.elapsed();
        let result = committed.and_then(|checkpoints| apply_plans(&self.plans, &checkpoints));
        tracing::debug!(
            transaction_ms = transaction.as_secs_f64() * 1e3,
            store_ms = (started.elapsed() - transaction).as_secs_f64() * 1e3,
            partitions = self.offsets.count(),
            "commit"
        );
        (self.sink, result)
    }
}

/// After the transaction committed, each store applies the same writes in
/// one batch with its changelog checkpoint.
fn apply_plans(
    plans: &[(i32, Arc<PartitionStore>, CommitPlan)],
    checkpoints: &HashMap<i32, i64>,
) -> Result<(), CommitError> {
    for (p, store, plan) in plans {
        store.apply_plan(plan, checkpoints.get(p).map(|o| o + 1))?;
    }
    Ok(())
}

impl Engine {
    /// From the poll loop: takes in a finished commit and starts the next one
    /// when it is due. Waits only when too much piled up behind a slow commit.
    pub fn commit_if_due<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let (combined, windows) = self.pending_summary();
        let overloaded = combined >= 2 * MAX_PENDING || windows >= 2 * MAX_PENDING;
        self.collect_commit(consumer, overloaded);
        if self.in_flight.is_none()
            && (self.last_commit.elapsed() >= self.commit_interval
                || combined >= MAX_PENDING
                || windows >= MAX_PENDING)
        {
            self.start_commit(consumer);
        }
    }

    /// Commits everything processed so far and waits for it (before
    /// partitions are revoked, at shutdown).
    pub fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        self.collect_commit(consumer, true);
        self.start_commit(consumer);
        self.collect_commit(consumer, true);
    }

    /// Whether a commit is running.
    pub fn committing(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Takes in the running commit's outcome if it is done (or, with `wait`, once it is).
    pub(super) fn collect_commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, wait: bool) {
        let Some(in_flight) = self.in_flight.take() else {
            return;
        };
        if !wait && !in_flight.handle.is_finished() {
            self.in_flight = Some(in_flight);
            return;
        }
        match in_flight.handle.join() {
            Ok((sink, result)) => {
                self.sink = Some(sink);
                self.finish_commit(consumer, in_flight.prepared, result);
            }
            Err(_) => self.set_broken("the commit thread panicked".into()),
        }
    }

    fn start_commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        if self.broken.is_some() {
            return;
        }
        self.last_commit = Instant::now();
        let offsets = self.offsets_to_commit(consumer);
        if offsets.is_empty() && !self.has_work() {
            self.flush_tally();
            return;
        }
        let Some(mut sink) = self.sink.take() else {
            self.set_broken("no producer to commit with".into());
            return;
        };
        let started = Instant::now();
        let prepared = self.prepare_commit(&mut sink, &offsets);
        tracing::debug!(
            prepare_ms = started.elapsed().as_secs_f64() * 1e3,
            "commit prepared"
        );
        let (plans, prepared) = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.sink = Some(sink);
                self.commit_failed(consumer, e);
                return;
            }
        };
        let prepared = Prepared {
            offsets,
            started,
            ..prepared
        };
        let mut tpl = TopicPartitionList::new();
        for c in &prepared.offsets {
            let _ = tpl.add_partition_offset(self.topic(c.source), c.partition, Offset::Offset(c.offset));
        }
        if sink.is_transactional() {
            let job = Job {
                sink,
                metadata: if tpl.count() > 0 {
                    consumer.group_metadata()
                } else {
                    None
                },
                offsets: tpl,
                plans,
            };
            let handle = std::thread::Builder::new()
                .name("commit".into())
                .spawn(move || job.run());
            match handle {
                Ok(handle) => self.in_flight = Some(InFlight { handle, prepared }),
                Err(e) => self.set_broken(format!("cannot start the commit thread: {e}")),
            }
        } else {
            let result = sink
                .flush_and_commit(&tpl, consumer)
                .map_err(CommitError::from)
                .and_then(|checkpoints| apply_plans(&plans, &checkpoints));
            self.sink = Some(sink);
            self.finish_commit(consumer, prepared, result);
        }
    }

    /// Opens the transaction and sends everything it writes: the combined
    /// records, the dead letters, and each counting partition's outputs,
    /// changelog records and new position.
    #[allow(clippy::type_complexity)]
    fn prepare_commit(
        &mut self,
        sink: &mut Sink,
        offsets: &[CommitOffset],
    ) -> Result<(Vec<(i32, Arc<PartitionStore>, CommitPlan)>, Prepared), CommitError> {
        let s = self.settings.clone();
        sink.init()?;
        sink.begin()?;
        for (video_id, c) in self.combiner.drain() {
            let value = codec::encode_repartition_value(c.count, c.max_ts);
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
            self.tally.repartitioned += 1;
        }
        for dl in self.dead_letters.drain(..) {
            send_dead_letter(sink, &s.dead_letter_topic, dl)?;
        }
        let positions: HashMap<i32, i64> = offsets
            .iter()
            .filter(|c| c.source == Source::Repartition)
            .map(|c| (c.partition, c.offset))
            .collect();
        let mut plans = Vec::new();
        let mut stream_times = Vec::new();
        let mut outputs = vec![0; s.specs.len()];
        for (&p, task) in self.tasks.iter_mut() {
            let Task::Active(task) = task else { continue };
            let position = positions.get(&p).copied();
            if !task.counts.is_dirty() && position.is_none() {
                continue;
            }
            let plan = task.prepare(&s.specs, s.worker.emit, position)?;
            send_plan(sink, &s, p, &plan)?;
            for w in &plan.outputs {
                outputs[w.id.window] += 1;
            }
            stream_times.push((p, task.counts.stream_time()));
            plans.push((p, task.store.clone(), plan));
        }
        let prepared = Prepared {
            offsets: Vec::new(),
            stream_times,
            outputs,
            started: Instant::now(),
        };
        Ok((plans, prepared))
    }

    fn finish_commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        prepared: Prepared,
        result: Result<(), CommitError>,
    ) {
        if let Err(e) = result {
            self.commit_failed(consumer, e);
            return;
        }
        for c in &prepared.offsets {
            match c.source {
                Source::Input => {
                    if let Some(o) = self.inputs.get_mut(&c.partition) {
                        o.committed(c.offset);
                    }
                }
                Source::Repartition => {
                    if let Some(Task::Active(t)) = self.tasks.get_mut(&c.partition) {
                        t.offsets.committed(c.offset);
                    }
                }
            }
        }
        for (p, st) in prepared.stream_times {
            if let Some(Task::Active(t)) = self.tasks.get_mut(&p) {
                t.counts.mark_committed(st);
            }
        }
        for (w, n) in prepared.outputs.into_iter().enumerate() {
            self.tally.outputs[w] += n;
        }
        let m = &self.shared.metrics;
        m.commit_duration_seconds
            .observe(prepared.started.elapsed().as_secs_f64());
        m.commits.get_or_create(&m.kind("ok")).inc();
        self.failed_commits = 0;
        self.flush_tally();
    }

    /// The commit failed: abort it and redo its work from the last good
    /// commit, or end the session when that is in doubt.
    fn commit_failed<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, e: CommitError) {
        let m = &self.shared.metrics;
        m.commits.get_or_create(&m.kind("failed")).inc();
        self.failed_commits += 1;
        let aborted = match self.sink.as_mut() {
            Some(sink) => sink.abort(),
            None => Err(SinkError::Delivery("the producer is gone".into())),
        };
        if let Err(abort) = aborted {
            self.set_broken(format!("commit failed ({e}) and so did the abort ({abort})"));
        } else if e.is_fatal() || self.failed_commits >= MAX_COMMIT_FAILURES {
            self.set_broken(format!("commit failed: {e}"));
        } else {
            // Typically a rebalance in progress (stale generation or member
            // epoch): the transaction is aborted and its work redone.
            tracing::warn!(error = %e, "commit failed; transaction aborted, resuming from the last commit");
            self.rewind_to_last_commit(consumer);
        }
    }

    /// The offset each owned partition moves to in the next commit.
    pub(super) fn offsets_to_commit<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
    ) -> Vec<CommitOffset> {
        let positions: HashMap<(Source, i32), i64> = consumer
            .position()
            .map(|tpl| {
                tpl.elements()
                    .iter()
                    .filter_map(|e| match (self.classify(e.topic()), e.offset()) {
                        (Some(s), Offset::Offset(o)) => Some(((s, e.partition()), o)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let inputs = self.inputs.iter().map(|(p, o)| (Source::Input, *p, o));
        let tasks = self.tasks.iter().filter_map(|(p, t)| match t {
            Task::Active(a) => Some((Source::Repartition, *p, &a.offsets)),
            _ => None,
        });
        inputs
            .chain(tasks)
            .filter_map(|(source, partition, offsets)| {
                offsets
                    .to_commit(positions.get(&(source, partition)).copied())
                    .map(|offset| CommitOffset {
                        source,
                        partition,
                        offset,
                    })
            })
            .collect()
    }

    fn has_work(&self) -> bool {
        !self.combiner.is_empty()
            || !self.dead_letters.is_empty()
            || self
                .tasks
                .values()
                .any(|t| matches!(t, Task::Active(a) if a.counts.is_dirty()))
    }
}
