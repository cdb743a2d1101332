//! One RocksDB per counting partition, under `<dataDir>/<applicationId>/partition-<p>`.
//!
//! The store holds the committed window counts, the stream time and the
//! changelog offset they correspond to (the checkpoint), all written in one
//! atomic batch after the Kafka transaction commits, so a store is never
//! ahead of its changelog. The write-ahead log is on but never synced: a
//! killed process keeps its last batches (they are in the page cache); a
//! machine crash may lose a few, and then the store is at an older, still
//! consistent checkpoint that the changelog tail brings forward.

use crate::count::changelog::for_each_restored;
use crate::count::changelog_batch::{BatchedWindows, ChangelogLayout};
use crate::count::counts::WindowId;
use crate::count::emit::{CommitPlan, WindowCount};
use crate::count::keys::{self, BATCH_SEQ_KEY, POSITION_KEY, STREAM_TIME_KEY};
use crate::count::open_counts::OpenWindowCounts;
use crate::count::window::CountWindow;
use crate::count::write_back::write_back_due;
use rocksdb::{
    BlockBasedOptions, Cache, DB, DBCompressionType, Options, ReadOptions, WriteBatch, WriteOptions,
};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const CHECKPOINT_KEY: &[u8] = b"m:checkpoint";
const IDENTITY_KEY: &[u8] = b"m:identity";
/// Open windows whose committed counts a store keeps in memory (~100 bytes
/// each): 10,000 videos take 30,000-60,000 over all partitions.
const OPEN_COUNTS_PER_STORE: usize = 100_000;
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} is locked by another process or handle: {reason}")]
    Locked { path: PathBuf, reason: String },
    #[error("store {path} belongs to {found:?}, not {expected:?}")]
    WrongIdentity {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("store {path}: {source}")]
    Rocks { path: PathBuf, source: rocksdb::Error },
    #[error("store {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("opening store {path} was cancelled")]
    Cancelled { path: PathBuf },
}

/// Memory shared by every partition store of the process, so the total stays
/// bounded however many partitions a worker owns.
#[derive(Clone)]
pub struct StoreResources {
    cache: Cache,
    write_buffers: rocksdb::WriteBufferManager,
}

impl StoreResources {
    pub fn new(block_cache_bytes: usize, write_buffer_bytes: usize) -> Self {
        Self {
            cache: Cache::new_lru_cache(block_cache_bytes),
            write_buffers: rocksdb::WriteBufferManager::new_write_buffer_manager(write_buffer_bytes, false),
        }
    }

    fn options(&self) -> Options {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&self.cache);
        table.set_bloom_filter(10.0, false);
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_block_based_table_factory(&table);
        opts.set_write_buffer_manager(&self.write_buffers);
        opts.set_write_buffer_size(16 << 20);
        opts.set_max_write_buffer_number(3);
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(2);
        opts.set_max_log_file_size(1 << 20);
        opts.set_max_open_files(256);
        opts.set_max_total_wal_size(64 << 20);
        opts
    }
}

impl StoreResources {
    pub fn block_cache_bytes(&self) -> usize {
        self.cache.get_usage()
    }
}

impl Default for StoreResources {
    fn default() -> Self {
        Self::new(32 << 20, 64 << 20)
    }
}

pub struct PartitionStore {
    db: DB,
    path: PathBuf,
    specs: Arc<[CountWindow]>,
    write_opts: WriteOptions,
    committed: Mutex<Committed>,
}

/// What commits applied that RocksDB may not hold yet.
struct Committed {
    open: OpenWindowCounts,
    stream_time: Option<i64>,
    position: Option<i64>,
    checkpoint: Option<i64>,
    batch_seq: Option<i64>,
    written_at: Instant,
    /// Which windows only a changelog batch holds (see `changelog_batch`).
    batched: BatchedWindows,
}

impl std::fmt::Debug for PartitionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionStore")
            .field("path", &self.path)
            .finish()
    }
}

