//! The processing state of one consumer session: it routes each consumed
//! record (input -> decode, dead-letter or combine; repartition -> count in
//! its partition), commits everything in one place, and follows the
//! assignment (restore on assign, commit then close on revoke).

use crate::codec::{self, DecodeError};
use crate::combiner::Combiner;
use crate::config::Settings;
use crate::counts::PartitionCounts;
use crate::emit::CommitPlan;
use crate::partitioner::partition_for;
use crate::restore::{RestoreJob, RestoreParams};
use crate::sink::{Record, Sink, SinkError};
use crate::state::Shared;
use crate::store::{StoreError, StoreResources};
use crate::task::{ActiveTask, Task};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod records;
mod report;

use records::{send_dead_letter, send_plan};

/// Commit early when a commit interval gathers this many combined records or
/// touched windows: it bounds the memory of one transaction (with a million
/// distinct videos every record touches new windows).
const MAX_PENDING: usize = 100_000;
const RESTORE_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CommitError {
    /// Whether the session has to be rebuilt; otherwise aborting the
    /// transaction and rewinding to the last commit is enough.
    fn is_fatal(&self) -> bool {
        match self {
            CommitError::Sink(e) => e.is_fatal(),
            CommitError::Store(_) => true,
        }
    }
}

/// Consecutive failed commits after which the session is rebuilt.
const MAX_COMMIT_FAILURES: u32 = 5;

/// A record the worker cannot count, with why.
struct DeadLetter {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
    error: DecodeError,
    source_topic: String,
    source_partition: i32,
    source_offset: i64,
}

/// Metric counts gathered between commits (atomics per record would cost more).
#[derive(Default)]
struct Tally {
    consumed_input: u64,
    consumed_repartition: u64,
    repartitioned: u64,
    counted: Vec<u64>,
    late: Vec<u64>,
    outputs: Vec<u64>,
    dead: HashMap<&'static str, u64>,
}

pub struct Engine {
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    sink: Sink,
    kafka: ClientConfig,
    resources: StoreResources,
    combiner: Combiner,
    dead_letters: Vec<DeadLetter>,
    inputs: BTreeSet<i32>,
    tasks: BTreeMap<i32, Task>,
    /// Repartition partitions that delivered records while not active: where to resume.
    rewinds: HashMap<i32, i64>,
    /// Last committed position per (is repartition, partition), to skip unchanged ones.
    committed: HashMap<(bool, i32), i64>,
    last_commit: Instant,
    commit_interval: Duration,
    since_check: u32,
    tally: Tally,
    status_changed: bool,
    failed_commits: u32,
    /// Set when the session must end: a fatal commit failure.
    broken: Option<String>,
}

impl Engine {
    pub fn new(
        settings: Arc<Settings>,
        shared: Arc<Shared>,
        sink: Sink,
        kafka: ClientConfig,
        resources: StoreResources,
    ) -> Self {
        let windows = settings.specs.len();
        Self {
            combiner: Combiner::new(settings.bucket_ms),
            commit_interval: settings.worker.commit_interval.0,
            tally: Tally {
                counted: vec![0; windows],
                late: vec![0; windows],
                outputs: vec![0; windows],
                ..Default::default()
            },
            settings,
            shared,
            sink,
            kafka,
            resources,
            dead_letters: Vec::new(),
            inputs: BTreeSet::new(),
            tasks: BTreeMap::new(),
            rewinds: HashMap::new(),
            committed: HashMap::new(),
            last_commit: Instant::now(),
            since_check: 0,
            status_changed: true,
            failed_commits: 0,
            broken: None,
        }
    }

    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// Routes one consumed record.
    pub fn process(&mut self, m: &BorrowedMessage<'_>) {
        let partition = m.partition();
        if m.topic() == self.settings.input_topic {
            if !self.inputs.contains(&partition) {
                return;
            }
            self.tally.consumed_input += 1;
            let format = self.settings.worker.topics.input_format;
            match codec::decode_input(format, m.payload(), m.timestamp().to_millis()) {
                Ok(like) if like.count > 0 => self.combiner.add(&like.video_id, like.count, like.ts),
                Ok(_) => {}
                Err(error) => self.dead_letter(m, error),
            }
        } else if m.topic() == self.settings.repartition_topic {
            match self.tasks.get_mut(&partition) {
                Some(Task::Active(task)) => {
                    self.tally.consumed_repartition += 1;
                    match codec::decode_repartition(m.key(), m.payload()) {
                        Ok((id, count, ts)) => {
                            let applied = task.counts.apply(id, count, ts);
                            for w in 0..self.tally.counted.len() {
                                if applied.is_late_for(w) {
                                    self.tally.late[w] += count;
                                } else {
                                    self.tally.counted[w] += count;
                                }
                            }
                        }
                        Err(error) => self.dead_letter(m, error),
                    }
                }
                Some(_) => {
                    let at = self.rewinds.entry(partition).or_insert(m.offset());
                    *at = (*at).min(m.offset());
                }
                None => {}
            }
        }
    }

