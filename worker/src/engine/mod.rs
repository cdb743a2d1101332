//! The processing state of one consumer session: it routes each consumed
//! record (input -> decode, dead-letter or combine; repartition -> count in
//! its partition), commits everything in one place, and follows the
//! assignment (proven start offsets and restores on assign, commit then
//! close on revoke).
//!
//! Every owned partition has its own offsets ([`PartitionOffsets`]): where it
//! started in this session, what it processed, what its last transaction
//! committed. A failed commit rewinds each partition to exactly that last
//! commit; any doubt about what Kafka holds ends the session instead, and the
//! next one derives everything again from Kafka.

use crate::codec::{self, DecodeError};
use crate::combiner::Combiner;
use crate::config::Settings;
use crate::counts::PartitionCounts;
use crate::positions::{PartitionOffsets, Start};
use crate::restore::{RestoreJob, RestoreParams};
use crate::sink::{Sink, SinkError};
use crate::state::Shared;
use crate::store::{StoreError, StoreResources};
use crate::task::{ActiveTask, Task};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod assign;
mod commit;
mod records;
mod report;

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

/// Which of the two subscribed topics a consumed record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Input,
    Repartition,
}

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

impl Tally {
    fn new(windows: usize) -> Self {
        Self {
            counted: vec![0; windows],
            late: vec![0; windows],
            outputs: vec![0; windows],
            ..Default::default()
        }
    }
}

/// One partition's offset to commit in the next transaction.
#[derive(Debug, Clone, Copy)]
struct CommitOffset {
    source: Source,
    partition: i32,
    offset: i64,
}

pub struct Engine {
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    /// The producer; away on the commit thread while a commit runs.
    sink: Option<Sink>,
    in_flight: Option<commit::InFlight>,
    kafka: ClientConfig,
    resources: StoreResources,
    combiner: Combiner,
    dead_letters: Vec<DeadLetter>,
    /// Input partitions owned, each from its proven start offset.
    inputs: BTreeMap<i32, PartitionOffsets>,
    /// Counting partitions owned.
    tasks: BTreeMap<i32, Task>,
    last_commit: Instant,
    commit_interval: Duration,
    since_check: u32,
    tally: Tally,
    status_changed: bool,
    failed_commits: u32,
    /// Set when the session must end: nothing more is processed or committed.
    broken: Option<String>,
    /// This session's place in the process's status.
    slot: usize,
}

