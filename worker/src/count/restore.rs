//! Bringing one partition's store up to date on assignment: the local store
//! plus the changelog tail after its checkpoint, or the whole changelog when
//! the store is missing or unusable. Runs on its own thread so the other
//! partitions keep being processed.

use crate::count::store::{PartitionStore, StoreError, StoreResources, wipe};
use crate::count::window::CountWindow;
use crate::kafka::{TRANSACTION_TIMEOUT, plain_consumer_config};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading changelog {topic}[{partition}]: {source}")]
    Kafka {
        topic: String,
        partition: i32,
        source: KafkaError,
    },
    #[error("changelog {topic}[{partition}] made no progress for {0:?} at offset {1}", .stalled_for, .offset)]
    Stalled {
        topic: String,
        partition: i32,
        stalled_for: Duration,
        offset: i64,
    },
    #[error("restore cancelled")]
    Cancelled,
}

/// Progress of one restore, readable while it runs.
#[derive(Debug, Default)]
pub struct RestoreProgress {
    pub restored: AtomicU64,
    /// Changelog offset the restore must reach (-1 until known).
    pub end_offset: AtomicI64,
    /// Changelog offset read so far (-1 until known).
    pub position: AtomicI64,
}

impl RestoreProgress {
    pub fn remaining(&self) -> i64 {
        let (end, pos) = (
            self.end_offset.load(Ordering::Relaxed),
            self.position.load(Ordering::Relaxed),
        );
        if end < 0 || pos < 0 {
            -1
        } else {
            (end - pos).max(0)
        }
    }
}

/// Everything a restore needs.
#[derive(Clone)]
pub struct RestoreParams {
    pub partition: i32,
    pub path: PathBuf,
    pub identity: String,
    pub specs: Arc<[CountWindow]>,
    pub resources: StoreResources,
    pub changelog_topic: String,
    pub kafka: ClientConfig,
}

/// A restore running on its own thread.
pub struct RestoreJob {
    pub partition: i32,
    pub progress: Arc<RestoreProgress>,
    cancel: Arc<AtomicBool>,
    handle: JoinHandle<Result<PartitionStore, RestoreError>>,
}

impl RestoreJob {
    pub fn start(params: RestoreParams) -> Self {
        let progress = Arc::new(RestoreProgress {
            end_offset: AtomicI64::new(-1),
            position: AtomicI64::new(-1),
            ..Default::default()
        });
        let cancel = Arc::new(AtomicBool::new(false));
        let partition = params.partition;
        let (p, c) = (progress.clone(), cancel.clone());
        let handle = std::thread::Builder::new()
            .name(format!("restore-{partition}"))
            .spawn(move || restore(&params, &p, &c))
            .expect("spawning a restore thread");
        Self {
            partition,
            progress,
            cancel,
            handle,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    pub fn join(self) -> Result<PartitionStore, RestoreError> {
        self.handle.join().unwrap_or(Err(RestoreError::Cancelled))
    }

    /// Stops the restore and waits for its thread (and its store handle) to end.
    pub fn cancel(self) {
        self.cancel.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
    }
}

const APPLY_BATCH: usize = 10_000;
const STALL_LIMIT: Duration = Duration::from_secs(120);

fn restore(
    p: &RestoreParams,
    progress: &RestoreProgress,
    cancel: &AtomicBool,
) -> Result<PartitionStore, RestoreError> {
    let started = Instant::now();
    let kafka_err = |source| RestoreError::Kafka {
        topic: p.changelog_topic.clone(),
        partition: p.partition,
        source,
    };
    let (mut store, wiped) =
        PartitionStore::open_or_rebuild(&p.path, &p.identity, p.specs.clone(), &p.resources, cancel)?;
    // librdkafka needs a group id to assign partitions; this consumer never joins
    // the group nor commits.
    let committed: BaseConsumer = plain_consumer_config(&p.kafka, true)
        .set("group.id", format!("{}-restore", p.changelog_topic))
        .create()
        .map_err(kafka_err)?;
    let uncommitted: BaseConsumer = plain_consumer_config(&p.kafka, false)
        .create()
        .map_err(kafka_err)?;
    let (low, end) = stable_end(p, &committed, &uncommitted, cancel)?;
    progress.end_offset.store(end, Ordering::Relaxed);

    let start = match replay_from(store.checkpoint()?, low, end) {
        Replay::Tail(from) => from,
        Replay::Whole => low,
        Replay::Rebuild => {
            tracing::warn!(
                partition = p.partition,
                checkpoint = ?store.checkpoint()?,
                low,
                end,
                "store checkpoint is outside the changelog; rebuilding the store from the changelog"
            );
            drop(store);
            wipe(&p.path)?;
            store =
                PartitionStore::open_or_rebuild(&p.path, &p.identity, p.specs.clone(), &p.resources, cancel)?
                    .0;
            low
        }
    };
    progress.position.store(start, Ordering::Relaxed);
    let mut restored = 0u64;
    if start < end {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&p.changelog_topic, p.partition, Offset::Offset(start))
            .map_err(kafka_err)?;
        committed.assign(&tpl).map_err(kafka_err)?;
        let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(APPLY_BATCH);
        let mut next = start;
        let mut last_progress = Instant::now();
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(RestoreError::Cancelled);
            }
            match committed.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    batch.push((
                        m.key().unwrap_or_default().to_vec(),
                        m.payload().map(<[u8]>::to_vec),
                    ));
                    next = m.offset() + 1;
                    last_progress = Instant::now();
                }
                Some(Err(e)) => {
                    tracing::warn!(partition = p.partition, error = %e, "changelog read error; retrying")
                }
                None => {}
            }
            let position = position_of(&committed, &p.changelog_topic, p.partition).max(next);
            let done = position >= end;
            if batch.len() >= APPLY_BATCH || (done && !batch.is_empty()) {
                store.apply_changelog(batch.iter().map(|(k, v)| (&k[..], v.as_deref())), next)?;
                restored += batch.len() as u64;
                progress.restored.store(restored, Ordering::Relaxed);
                batch.clear();
            }
            progress.position.store(position, Ordering::Relaxed);
            if done {
                store.apply_changelog([], position)?;
                break;
            }
            if last_progress.elapsed() > STALL_LIMIT {
                return Err(RestoreError::Stalled {
                    topic: p.changelog_topic.clone(),
                    partition: p.partition,
                    stalled_for: STALL_LIMIT,
                    offset: position,
                });
            }
        }
    }
    store.purge_expired()?;
    store.track_batched_windows()?;
    tracing::info!(
        partition = p.partition,
        from_offset = start,
        end_offset = end,
        restored_records = restored,
        rebuilt = wiped || start == low && low < end,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "partition restored"
    );
    Ok(store)
}