impl PartitionStore {
    /// Opens (or creates) the store at `path`. `identity` names the changelog
    /// partition it mirrors; a store written for another one is refused.
    pub fn open(
        path: &Path,
        identity: &str,
        specs: Arc<[CountWindow]>,
        resources: &StoreResources,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(|e| StoreError::Invalid {
            path: path.into(),
            reason: format!("cannot create directory: {e}"),
        })?;
        let db = DB::open(&resources.options(), path).map_err(|e| classify(path, e))?;
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(false);
        let store = Self {
            db,
            path: path.into(),
            committed: Mutex::new(Committed {
                open: OpenWindowCounts::new(specs.len(), OPEN_COUNTS_PER_STORE),
                stream_time: None,
                position: None,
                checkpoint: None,
                batch_seq: None,
                written_at: Instant::now(),
                batched: BatchedWindows::default(),
            }),
            specs,
            write_opts,
        };
        match store.get(IDENTITY_KEY)? {
            None => {
                store
                    .db
                    .put_opt(IDENTITY_KEY, identity.as_bytes(), &store.write_opts)
                    .map_err(|e| store.err(e))?;
            }
            Some(found) if found == identity.as_bytes() => {}
            Some(found) => {
                return Err(StoreError::WrongIdentity {
                    path: path.into(),
                    found: String::from_utf8_lossy(&found).into_owned(),
                    expected: identity.into(),
                });
            }
        }
        Ok(store)
    }

    /// Opens the store, waiting while another handle still holds its lock
    /// (a previous owner closing, the previous process exiting), and starting
    /// afresh when it is unusable (corrupt, foreign). Never panics.
    pub fn open_or_rebuild(
        path: &Path,
        identity: &str,
        specs: Arc<[CountWindow]>,
        resources: &StoreResources,
        cancel: &AtomicBool,
    ) -> Result<(Self, bool), StoreError> {
        let mut delay = Duration::from_millis(50);
        let mut wiped = false;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(StoreError::Cancelled { path: path.into() });
            }
            match Self::open(path, identity, specs.clone(), resources) {
                Ok(store) => return Ok((store, wiped)),
                Err(StoreError::Locked { reason, .. }) => {
                    tracing::warn!(path = %path.display(), %reason, "store is still locked; retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) if !wiped => {
                    tracing::warn!(path = %path.display(), error = %e, "store is unusable; rebuilding it from the changelog");
                    wipe(path)?;
                    wiped = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rocksdb::Error) -> StoreError {
        StoreError::Rocks {
            path: self.path.clone(),
            source,
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get(key).map_err(|e| self.err(e))
    }

    /// A committed number: the last commit's if it is not written yet, else RocksDB's.
    fn committed_i64(&self, unwritten: Option<i64>, key: &[u8]) -> Result<Option<i64>, StoreError> {
        match unwritten {
            Some(v) => Ok(Some(v)),
            None => Ok(self.get(key)?.and_then(|v| keys::decode_i64(&v))),
        }
    }

    /// The changelog offset the store is consistent with: restore continues there.
    pub fn checkpoint(&self) -> Result<Option<i64>, StoreError> {
        let unwritten = self.committed().checkpoint;
        self.committed_i64(unwritten, CHECKPOINT_KEY)
    }

    /// The next repartition offset to count: every record before it is in the store.
    pub fn position(&self) -> Result<Option<i64>, StoreError> {
        let unwritten = self.committed().position;
        self.committed_i64(unwritten, POSITION_KEY)
    }

    pub fn stream_time(&self) -> Result<Option<i64>, StoreError> {
        let unwritten = self.committed().stream_time;
        self.committed_i64(unwritten, STREAM_TIME_KEY)
    }

    /// Once restored: takes every stored window as one only a changelog
    /// batch may hold (an earlier owner's), and continues its sequence numbers.
    pub fn track_batched_windows(&self) -> Result<(), StoreError> {
        let seq = self.committed_i64(self.committed().batch_seq, BATCH_SEQ_KEY)?;
        self.write_back(&mut self.committed(), &[])?;
        let mut windows = Vec::new();
        let mut opts = ReadOptions::default();
        let (from, to) = keys::all_windows_range();
        opts.set_iterate_lower_bound(from);
        opts.set_iterate_upper_bound(to);
        for item in self.db.iterator_opt(rocksdb::IteratorMode::Start, opts) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let (Some(k), Some(count)) = (keys::parse_window_key(&key), keys::decode_u64(&value)) else {
                continue;
            };
            let Some(window) = self.specs.iter().position(|s| s.size_ms == k.size_ms) else {
                continue;
            };
            if windows.len() == BatchedWindows::capacity() {
                tracing::info!(path = %self.path.display(), "too many windows to batch their changelog records; writing one record each");
                self.committed().batched = BatchedWindows::restored(seq.unwrap_or(0) as u64, None);
                return Ok(());
            }
            windows.push(WindowCount {
                id: WindowId {
                    window,
                    start: k.start,
                    video_id: k.video_id.into(),
                },
                count,
            });
        }
        self.committed().batched = BatchedWindows::restored(seq.unwrap_or(0) as u64, Some(windows));
        Ok(())
    }

    /// How `plan` writes its counts to the changelog.
    pub fn changelog_layout(&self, plan: &CommitPlan) -> ChangelogLayout {
        self.committed()
            .batched
            .layout(plan.changelog_puts(), plan.changelog_deletes())
    }

    fn key_of(&self, id: &WindowId) -> Vec<u8> {
        keys::window_key(self.specs[id.window].size_ms, id.start, &id.video_id)
    }

    fn committed(&self) -> MutexGuard<'_, Committed> {
        self.committed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Committed counts of `ids` (0 for windows not in the store): from the
    /// open windows in memory, the others read from RocksDB.
    pub fn counts(&self, ids: &[WindowId]) -> Result<Vec<u64>, StoreError> {
        let mut counts = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let committed = self.committed();
            for (i, id) in ids.iter().enumerate() {
                counts.push(committed.open.get(id).unwrap_or_else(|| {
                    missing.push(i);
                    0
                }));
            }
        }
        if missing.is_empty() {
            return Ok(counts);
        }
        let keys: Vec<Vec<u8>> = missing.iter().map(|&i| self.key_of(&ids[i])).collect();
        for (i, r) in missing.into_iter().zip(self.db.multi_get(&keys)) {
            let stored = r.map_err(|e| self.err(e))?;
            counts[i] = stored.and_then(|v| keys::decode_u64(&v)).unwrap_or(0);
        }
        Ok(counts)
    }

    /// Stored windows of size `window` whose start lies in `starts`.
    pub fn windows_in(&self, window: usize, starts: Range<i64>) -> Result<Vec<WindowCount>, StoreError> {
        if starts.is_empty() {
            return Ok(Vec::new());
        }
        self.write_back(&mut self.committed(), &[])?;
        let (from, to) = keys::window_key_range(self.specs[window].size_ms, starts);
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(from);
        opts.set_iterate_upper_bound(to);
        let mut out = Vec::new();
        for item in self.db.iterator_opt(rocksdb::IteratorMode::Start, opts) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            if let (Some(k), Some(count)) = (keys::parse_window_key(&key), keys::decode_u64(&value)) {
                out.push(WindowCount {
                    id: WindowId {
                        window,
                        start: k.start,
                        video_id: k.video_id.into(),
                    },
                    count,
                });
            }
        }
        Ok(out)
    }