impl Engine {
    pub fn new(
        settings: Arc<Settings>,
        shared: Arc<Shared>,
        sink: Sink,
        kafka: ClientConfig,
        resources: StoreResources,
        slot: usize,
    ) -> Self {
        Self {
            combiner: Combiner::new(settings.bucket_ms),
            commit_interval: settings.worker.commit_interval.0,
            tally: Tally::new(settings.specs.len()),
            settings,
            shared,
            sink: Some(sink),
            in_flight: None,
            kafka,
            resources,
            dead_letters: Vec::new(),
            inputs: BTreeMap::new(),
            tasks: BTreeMap::new(),
            last_commit: Instant::now(),
            since_check: 0,
            status_changed: true,
            failed_commits: 0,
            broken: None,
            slot,
        }
    }

    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// A warm shutdown: every Kafka call from now on ends by `deadline`.
    pub fn prepare_shutdown<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, deadline: Instant) {
        self.collect_commit(consumer, true);
        if let Some(sink) = self.sink.as_mut() {
            sink.set_deadline(deadline);
        }
    }

    /// Ends the session from outside the engine (a failed rebalance).
    pub fn fail(&mut self, reason: String) {
        self.set_broken(reason);
    }

    fn set_broken(&mut self, reason: String) {
        if self.broken.is_none() {
            tracing::error!(%reason, "ending the session");
            self.broken = Some(reason);
        }
    }

    /// The one place a topic name is looked at.
    pub fn classify(&self, topic: &str) -> Option<Source> {
        if topic == self.settings.input_topic {
            Some(Source::Input)
        } else if topic == self.settings.repartition_topic {
            Some(Source::Repartition)
        } else {
            None
        }
    }

    fn topic(&self, source: Source) -> &str {
        match source {
            Source::Input => &self.settings.input_topic,
            Source::Repartition => &self.settings.repartition_topic,
        }
    }

    /// Routes one consumed record. Records of partitions that are not active
    /// (restoring) or that were processed already are skipped: an active
    /// partition is sought to its proven offset when it starts.
    pub fn process(&mut self, m: &BorrowedMessage<'_>) {
        if self.broken.is_some() {
            return;
        }
        let partition = m.partition();
        match self.classify(m.topic()) {
            Some(Source::Input) => {
                let Some(offsets) = self.inputs.get_mut(&partition) else {
                    return;
                };
                if !offsets.accept(m.offset()) {
                    return;
                }
                self.tally.consumed_input += 1;
                let format = self.settings.worker.topics.input_format;
                match codec::decode_input(format, m.payload(), m.timestamp().to_millis()) {
                    Ok(like) if like.count > 0 => self.combiner.add(&like.video_id, like.count, like.ts),
                    Ok(_) => {}
                    Err(error) => self.dead_letter(m, error),
                }
            }
            Some(Source::Repartition) => {
                let Some(Task::Active(task)) = self.tasks.get_mut(&partition) else {
                    return;
                };
                if !task.offsets.accept(m.offset()) {
                    return;
                }
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
            None => {}
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

    /// Whether to look at committing now (cheap, called per record): the
    /// interval passed, or too much is pending.
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
        self.commit_if_due(consumer);
        if self.status_changed {
            self.publish_status();
        }
    }

    fn finish_restores<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let finished: Vec<i32> = self
            .tasks
            .iter()
            .filter(|(_, t)| match t {
                Task::Restoring { job, .. } => job.is_finished(),
                Task::Failed { retry_at, .. } => *retry_at <= Instant::now(),
                Task::Active(_) => false,
            })
            .map(|(p, _)| *p)
            .collect();
        for p in finished {
            let task = match self.tasks.remove(&p) {
                Some(Task::Restoring { job, group_offset }) => self.activate(consumer, p, job, group_offset),
                Some(Task::Failed { group_offset, .. }) => Task::Restoring {
                    job: self.start_restore(p),
                    group_offset,
                },
                Some(other) => other,
                None => continue,
            };
            self.tasks.insert(p, task);
            self.status_changed = true;
        }
    }

    /// A restore finished: the partition resumes at the position its store
    /// recorded, or the task waits to retry the restore.
    fn activate<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        p: i32,
        job: RestoreJob,
        group_offset: Option<i64>,
    ) -> Task {
        let progress = job.progress.clone();
        let restored = job.join().map_err(|e| e.to_string()).and_then(|store| {
            ActiveTask::new(store, self.settings.specs.clone(), progress.clone(), group_offset)
                .map_err(|e| e.to_string())
        });
        // Changelog records applied, whether or not the restore then succeeded.
        self.shared
            .metrics
            .restored_records
            .inc_by(progress.restored.load(std::sync::atomic::Ordering::Relaxed));
        match restored {
            Ok((active, start)) => {
                if start.disagrees_with_group {
                    tracing::warn!(
                        partition = p,
                        store_position = ?start.start,
                        group_offset,
                        "the store's position and the group's committed offset differ; resuming at the store's"
                    );
                }
                self.seek_and_resume(consumer, Source::Repartition, p, start.start);
                Task::Active(active)
            }
            Err(error) => {
                tracing::error!(partition = p, %error, "restore failed; retrying in {RESTORE_RETRY:?}");
                Task::Failed {
                    error,
                    retry_at: Instant::now() + RESTORE_RETRY,
                    progress,
                    group_offset,
                }
            }
        }
    }

    fn seek_and_resume<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        source: Source,
        partition: i32,
        start: Start,
    ) {
        let topic = self.topic(source).to_owned();
        if let Err(e) = consumer.seek(&topic, partition, kafka_offset(start), Duration::from_secs(10)) {
            self.set_broken(format!("cannot seek {topic}[{partition}] to {start:?}: {e}"));
            return;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&topic, partition);
        if let Err(e) = consumer.resume(&tpl) {
            self.set_broken(format!("cannot resume {topic}[{partition}]: {e}"));
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

    /// Forgets everything since the last commit: combined records, dead
    /// letters and in-memory counts (the stores hold the committed state).
    fn discard_uncommitted(&mut self) {
        self.combiner.clear();
        self.dead_letters.clear();
        self.tally = Tally::new(self.settings.specs.len());
        let mut failure = None;
        for (p, task) in self.tasks.iter_mut() {
            if let Task::Active(t) = task {
                match t.store.stream_time() {
                    Ok(st) => t.counts = PartitionCounts::new(self.settings.specs.clone(), st),
                    Err(e) => failure = Some(format!("partition {p}: {e}")),
                }
            }
        }
        if let Some(f) = failure {
            self.set_broken(f);
        }
    }

    /// After an aborted transaction: discard the uncommitted work and seek
    /// every owned partition back to its last commit, so the same records are
    /// processed again into the next transaction.
    fn rewind_to_last_commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        self.discard_uncommitted();
        let mut seek = TopicPartitionList::new();
        for (p, offsets) in self.inputs.iter_mut() {
            let _ = seek.add_partition_offset(&self.settings.input_topic, *p, kafka_offset(offsets.rewind()));
        }
        for (p, task) in self.tasks.iter_mut() {
            if let Task::Active(t) = task {
                let to = kafka_offset(t.offsets.rewind());
                let _ = seek.add_partition_offset(&self.settings.repartition_topic, *p, to);
            }
        }
        if seek.count() == 0 {
            return;
        }
        match consumer.seek_partitions(seek, Duration::from_secs(30)) {
            Ok(result) => {
                for e in result.elements() {
                    if let Err(err) = e.error() {
                        self.set_broken(format!("cannot rewind {}[{}]: {err}", e.topic(), e.partition()));
                    }
                }
            }
            Err(e) => self.set_broken(format!("cannot rewind to the last commit: {e}")),
        }
    }

    /// Releases everything (end of session), after the running commit.
    pub fn close_all<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        self.collect_commit(consumer, true);
        for (p, task) in std::mem::take(&mut self.tasks) {
            task.close(p);
        }
        self.inputs.clear();
        self.shared.slot_mut(self.slot).partitions.clear();
        self.publish_status();
    }
}

fn kafka_offset(start: Start) -> Offset {
    match start {
        Start::Offset(o) => Offset::Offset(o),
        Start::Beginning => Offset::Beginning,
    }
}

fn partition_names(tpl: &TopicPartitionList) -> Vec<String> {
    tpl.elements()
        .iter()
        .map(|e| format!("{}[{}]", e.topic(), e.partition()))
        .collect()
}
