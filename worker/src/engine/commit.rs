//! Committing, overlapped with processing. Kafka allows one open transaction
//! per producer, so commits are strictly one after the other, but the poll
//! loop does not wait for them: the processing thread only takes a commit's
//! work out of its state (the combined records, dead letters, each
//! partition's pending counts, the offsets: moves, no I/O); a thread of its
//! own reads the stores, sends the records, commits the transaction and
//! writes the stores, while the next records are processed into memory. The next commit starts once that one is done, so a
//! slow commit makes the next one bigger, not the consumer idle.
//!
//! After a commit each partition's offsets and stream time move to what
//! that commit was prepared with; the records processed meanwhile belong to
//! the next one. A failed commit is aborted and everything since the last
//! good one is redone (see [`Engine::rewind_to_last_commit`]).

use super::{CommitOffset, Engine, MAX_COMMIT_FAILURES, MAX_PENDING, SessionEnd, Source};
use crate::commit::sink::{Sink, SinkError};
use crate::commit::transaction::{Job, Outcome, apply_plans};
use crate::count::task::Task;
use crate::engine::CommitError;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::thread::JoinHandle;
use std::time::Instant;

/// What a commit was prepared with, to apply once it is known to have gone through.
pub(super) struct Prepared {
    offsets: Vec<CommitOffset>,
    /// Per counting partition: the stream time this commit writes.
    stream_times: Vec<(i32, Option<i64>)>,
    started: Instant,
}

pub(super) struct InFlight {
    handle: JoinHandle<(Sink, Outcome)>,
    prepared: Prepared,
}

impl Engine {
    /// From the poll loop: takes in a finished commit and starts the next one
    /// when it is due. Waits only when too much piled up behind a slow commit.
    pub fn commit_if_due<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let (combined, windows) = self.pending_summary();
        let overloaded = combined >= 2 * MAX_PENDING || windows >= 2 * MAX_PENDING;
        self.collect_commit(consumer, overloaded);
        if self.in_flight.is_none() && self.due(combined, windows) {
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

    /// Whether the next commit is due: the interval passed, or so much is
    /// pending (`combined` records, touched `windows`) that it must not wait.
    pub(super) fn due(&self, combined: usize, windows: usize) -> bool {
        self.until_commit_due().is_zero() || combined >= MAX_PENDING || windows >= MAX_PENDING
    }

    /// How long until the commit interval has passed since the last commit began.
    pub fn until_commit_due(&self) -> std::time::Duration {
        self.commit_interval.saturating_sub(self.last_commit.elapsed())
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
            Err(_) => self.set_broken(SessionEnd::CommitThread("panicked".into())),
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
            self.set_broken(SessionEnd::CommitThread("kept the producer".into()));
            return;
        };
        let started = Instant::now();
        let (job, stream_times) = self.take_job(&offsets);
        let prepared = Prepared {
            offsets,
            stream_times,
            started,
        };
        let mut tpl = TopicPartitionList::new();
        for c in &prepared.offsets {
            let _ = tpl.add_partition_offset(self.topic(c.source), c.partition, Offset::Offset(c.offset));
        }
        if sink.is_transactional() {
            let metadata = if tpl.count() > 0 {
                consumer.group_metadata()
            } else {
                None
            };
            let handle = std::thread::Builder::new()
                .name("commit".into())
                .spawn(move || job.run(sink, tpl, metadata));
            match handle {
                Ok(handle) => self.in_flight = Some(InFlight { handle, prepared }),
                Err(e) => self.set_broken(SessionEnd::CommitThread(format!("cannot start: {e}"))),
            }
        } else {
            let outcome = job.send(&mut sink).and_then(|(plans, written)| {
                let checkpoints = sink.flush_and_commit(&tpl, consumer)?;
                apply_plans(&plans, &checkpoints)?;
                Ok(written)
            });
            self.sink = Some(sink);
            self.finish_commit(consumer, prepared, outcome);
        }
    }

    /// Takes what the next commit writes out of the processing state (cheap:
    /// moves, no I/O), so processing goes on while it is written.
    fn take_job(&mut self, offsets: &[CommitOffset]) -> (Job, Vec<(i32, Option<i64>)>) {
        // First, so the partitions' pending counts include what it counts.
        let drained = self.combiner.drain();
        let combined = self.count_locally(drained);
        let positions: HashMap<i32, i64> = offsets
            .iter()
            .filter(|c| c.source == Source::Repartition)
            .map(|c| (c.partition, c.offset))
            .collect();
        let mut tasks = Vec::new();
        let mut stream_times = Vec::new();
        for (&p, task) in self.tasks.iter_mut() {
            let Task::Active(task) = task else { continue };
            let position = positions.get(&p).copied();
            if !task.counts.is_dirty() && position.is_none() {
                continue;
            }
            let pending = task.take_pending();
            stream_times.push((p, pending.new_stream_time));
            tasks.push((p, task.store.clone(), pending, position));
        }
        let job = Job {
            settings: self.settings.clone(),
            combined,
            dead_letters: std::mem::take(&mut self.dead_letters),
            tasks,
        };
        (job, stream_times)
    }

    fn finish_commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        prepared: Prepared,
        outcome: Outcome,
    ) {
        let written = match outcome {
            Ok(w) => w,
            Err(e) => {
                self.commit_failed(consumer, e);
                return;
            }
        };
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
        for (w, n) in written.outputs.into_iter().enumerate() {
            self.tally.outputs[w] += n;
        }
        self.tally.repartitioned += written.repartitioned;
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
            self.set_broken(SessionEnd::AbortFailed {
                commit: Box::new(e),
                abort: Box::new(abort),
            });
        } else if e.is_fatal() || self.failed_commits >= MAX_COMMIT_FAILURES {
            self.set_broken(SessionEnd::Commit(e));
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