    /// Applies a committed plan with its changelog checkpoint: in memory,
    /// and to RocksDB before deleting expired windows, before forgetting
    /// closed ones, and on the timer in its turn (see [`write_back_due`]). Returns whether it wrote back.
    pub fn apply_plan(
        &self,
        plan: &CommitPlan,
        checkpoint: Option<i64>,
        my_turn: bool,
    ) -> Result<bool, StoreError> {
        let mut committed = self.committed();
        let c = &mut *committed;
        c.open.committed(plan.store_puts.iter().map(|w| (&w.id, w.count)));
        c.stream_time = plan.stream_time.or(c.stream_time);
        c.position = plan.position.or(c.position);
        c.checkpoint = checkpoint.or(c.checkpoint);
        c.batched
            .committed(&plan.layout, plan.changelog_puts(), plan.changelog_deletes());
        if plan.layout.seq > 0 {
            c.batch_seq = Some(plan.layout.seq as i64);
        }
        let must = !plan.store_deletes.is_empty() || c.open.must_write_back(&self.specs, plan.stream_time);
        if !write_back_due(must, c.written_at.elapsed(), my_turn) {
            return Ok(false);
        }
        self.write_back(c, &plan.store_deletes)?;
        c.open.written_back(&self.specs, plan.stream_time);
        Ok(true)
    }

    /// Writes what commits applied since the last write back, and `deletes`
    /// (`(window index, starts)` ranges of expired windows), in one batch.
    fn write_back(&self, c: &mut Committed, deletes: &[(usize, Range<i64>)]) -> Result<(), StoreError> {
        let meta = [
            (STREAM_TIME_KEY, c.stream_time),
            (POSITION_KEY, c.position),
            (CHECKPOINT_KEY, c.checkpoint),
            (BATCH_SEQ_KEY, c.batch_seq),
        ];
        if c.open.unwritten_len() == 0 && deletes.is_empty() && meta.iter().all(|(_, v)| v.is_none()) {
            return Ok(());
        }
        // In key order: the memtable's skip list then finds each insert's
        // place from the previous one.
        let mut puts: Vec<(Vec<u8>, u64)> = c
            .open
            .unwritten()
            .map(|(id, count)| (self.key_of(id), count))
            .collect();
        puts.sort_unstable();
        let mut batch = WriteBatch::default();
        for (key, count) in &puts {
            batch.put(key, keys::encode_u64(*count));
        }
        for (window, starts) in deletes {
            let (from, to) = keys::window_key_range(self.specs[*window].size_ms, starts.clone());
            batch.delete_range(from, to);
        }
        for (key, value) in meta {
            if let Some(v) = value {
                batch.put(key, keys::encode_i64(v));
            }
        }
        self.db
            .write_opt(batch, &self.write_opts)
            .map_err(|e| self.err(e))?;
        c.open.all_written();
        (c.stream_time, c.position, c.checkpoint, c.batch_seq) = (None, None, None, None);
        c.written_at = Instant::now();
        Ok(())
    }

