//! Which window counts a commit writes to the changelog in one batch record,
//! and which one record each.
//!
//! Under load every commit touches most open windows, and two records per
//! window (an output and a changelog record) were most of a commit's time.
//! So a commit writes its partition's counts as one batch record, under the
//! key of slot `seq % SLOTS`: compaction keeps the newest batch of each slot,
//! so a batch is replaced `SLOTS` commits later. Before that, each window
//! whose newest record is that batch gets a record of its own: a window sits
//! in bucket `bucket_of(id)`, and the commit with sequence number `seq`
//! writes one record for each such window of bucket `seq % SLOTS`, which is
//! within `SLOTS` commits of any batch. A compacted changelog read in order
//! therefore still ends with every window's last count.
//!
//! A new owner does not know which windows only an older owner's batches
//! hold: it takes every window of its restored store as such (if there are
//! not too many; else it writes no batches) and continues the sequence
//! numbers, so each window's turn comes when it would have come before.
//! The state changes only once the transaction commits (`committed`), so an
//! aborted commit is redone with the same sequence number and turns.

use crate::count::counts::WindowId;
use crate::count::emit::WindowCount;
use crate::count::keys;
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

/// Batch records rotate over this many keys per partition.
pub const SLOTS: u64 = 32;
/// Window counts beyond this many bytes in one commit get a record each.
const MAX_BATCH_BYTES: usize = 512 << 10;
/// Windows whose newest record is a batch, at most, per partition: beyond,
/// counts get a record each.
const MAX_BATCHED_WINDOWS: usize = 100_000;

/// The bucket of a window: a fixed hash (FNV-1a), the same in every process
/// and version, since a new owner continues the old one's turns.
pub fn bucket_of(id: &WindowId) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = id.video_id.as_bytes().iter().copied();
    let bytes = bytes.chain(id.start.to_be_bytes()).chain([id.window as u8]);
    for b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % SLOTS) as usize
}

/// The windows of one partition whose newest changelog record is a batch,
/// with that count, per bucket; and the last batch's sequence number.
#[derive(Debug, Default)]
pub struct BatchedWindows {
    /// Off for a store that was never restored, or restored with too many
    /// windows to track: then no batch is written, and no older batch replaced.
    enabled: bool,
    seq: u64,
    buckets: Vec<HashMap<WindowId, u64>>,
    len: usize,
}

/// How one commit writes a partition's counts to the changelog.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChangelogLayout {
    /// The batch's sequence number; 0 when batches are off.
    pub seq: u64,
    /// How many of the commit's window counts, first ones first, go into the
    /// batch record; the others are written one record each.
    pub batched: usize,
    /// Bytes of the batch record's value.
    pub batch_bytes: usize,
    /// Windows of this commit's bucket whose newest record is an older batch:
    /// written one record each now.
    pub flush: Vec<WindowCount>,
    /// The bucket of each of the commit's window counts.
    buckets: Vec<usize>,
}

impl ChangelogLayout {
    pub fn slot(&self) -> u64 {
        self.seq % SLOTS
    }
}

impl BatchedWindows {
    /// After a restore: `last_seq` from the store, and every window it holds,
    /// or `None` when it holds too many (batches stay off).
    pub fn restored(last_seq: u64, windows: Option<Vec<WindowCount>>) -> Self {
        let Some(windows) = windows.filter(|w| w.len() <= MAX_BATCHED_WINDOWS) else {
            return Self {
                seq: last_seq,
                ..Self::default()
            };
        };
        let mut state = Self {
            enabled: true,
            seq: last_seq,
            buckets: vec![HashMap::new(); SLOTS as usize],
            len: 0,
        };
        for w in windows {
            state.upsert(w.id, w.count);
        }
        state
    }

    /// Windows tracked at most, for a store to know how many to read.
    pub fn capacity() -> usize {
        MAX_BATCHED_WINDOWS
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Decides the layout of a commit that writes `puts` and deletes `deletes`.
    pub fn layout<'a>(
        &self,
        puts: impl ExactSizeIterator<Item = &'a WindowCount>,
        deletes: impl Iterator<Item = &'a WindowId>,
    ) -> ChangelogLayout {
        if !self.enabled {
            return ChangelogLayout::default();
        }
        let seq = self.seq + 1;
        let turn = (seq % SLOTS) as usize;
        let room = MAX_BATCHED_WINDOWS.saturating_sub(self.len);
        let mut bytes = keys::BATCH_HEADER_BYTES;
        let mut batched = 0;
        let mut buckets = Vec::with_capacity(puts.len());
        let mut written_now: HashSet<&WindowId> = HashSet::new();
        for (i, w) in puts.enumerate() {
            let bucket = bucket_of(&w.id);
            buckets.push(bucket);
            let entry = keys::batch_entry_bytes(&w.id.video_id);
            if batched == i && batched < room && bytes + entry <= MAX_BATCH_BYTES {
                bytes += entry;
                batched += 1;
            }
            if bucket == turn {
                written_now.insert(&w.id);
            }
        }
        written_now.extend(deletes.filter(|id| bucket_of(id) == turn));
        let flush = self.buckets[turn]
            .iter()
            .filter(|(id, _)| !written_now.contains(id))
            .map(|(id, &count)| WindowCount {
                id: id.clone(),
                count,
            })
            .collect();
        ChangelogLayout {
            seq,
            batched,
            batch_bytes: bytes,
            flush,
            buckets,
        }
    }

    /// The commit laid out as `layout` went through.
    pub fn committed<'a>(
        &mut self,
        layout: &ChangelogLayout,
        puts: impl Iterator<Item = &'a WindowCount>,
        deletes: impl Iterator<Item = &'a WindowId>,
    ) {
        if !self.enabled {
            return;
        }
        self.seq = layout.seq;
        let turn = &mut self.buckets[(layout.seq % SLOTS) as usize];
        self.len -= turn.len();
        turn.clear();
        for (i, w) in puts.enumerate() {
            if i < layout.batched {
                self.upsert_in(layout.buckets[i], &w.id, w.count);
            } else {
                self.remove_in(layout.buckets[i], &w.id);
            }
        }
        for id in deletes {
            self.remove_in(bucket_of(id), id);
        }
    }

    fn upsert(&mut self, id: WindowId, count: u64) {
        let bucket = bucket_of(&id);
        if self.buckets[bucket].insert(id, count).is_none() {
            self.len += 1;
        }
    }

    fn upsert_in(&mut self, bucket: usize, id: &WindowId, count: u64) {
        match self.buckets[bucket].get_mut(id) {
            Some(c) => *c = count,
            None => {
                self.buckets[bucket].insert(id.clone(), count);
                self.len += 1;
            }
        }
    }

    fn remove_in(&mut self, bucket: usize, id: &WindowId) {
        if self.buckets[bucket].remove(id).is_some() {
            self.len -= 1;
        }
    }
}

#[cfg(test)]
#[path = "changelog_batch_tests.rs"]
mod tests;
