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

use crate::commit::sink::{Sink, SinkError};
use crate::config::Settings;
use crate::count::counts::{Applied, PartitionCounts};
use crate::count::partitioner::partition_for;
use crate::count::store::{StoreError, StoreResources};
use crate::count::task::{ActiveTask, Task};
use crate::engine::offsets::{PartitionOffsets, Start};
use crate::rekey::combiner::{Combined, Combiner};
use crate::rekey::dead_letter::DeadLetter;
use crate::rekey::decode::{DecodeError, decode_input};
use crate::repartition::decode_repartition;
use crate::runtime::state::Shared;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod activate;
mod assign;
mod commit;
pub mod offsets;
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

/// Why a session must end; the next one derives everything again from Kafka.
#[derive(Debug, thiserror::Error)]
pub enum SessionEnd {
    #[error("commit failed: {0}")]
    Commit(CommitError),
    #[error("commit failed ({commit}) and so did the abort ({abort}): its outcome is unknown")]
    AbortFailed {
        commit: Box<CommitError>,
        abort: Box<SinkError>,
    },
    #[error("partitions lost and the open transaction could not be aborted: {0}")]
    LostAbortFailed(SinkError),
    #[error("cannot initialize the transactional producer: {0}")]
    InitProducer(SinkError),
    #[error("the committed offsets of the assigned partitions are not readable after {waited:?}: {problem}")]
    UnstableOffsets { waited: Duration, problem: String },
    #[error("shutting down while waiting for stable committed offsets")]
    ShuttingDown,
    #[error("cannot {action} {topic}[{partition}]: {source}")]
    Partition {
        action: &'static str,
        topic: String,
        partition: i32,
        source: KafkaError,
    },
    #[error("cannot {action}: {source}")]
    Consumer {
        action: &'static str,
        source: KafkaError,
    },
    #[error("partition {partition}: {source}")]
    Store { partition: i32, source: StoreError },
    #[error("the commit thread {0}")]
    CommitThread(String),
}

impl SessionEnd {
    /// Whether another process with this worker's instance id took over.
    pub fn fenced_by_another_instance(&self) -> bool {
        let sink = |e: &CommitError| matches!(e, CommitError::Sink(s) if s.fenced_by_another_instance());
        match self {
            SessionEnd::Commit(e) => sink(e),
            SessionEnd::AbortFailed { commit, abort } => sink(commit) || abort.fenced_by_another_instance(),
            SessionEnd::InitProducer(e) | SessionEnd::LostAbortFailed(e) => e.fenced_by_another_instance(),
            _ => false,
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

/// Metric counts gathered between commits (atomics per record would cost more).
#[derive(Default)]
struct Tally {
    consumed_input: u64,
    consumed_repartition: u64,
    repartitioned: u64,
    counted_locally: u64,
    counted: Vec<u64>,
    late: Vec<u64>,
    outputs: Vec<u64>,
    dead: HashMap<&'static str, u64>,
}

impl Tally {
    /// `count` likes counted, or dropped as late, per window size.
    fn add(&mut self, applied: Applied, count: u64) {
        for w in 0..self.counted.len() {
            if applied.is_late_for(w) {
                self.late[w] += count;
            } else {
                self.counted[w] += count;
            }
        }
    }

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
    broken: Option<SessionEnd>,
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

    pub fn broken(&self) -> Option<&SessionEnd> {
        self.broken.as_ref()
    }

    pub fn take_broken(&mut self) -> Option<SessionEnd> {
        self.broken.take()
    }

    /// A warm shutdown: every Kafka call from now on ends by `deadline`.
    pub fn prepare_shutdown<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, deadline: Instant) {
        self.collect_commit(consumer, true);
        if let Some(sink) = self.sink.as_mut() {
            sink.set_deadline(deadline);
        }
    }

    /// Ends the session from outside the engine (a failed rebalance).
    pub fn fail(&mut self, reason: SessionEnd) {
        self.set_broken(reason);
    }

    fn set_broken(&mut self, reason: SessionEnd) {
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
                match decode_input(format, m.payload(), m.timestamp().to_millis()) {
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
                match decode_repartition(m.key(), m.payload()) {
                    Ok((id, count, ts)) => count_in(task, &mut self.tally, id, count, ts),
                    Err(error) => self.dead_letter(m, error),
                }
            }
            None => {}
        }
    }

    /// Counts the combined records whose counting partition is active in
    /// this session right away, in the transaction that commits their input
    /// offsets: one transaction from event to output instead of two (re-key,
    /// then count what was read back). Returns the others, for the
    /// repartition topic. Either way each record is counted once: in the
    /// transaction that commits its input offset, or from the repartition
    /// record that transaction writes.
    ///
    /// Up to [`MAX_PENDING`] touched windows: past that the records go to the
    /// repartition topic too, so one transaction stays as bounded as when
    /// every record took that way (with a million distinct videos, each
    /// record touches new windows).
    fn count_locally(&mut self, combined: Vec<(Arc<str>, Combined)>) -> Vec<(Arc<str>, Combined)> {
        let partitions = self.settings.partitions;
        let mut touched = self.pending_summary().1;
        let mut elsewhere = Vec::new();
        for (video_id, c) in combined {
            let partition = partition_for(video_id.as_bytes(), partitions);
            match self.tasks.get_mut(&partition) {
                Some(Task::Active(task)) if touched < MAX_PENDING => {
                    let before = task.counts.touched_windows();
                    let applied = task.counts.apply_id(&video_id, c.count, c.max_ts);
                    self.tally.add(applied, c.count);
                    touched += task.counts.touched_windows() - before;
                    self.tally.counted_locally += 1;
                }
                _ => elsewhere.push((video_id, c)),
            }
        }
        elsewhere
    }

    fn dead_letter(&mut self, m: &BorrowedMessage<'_>, error: DecodeError) {
        *self.tally.dead.entry(error.kind()).or_default() += 1;
        tracing::debug!(topic = m.topic(), partition = m.partition(), offset = m.offset(), %error, "dead-lettering a record");
        self.dead_letters.push(DeadLetter::of(m, error));
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
        self.due(combined, touched_windows)
    }

    /// Periodic work between records: finished restores, status, the commit clock.
    pub fn housekeeping<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        self.finish_restores(consumer);
        self.commit_if_due(consumer);
        if self.status_changed {
            self.publish_status();
        }
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
                    Err(e) => {
                        failure = Some(SessionEnd::Store {
                            partition: *p,
                            source: e,
                        })
                    }
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
                        self.set_broken(SessionEnd::Partition {
                            action: "rewind",
                            topic: e.topic().to_owned(),
                            partition: e.partition(),
                            source: err,
                        });
                    }
                }
            }
            Err(e) => self.set_broken(SessionEnd::Consumer {
                action: "rewind to the last commit",
                source: e,
            }),
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

/// Counts `count` likes of `video_id` at event time `ts` in an active partition.
fn count_in(task: &mut ActiveTask, tally: &mut Tally, video_id: &str, count: u64, ts: i64) {
    let applied = task.counts.apply(video_id, count, ts);
    tally.add(applied, count);
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
