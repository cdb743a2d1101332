//! The committed counts of the windows still open, kept in memory beside
//! a partition's store, so a commit neither reads RocksDB for every window
//! it updates nor writes it every time (with 10,000 videos that was 30,000
//! reads and 30,000 writes per commit, most of its time).
//!
//! An entry is the committed count of its window; `written` says whether
//! RocksDB holds it yet. The store writes the unwritten ones back in one
//! batch (see `PartitionStore::apply_plan`), so RocksDB plus the unwritten
//! entries is always the committed state, and a window that is not here is
//! read from RocksDB. Reads never fill it: a read racing a commit could put
//! back the count the commit replaced. Closed windows never change again
//! and are dropped once written; past its bound it starts over empty.

use crate::count::counts::WindowId;
use crate::count::window::CountWindow;
use foldhash::{HashMap, HashMapExt};

#[derive(Debug, Clone, Copy)]
struct Entry {
    count: u64,
    written: bool,
}

pub struct OpenWindowCounts {
    counts: HashMap<WindowId, Entry>,
    unwritten: usize,
    max_entries: usize,
    /// Per window size, the first start still open when last pruned.
    first_open: Vec<i64>,
}

impl OpenWindowCounts {
    pub fn new(windows: usize, max_entries: usize) -> Self {
        Self {
            counts: HashMap::new(),
            unwritten: 0,
            max_entries,
            first_open: vec![i64::MIN; windows],
        }
    }

    pub fn get(&self, id: &WindowId) -> Option<u64> {
        self.counts.get(id).map(|e| e.count)
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Counts a transaction committed, not yet in RocksDB.
    pub fn committed<'a>(&mut self, puts: impl IntoIterator<Item = (&'a WindowId, u64)>) {
        for (id, count) in puts {
            let entry = Entry {
                count,
                written: false,
            };
            match self.counts.get_mut(id) {
                Some(e) => {
                    if e.written {
                        self.unwritten += 1;
                    }
                    *e = entry;
                }
                None => {
                    self.unwritten += 1;
                    self.counts.insert(id.clone(), entry);
                }
            }
        }
    }

    /// The counts RocksDB does not hold yet.
    pub fn unwritten(&self) -> impl Iterator<Item = (&WindowId, u64)> {
        self.counts
            .iter()
            .filter(|(_, e)| !e.written)
            .map(|(id, e)| (id, e.count))
    }

    pub fn unwritten_len(&self) -> usize {
        self.unwritten
    }

    /// RocksDB now holds every count.
    pub fn all_written(&mut self) {
        if self.unwritten > 0 {
            self.counts.values_mut().for_each(|e| e.written = true);
            self.unwritten = 0;
        }
    }

    /// Whether moving to `stream_time` drops windows, or the bound is passed:
    /// both need every count written first.
    pub fn must_write_back(&self, specs: &[CountWindow], stream_time: Option<i64>) -> bool {
        self.counts.len() > self.max_entries
            || stream_time.is_some_and(|st| {
                specs
                    .iter()
                    .zip(&self.first_open)
                    .any(|(s, old)| s.first_open_start(st) > *old)
            })
    }

    /// Once everything is written: forgets the windows closed at
    /// `stream_time`, and everything when past the bound.
    pub fn written_back(&mut self, specs: &[CountWindow], stream_time: Option<i64>) {
        debug_assert_eq!(self.unwritten, 0, "only written counts may be forgotten");
        if self.counts.len() > self.max_entries {
            self.counts = HashMap::new();
        }
        let Some(st) = stream_time else { return };
        let first_open: Vec<i64> = specs.iter().map(|s| s.first_open_start(st)).collect();
        if first_open
            .iter()
            .zip(&self.first_open)
            .all(|(new, old)| new <= old)
        {
            return;
        }
        self.counts.retain(|id, _| id.start >= first_open[id.window]);
        self.first_open = first_open;
    }

    /// After any other write to the store (a restore, a purge).
    pub fn clear(&mut self) {
        debug_assert_eq!(self.unwritten, 0, "unwritten counts would be lost");
        self.counts = HashMap::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::count::window::test_window;

    fn specs() -> Vec<CountWindow> {
        vec![test_window(10, 2, 20)]
    }

    fn id(start: i64, video: &str) -> WindowId {
        WindowId {
            window: 0,
            start,
            video_id: video.into(),
        }
    }

    #[test]
    fn committed_counts_are_kept_unwritten_until_written_back() {
        let specs = specs();
        let mut cache = OpenWindowCounts::new(1, 100);
        let (a0, a10, b10) = (id(0, "a"), id(10, "a"), id(10, "b"));
        cache.committed([(&a0, 3), (&a10, 1)]);
        cache.committed([(&a10, 4), (&b10, 2)]);
        assert_eq!(cache.get(&a0), Some(3));
        assert_eq!(cache.get(&a10), Some(4));
        assert_eq!(cache.get(&id(10, "c")), None);
        assert_eq!(cache.unwritten_len(), 3);
        let mut unwritten: Vec<_> = cache.unwritten().map(|(i, c)| (i.clone(), c)).collect();
        unwritten.sort();
        assert_eq!(unwritten, [(a0.clone(), 3), (a10.clone(), 4), (b10.clone(), 2)]);
        // The first stream time sets where windows are open.
        assert!(cache.must_write_back(&specs, Some(11)));
        cache.all_written();
        cache.written_back(&specs, Some(11));
        assert!(!cache.must_write_back(&specs, Some(11)));
        assert_eq!(cache.unwritten().count(), 0);
        cache.committed([(&a10, 5)]);
        assert_eq!(cache.unwritten_len(), 1);
        assert_eq!(cache.get(&a10), Some(5));
    }

    #[test]
    fn a_window_closing_needs_a_write_back_and_then_is_forgotten() {
        let specs = specs();
        let mut cache = OpenWindowCounts::new(1, 100);
        let (a0, a10) = (id(0, "a"), id(10, "a"));
        cache.committed([(&a0, 3), (&a10, 1)]);
        cache.all_written();
        cache.written_back(&specs, Some(11));
        assert_eq!(cache.len(), 2);
        // Stream time 12 closes [0,10) (end 10 + grace 2): only that window goes.
        assert!(cache.must_write_back(&specs, Some(12)));
        cache.written_back(&specs, Some(12));
        assert_eq!(cache.get(&a0), None);
        assert_eq!(cache.get(&a10), Some(1));
        assert!(!cache.must_write_back(&specs, Some(13)));
    }

    #[test]
    fn past_its_bound_it_starts_over() {
        let specs = specs();
        let mut cache = OpenWindowCounts::new(1, 2);
        let ids: Vec<WindowId> = ["a", "b", "c"].iter().map(|v| id(10, v)).collect();
        cache.committed(ids.iter().take(2).map(|i| (i, 1)));
        assert!(!cache.must_write_back(&specs, None));
        cache.committed(ids.iter().skip(2).map(|i| (i, 1)));
        assert!(cache.must_write_back(&specs, None));
        cache.all_written();
        cache.written_back(&specs, None);
        assert!(cache.is_empty());
    }
}