    /// Applies changelog records read during a restore (`None` = tombstone),
    /// with the offset to continue from.
    pub fn apply_changelog<'a>(
        &self,
        records: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
        checkpoint: i64,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        let mut batch_seq = None;
        for (key, value) in records {
            let seq = for_each_restored(key, value, |k, v| match v {
                Some(v) => batch.put(k, v),
                None => batch.delete(k),
            });
            batch_seq = seq.or(batch_seq);
        }
        if let Some(seq) = batch_seq {
            batch.put(BATCH_SEQ_KEY, keys::encode_i64(seq as i64));
        }
        batch.put(CHECKPOINT_KEY, keys::encode_i64(checkpoint));
        self.write_around_memory(batch)
    }

    /// Deletes every window already expired at the stored stream time. Normally a
    /// no-op; it cleans windows whose tombstones compaction removed before a
    /// restore could read them.
    pub fn purge_expired(&self) -> Result<(), StoreError> {
        let Some(st) = self.stream_time()? else {
            return Ok(());
        };
        let mut batch = WriteBatch::default();
        for spec in self.specs.iter() {
            let (from, to) = keys::window_key_range(spec.size_ms, i64::MIN..spec.expiry_bound(st));
            batch.delete_range(from, to);
        }
        self.write_around_memory(batch)
    }

    /// Writes `batch`, which the open windows in memory do not know of (a
    /// restore, a purge): they are written back first, then forgotten, so
    /// reads see RocksDB afterwards.
    fn write_around_memory(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut committed = self.committed();
        self.write_back(&mut committed, &[])?;
        committed.open.clear();
        self.db
            .write_opt(batch, &self.write_opts)
            .map_err(|e| self.err(e))
    }

    /// Counts of the retained windows of one video, per window size, oldest first.
    pub fn video_counts(&self, video_id: &str) -> Result<Vec<WindowCount>, StoreError> {
        let Some(st) = self.stream_time()? else {
            return Ok(Vec::new());
        };
        let video_id: std::sync::Arc<str> = video_id.into();
        let ids: Vec<WindowId> = self
            .specs
            .iter()
            .enumerate()
            .flat_map(|(window, spec)| {
                let video_id = video_id.clone();
                spec.retained_starts(st).map(move |start| WindowId {
                    window,
                    start,
                    video_id: video_id.clone(),
                })
            })
            .collect();
        let counts = self.counts(&ids)?;
        Ok(ids
            .into_iter()
            .zip(counts)
            .filter(|(_, c)| *c > 0)
            .map(|(id, count)| WindowCount { id, count })
            .collect())
    }

    /// Bytes held in memory by this store: memtables, table readers (index
    /// and filter blocks) and the open windows' counts (estimated at 100
    /// bytes each); the block cache is shared and reported apart.
    pub fn memory_bytes(&self) -> u64 {
        let rocksdb: u64 = [
            "rocksdb.cur-size-all-mem-tables",
            "rocksdb.estimate-table-readers-mem",
        ]
        .iter()
        .filter_map(|p| self.db.property_int_value(*p).ok().flatten())
        .sum();
        rocksdb + 100 * self.committed().open.len() as u64
    }

    /// Writes back every committed count and persists the memtables, so a
    /// restart restores from a recent checkpoint.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.write_back(&mut self.committed(), &[])?;
        self.db.flush().map_err(|e| self.err(e))
    }
}

fn classify(path: &Path, source: rocksdb::Error) -> StoreError {
    let text = source.to_string();
    if text.contains("lock") || text.contains("LOCK") {
        StoreError::Locked {
            path: path.into(),
            reason: text,
        }
    } else {
        StoreError::Rocks {
            path: path.into(),
            source,
        }
    }
}

/// Deletes a store's files.
pub fn wipe(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Invalid {
            path: path.into(),
            reason: format!("cannot delete: {e}"),
        }),
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