/// The changelog's start and end once no transaction is open on it: the end a
/// read_committed reader sees (last stable offset) equals the high watermark.
/// A crashed owner's open transaction is aborted by its restarted instance or
/// by the broker after the transaction timeout; reading before that could miss
/// records that are about to commit.
fn stable_end(
    p: &RestoreParams,
    committed: &BaseConsumer,
    uncommitted: &BaseConsumer,
    cancel: &AtomicBool,
) -> Result<(i64, i64), RestoreError> {
    let kafka_err = |source| RestoreError::Kafka {
        topic: p.changelog_topic.clone(),
        partition: p.partition,
        source,
    };
    let started = Instant::now();
    let mut warned = false;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(RestoreError::Cancelled);
        }
        // Short, so a cancelled restore (revoked, shutting down) ends soon even with the broker away.
        let timeout = Duration::from_secs(3);
        let (low, stable) = committed
            .fetch_watermarks(&p.changelog_topic, p.partition, timeout)
            .map_err(kafka_err)?;
        let (_, high) = uncommitted
            .fetch_watermarks(&p.changelog_topic, p.partition, timeout)
            .map_err(kafka_err)?;
        if stable >= high {
            return Ok((low, high));
        }
        if !warned && started.elapsed() > Duration::from_secs(2) {
            tracing::warn!(
                partition = p.partition,
                last_stable = stable,
                high_watermark = high,
                timeout_s = TRANSACTION_TIMEOUT.as_secs(),
                "changelog has an open transaction (a previous owner's); waiting for it to end"
            );
            warned = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn position_of(consumer: &BaseConsumer, topic: &str, partition: i32) -> i64 {
    let Ok(tpl) = consumer.position() else {
        return -1;
    };
    match tpl.find_partition(topic, partition).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => o,
        _ => -1,
    }
}

/// How a store catches up with its changelog `low..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The store matches the changelog up to this offset: replay the rest.
    Tail(i64),
    /// A new store: replay the whole changelog.
    Whole,
    /// The store's checkpoint is outside the changelog (the changelog was
    /// recreated, or the store belongs to an older one): start afresh.
    Rebuild,
}

pub fn replay_from(checkpoint: Option<i64>, low: i64, end: i64) -> Replay {
    match checkpoint {
        Some(c) if (low..=end).contains(&c) => Replay::Tail(c),
        None => Replay::Whole,
        Some(_) => Replay::Rebuild,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_replays_its_tail_or_the_whole_changelog() {
        assert_eq!(replay_from(Some(40), 10, 50), Replay::Tail(40));
        assert_eq!(replay_from(Some(50), 10, 50), Replay::Tail(50), "up to date");
        assert_eq!(replay_from(Some(10), 10, 50), Replay::Tail(10));
        assert_eq!(replay_from(None, 10, 50), Replay::Whole);
        assert_eq!(
            replay_from(Some(5), 10, 50),
            Replay::Rebuild,
            "before the changelog's start"
        );
        assert_eq!(
            replay_from(Some(60), 10, 50),
            Replay::Rebuild,
            "past its end: another changelog"
        );
    }
}