    fn dead_letter(&mut self, m: &BorrowedMessage<'_>, error: DecodeError) {
        *self.tally.dead.entry(error.kind()).or_default() += 1;
        tracing::debug!(topic = m.topic(), partition = m.partition(), offset = m.offset(), %error, "dead-lettering a record");
        self.dead_letters.push(DeadLetter {
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            timestamp: m.timestamp().to_millis(),
            error,
            source_topic: m.topic().to_owned(),
            source_partition: m.partition(),
            source_offset: m.offset(),
        });
    }

    /// Whether a commit is due: the interval passed, or too much is pending.
    pub fn commit_due(&mut self) -> bool {
        self.since_check += 1;
        if self.since_check < 64 {
            return false;
        }
        self.since_check = 0;
        let (combined, touched_windows) = self.pending_summary();
        self.last_commit.elapsed() >= self.commit_interval
            || combined >= MAX_PENDING
            || touched_windows >= MAX_PENDING
    }

    /// Periodic work between records: finished restores, status, the commit clock.
    pub fn housekeeping<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        self.finish_restores(consumer);
        if self.last_commit.elapsed() >= self.commit_interval {
            self.commit(consumer);
        }
        if self.status_changed {
            self.publish_status();
        }
    }

    fn finish_restores<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let finished: Vec<i32> = self
            .tasks
            .iter()
            .filter(|(_, t)| match t {
                Task::Restoring(job) => job.is_finished(),
                Task::Failed { retry_at, .. } => *retry_at <= Instant::now(),
                Task::Active(_) => false,
            })
            .map(|(p, _)| *p)
            .collect();
        for p in finished {
            let task = match self.tasks.remove(&p) {
                Some(Task::Restoring(job)) => {
                    let progress = job.progress.clone();
                    let restored = job.join().map_err(|e| e.to_string()).and_then(|store| {
                        ActiveTask::new(store, self.settings.specs.clone(), progress.clone())
                            .map_err(|e| e.to_string())
                    });
                    // Changelog records applied, whether or not the restore then succeeded.
                    self.shared
                        .metrics
                        .restored_records
                        .inc_by(progress.restored.load(std::sync::atomic::Ordering::Relaxed));
                    match restored {
                        Ok(active) => {
                            self.resume(consumer, p);
                            Task::Active(active)
                        }
                        Err(error) => {
                            tracing::error!(partition = p, %error, "restore failed; retrying in {RESTORE_RETRY:?}");
                            Task::Failed {
                                error,
                                retry_at: Instant::now() + RESTORE_RETRY,
                                progress,
                            }
                        }
                    }
                }
                Some(Task::Failed { .. }) => Task::Restoring(self.start_restore(p)),
                Some(other) => other,
                None => continue,
            };
            self.tasks.insert(p, task);
            self.status_changed = true;
        }
    }

    fn resume<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, partition: i32) {
        let topic = &self.settings.repartition_topic;
        if let Some(offset) = self.rewinds.remove(&partition)
            && let Err(e) = consumer.seek(topic, partition, Offset::Offset(offset), Duration::from_secs(10))
        {
            self.broken = Some(format!("cannot rewind {topic}[{partition}] to {offset}: {e}"));
            return;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        if let Err(e) = consumer.resume(&tpl) {
            self.broken = Some(format!("cannot resume {topic}[{partition}]: {e}"));
        }
    }

    fn start_restore(&self, partition: i32) -> RestoreJob {
        RestoreJob::start(RestoreParams {
            partition,
            path: self.settings.partition_dir(partition),
            identity: self.settings.store_identity(partition),
            specs: self.settings.specs.clone(),
            resources: self.resources.clone(),
            changelog_topic: self.settings.changelog_topic.clone(),
            kafka: self.kafka.clone(),
        })
    }

    /// Newly assigned partitions: inputs are processed at once; counting
    /// partitions stay paused until their store is restored.
    pub fn on_assign<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        self.shared
            .metrics
            .rebalances
            .get_or_create(&self.shared.metrics.kind("assign"))
            .inc();
        // First assignment of the session: take over the transactional id now,
        // which also aborts a crashed predecessor's open transaction so the
        // restores below see a stable changelog end at once.
        if let Err(e) = self.sink.init() {
            self.broken = Some(format!("cannot initialize the transactional producer: {e}"));
            return;
        }
        let mut pause = TopicPartitionList::new();
        for e in tpl.elements() {
            let p = e.partition();
            if e.topic() == self.settings.input_topic {
                self.inputs.insert(p);
            } else if e.topic() == self.settings.repartition_topic {
                pause.add_partition(e.topic(), p);
                if let Some(old) = self.tasks.remove(&p) {
                    old.close(p);
                }
                let job = self.start_restore(p);
                self.tasks.insert(p, Task::Restoring(job));
            }
        }
        if pause.count() > 0
            && let Err(e) = consumer.pause(&pause)
        {
            self.broken = Some(format!("cannot pause partitions while they restore: {e}"));
        }
        tracing::info!(assigned = ?partition_names(tpl), "partitions assigned");
        self.status_changed = true;
        self.shared.status_mut().joined = true;
        self.publish_status();
    }

    /// Partitions leaving this worker: commit everything first (so the next
    /// owner starts exactly where this one stopped), then close their stores.
    pub fn on_revoke<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        self.shared
            .metrics
            .rebalances
            .get_or_create(&self.shared.metrics.kind("revoke"))
            .inc();
        if self.broken.is_none() {
            self.commit(consumer);
        }
        self.release(tpl);
        tracing::info!(revoked = ?partition_names(tpl), "partitions revoked");
    }

    /// Partitions taken away without a revoke (session timeout): another
    /// worker may own them already, so nothing uncommitted may be committed.
    pub fn on_lost(&mut self, tpl: &TopicPartitionList) {
        self.shared
            .metrics
            .rebalances
            .get_or_create(&self.shared.metrics.kind("lost"))
            .inc();
        tracing::warn!(lost = ?partition_names(tpl), "partitions lost; discarding uncommitted work");
        self.sink.abort();
        self.discard_uncommitted();
        self.release(tpl);
    }

    /// Forgets everything since the last commit: combined records, dead
    /// letters and in-memory counts (the stores hold the committed state).
    fn discard_uncommitted(&mut self) {
        self.combiner.clear();
        self.dead_letters.clear();
        let windows = self.settings.specs.len();
        self.tally = Tally {
            counted: vec![0; windows],
            late: vec![0; windows],
            outputs: vec![0; windows],
            ..Default::default()
        };
        for (p, task) in self.tasks.iter_mut() {
            if let Task::Active(t) = task {
                match t.store.stream_time() {
                    Ok(st) => t.counts = PartitionCounts::new(self.settings.specs.clone(), st),
                    Err(e) => self.broken = Some(format!("partition {p}: {e}")),
                }
            }
        }
    }

    /// After an aborted transaction: discard the uncommitted work and move
    /// every processed partition back to its committed offset, so the same
    /// records are processed again into the next transaction.
    fn rewind_to_last_commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        self.discard_uncommitted();
        self.committed.clear();
        let mut tpl = TopicPartitionList::new();
        for p in &self.inputs {
            tpl.add_partition(&self.settings.input_topic, *p);
        }
        for (p, task) in &self.tasks {
            if matches!(task, Task::Active(_)) && !self.rewinds.contains_key(p) {
                tpl.add_partition(&self.settings.repartition_topic, *p);
            }
        }
        if tpl.count() == 0 {
            return;
        }
        let rewound = consumer
            .committed_offsets(tpl, Duration::from_secs(30))
            .and_then(|committed| {
                let mut seek = TopicPartitionList::new();
                for e in committed.elements() {
                    let offset = match e.offset() {
                        Offset::Offset(o) => Offset::Offset(o),
                        _ => Offset::Beginning,
                    };
                    seek.add_partition_offset(e.topic(), e.partition(), offset)?;
                }
                consumer.seek_partitions(seek, Duration::from_secs(30))
            });
        match rewound {
            Ok(result) => {
                for e in result.elements() {
                    if let Err(err) = e.error() {
                        self.broken = Some(format!("cannot rewind {}[{}]: {err}", e.topic(), e.partition()));
                    }
                }
            }
            Err(e) => self.broken = Some(format!("cannot rewind to the last commit: {e}")),
        }
    }

    fn release(&mut self, tpl: &TopicPartitionList) {
        for e in tpl.elements() {
            let p = e.partition();
            if e.topic() == self.settings.input_topic {
                self.inputs.remove(&p);
                self.committed.remove(&(false, p));
            } else if e.topic() == self.settings.repartition_topic {
                if let Some(task) = self.tasks.remove(&p) {
                    self.shared.status_mut().partitions.remove(&p);
                    task.close(p);
                }
                self.rewinds.remove(&p);
                self.committed.remove(&(true, p));
            }
        }
        self.status_changed = true;
        self.shared.status_mut().joined = true;
        self.publish_status();
    }

    /// Releases everything (end of session).
    pub fn close_all(&mut self) {
        for (p, task) in std::mem::take(&mut self.tasks) {
            task.close(p);
        }
        self.inputs.clear();
        self.shared.status_mut().partitions.clear();
        self.publish_status();
    }

    /// Positions that moved since the last commit, of partitions whose records were all processed.
    fn offsets_to_commit<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        let Ok(positions) = consumer.position() else {
            return tpl;
        };
        for e in positions.elements() {
            let p = e.partition();
            let repartition = e.topic() == self.settings.repartition_topic;
            let eligible = if repartition {
                matches!(self.tasks.get(&p), Some(Task::Active(_))) && !self.rewinds.contains_key(&p)
            } else {
                e.topic() == self.settings.input_topic && self.inputs.contains(&p)
            };
            if let (true, Offset::Offset(o)) = (eligible, e.offset())
                && self.committed.get(&(repartition, p)) != Some(&o)
            {
                let _ = tpl.add_partition_offset(e.topic(), p, Offset::Offset(o));
            }
        }
        tpl
    }

    fn has_work(&self) -> bool {
        !self.combiner.is_empty()
            || !self.dead_letters.is_empty()
            || self
                .tasks
                .values()
                .any(|t| matches!(t, Task::Active(a) if a.counts.is_dirty()))
    }

    /// Commits everything consumed so far. On failure the transaction is
    /// aborted and the session marked broken: it restarts from the last commit.
    pub fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        if self.broken.is_some() {
            return;
        }
        self.last_commit = Instant::now();
        let offsets = self.offsets_to_commit(consumer);
        if offsets.count() == 0 && !self.has_work() {
            self.flush_tally();
            return;
        }
        let started = Instant::now();
        let shared = self.shared.clone();
        let m = &shared.metrics;
        match self.try_commit(consumer, &offsets) {
            Ok(()) => {
                for e in offsets.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        let repartition = e.topic() == self.settings.repartition_topic;
                        self.committed.insert((repartition, e.partition()), o);
                    }
                }
                m.commit_duration_seconds.observe(started.elapsed().as_secs_f64());
                m.commits.get_or_create(&m.kind("ok")).inc();
                self.failed_commits = 0;
                self.flush_tally();
            }
            Err(e) => {
                m.commits.get_or_create(&m.kind("failed")).inc();
                self.sink.abort();
                self.failed_commits += 1;
                if e.is_fatal() || self.failed_commits >= MAX_COMMIT_FAILURES {
                    tracing::error!(error = %e, "commit failed; restarting the session from the last commit");
                    self.broken = Some(format!("commit failed: {e}"));
                } else {
                    // Typically a rebalance in progress (stale generation): the
                    // transaction is aborted and its work redone after it.
                    tracing::warn!(error = %e, "commit failed; transaction aborted, resuming from the last commit");
                    self.rewind_to_last_commit(consumer);
                }
            }
        }
    }

    fn try_commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        offsets: &TopicPartitionList,
    ) -> Result<(), CommitError> {
        let started = Instant::now();
        let s = &self.settings;
        self.sink.init()?;
        self.sink.begin()?;
        for (video_id, c) in self.combiner.drain() {
            let value = codec::encode_repartition_value(c.count, c.max_ts);
            self.sink.send(Record {
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
            send_dead_letter(&self.sink, &s.dead_letter_topic, dl)?;
        }
        let mut plans: Vec<(i32, CommitPlan)> = Vec::new();
        for (&p, task) in self.tasks.iter_mut() {
            let Task::Active(task) = task else { continue };
            if !task.counts.is_dirty() {
                continue;
            }
            let plan = task.prepare(&s.specs, s.worker.emit)?;
            send_plan(&self.sink, s, p, &plan)?;
            plans.push((p, plan));
        }
        let prepared = Instant::now();
        let checkpoints = self.sink.commit(offsets, consumer)?;
        let committed = Instant::now();
        for (p, plan) in plans {
            if let Some(Task::Active(task)) = self.tasks.get_mut(&p) {
                task.store.apply_plan(&plan, checkpoints.get(&p).map(|o| o + 1))?;
                task.counts.mark_committed();
            }
            for w in &plan.outputs {
                self.tally.outputs[w.id.window] += 1;
            }
        }
        tracing::debug!(
            prepare_ms = (prepared - started).as_millis() as u64,
            transaction_ms = (committed - prepared).as_millis() as u64,
            store_ms = committed.elapsed().as_millis() as u64,
            "commit"
        );
        Ok(())
    }
}

fn partition_names(tpl: &TopicPartitionList) -> Vec<String> {
    tpl.elements()
        .iter()
        .map(|e| format!("{}[{}]", e.topic(), e.partition()))
        .collect()
}
