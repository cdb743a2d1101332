//! The counting state of one partition between two commits: stream time and
//! the count deltas of the windows touched since the last commit. Pure and
//! in memory; the committed counts live in the partition's store.

use crate::count::window::CountWindow;
// Video ids are untrusted input: a seeded hasher, but a faster one than SipHash.
use foldhash::{HashMap, HashMapExt};
use smallvec::SmallVec;
use std::sync::Arc;

/// The most windows one worker counts per record (the late mask is a `u64`).
pub const MAX_WINDOWS: usize = 64;

/// A window of one video: `window` indexes the configured window sizes.
/// The id is shared: one allocation per video and commit serves every window
/// of it, from the combiner to the store's maps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowId {
    pub window: usize,
    pub start: i64,
    pub video_id: Arc<str>,
}

/// The deltas of one video between two commits: a window of each size, rarely
/// two, so they are kept inline.
type VideoDeltas = SmallVec<[Delta; 4]>;

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// Bit `i` is set when window size `i` dropped the record as late.
    pub late_mask: u64,
}

impl Applied {
    pub fn is_late_for(&self, window: usize) -> bool {
        self.late_mask & (1 << window) != 0
    }
}

#[derive(Debug, Clone, Copy)]
struct Delta {
    window: usize,
    start: i64,
    count: u64,
}

#[derive(Debug)]
pub struct PartitionCounts {
    specs: Arc<[CountWindow]>,
    stream_time: Option<i64>,
    committed_stream_time: Option<i64>,
    deltas: HashMap<Arc<str>, VideoDeltas>,
    touched_windows: usize,
}

impl PartitionCounts {
    /// State of a partition whose committed stream time is `stream_time`.
    pub fn new(specs: Arc<[CountWindow]>, stream_time: Option<i64>) -> Self {
        assert!(specs.len() <= MAX_WINDOWS, "at most {MAX_WINDOWS} window sizes");
        Self {
            specs,
            stream_time,
            committed_stream_time: stream_time,
            deltas: HashMap::new(),
            touched_windows: 0,
        }
    }

    /// Counts `count` likes of `video_id` at event time `ts` in every window
    /// size for which the record is not late. Stream time advances first, as
    /// in Kafka Streams, so a record never makes its own window late.
    pub fn apply(&mut self, video_id: &str, count: u64, ts: i64) -> Applied {
        self.apply_shared(video_id, || Arc::from(video_id), count, ts)
    }

    /// [`Self::apply`] with the id already shared (a combined record's): a
    /// video new in this commit takes it instead of a copy.
    pub fn apply_id(&mut self, video_id: &Arc<str>, count: u64, ts: i64) -> Applied {
        self.apply_shared(video_id, || video_id.clone(), count, ts)
    }

    fn apply_shared(
        &mut self,
        video_id: &str,
        shared: impl FnOnce() -> Arc<str>,
        count: u64,
        ts: i64,
    ) -> Applied {
        let st = self.stream_time.map_or(ts, |st| st.max(ts));
        self.stream_time = Some(st);
        let mut applied = Applied::default();
        let deltas = match self.deltas.get_mut(video_id) {
            Some(d) => d,
            None => self.deltas.entry(shared()).or_default(),
        };
        for (window, spec) in self.specs.iter().enumerate() {
            let start = spec.start_of(ts);
            if spec.is_closed(start, st) {
                applied.late_mask |= 1 << window;
                continue;
            }
            match deltas.iter_mut().find(|d| d.window == window && d.start == start) {
                Some(d) => d.count += count,
                None => {
                    self.touched_windows += 1;
                    deltas.push(Delta { window, start, count });
                }
            }
        }
        applied
    }

    pub fn stream_time(&self) -> Option<i64> {
        self.stream_time
    }

    pub fn committed_stream_time(&self) -> Option<i64> {
        self.committed_stream_time
    }

    /// Windows touched since the last commit.
    pub fn touched_windows(&self) -> usize {
        self.touched_windows
    }

    /// Whether the next commit has anything to write for this partition.
    pub fn is_dirty(&self) -> bool {
        self.touched_windows > 0 || self.stream_time != self.committed_stream_time
    }

    /// Takes the deltas of every touched window (in no particular order).
    pub fn take_deltas(&mut self) -> Vec<(WindowId, u64)> {
        let mut taken = Vec::with_capacity(std::mem::take(&mut self.touched_windows));
        taken.extend(
            self.deltas
                .drain()
                .flat_map(|(video_id, deltas)| {
                    deltas.into_iter().map(move |d| {
                        (
                            WindowId {
                                window: d.window,
                                start: d.start,
                                video_id: video_id.clone(),
                            },
                            d.count,
                        )
                    })
                })
                .filter(|(_, count)| *count > 0),
        );
        taken
    }

    /// The commit that wrote the current stream time succeeded.
    /// The commit prepared when the stream time was `stream_time` went
    /// through (records counted since then belong to the next one).
    pub fn mark_committed(&mut self, stream_time: Option<i64>) {
        self.committed_stream_time = stream_time;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::count::window::test_window;

    fn specs() -> Arc<[CountWindow]> {
        [test_window(10, 2, 100), test_window(30, 2, 100)].into()
    }

    fn sorted(mut d: Vec<(WindowId, u64)>) -> Vec<(usize, i64, String, u64)> {
        d.sort();
        d.into_iter()
            .map(|(w, c)| (w.window, w.start, w.video_id.to_string(), c))
            .collect()
    }

    #[test]
    fn counts_each_record_in_every_window_size() {
        let mut c = PartitionCounts::new(specs(), None);
        c.apply("a", 1, 5);
        c.apply("a", 2, 9);
        c.apply("a", 1, 12);
        c.apply("b", 1, 12);
        assert_eq!(c.stream_time(), Some(12));
        assert!(c.is_dirty());
        assert_eq!(
            sorted(c.take_deltas()),
            [
                (0, 0, "a".into(), 3),
                (0, 10, "a".into(), 1),
                (0, 10, "b".into(), 1),
                (1, 0, "a".into(), 4),
                (1, 0, "b".into(), 1),
            ]
        );
        assert_eq!(c.touched_windows(), 0);
        assert!(c.is_dirty(), "stream time is not committed yet");
        c.mark_committed(c.stream_time());
        assert!(!c.is_dirty());
    }

    #[test]
    fn late_records_are_dropped_per_window_size() {
        let mut c = PartitionCounts::new(specs(), Some(100));
        // Window [80, 90) of size 10 closed at 92; [60, 90) of size 30 closes at 92 too.
        let applied = c.apply("a", 1, 85);
        assert_eq!(applied.late_mask, 0b11);
        // ts 91 at stream time 100: [90,100) is open (closes at 102), [90,120) open.
        let applied = c.apply("a", 1, 91);
        assert_eq!(applied.late_mask, 0);
        // Stream time 112: [90,100) closed at 102; [90,120) still open.
        c.apply("b", 1, 112);
        let applied = c.apply("a", 1, 95);
        assert!(applied.is_late_for(0) && !applied.is_late_for(1));
        assert_eq!(
            sorted(c.take_deltas()),
            [
                (0, 90, "a".into(), 1),
                (0, 110, "b".into(), 1),
                (1, 90, "a".into(), 2),
                (1, 90, "b".into(), 1),
            ]
        );
    }

    #[test]
    fn stream_time_never_goes_back() {
        let mut c = PartitionCounts::new(specs(), Some(50));
        c.apply("a", 1, 40);
        assert_eq!(c.stream_time(), Some(50));
        assert_eq!(c.committed_stream_time(), Some(50));
        c.apply("a", 1, 60);
        assert_eq!(c.stream_time(), Some(60));
        assert_eq!(c.committed_stream_time(), Some(50));
    }

    #[test]
    fn zero_counts_touch_no_window() {
        let mut c = PartitionCounts::new(specs(), None);
        c.apply("a", 0, 5);
        assert!(c.take_deltas().is_empty());
        assert_eq!(c.stream_time(), Some(5));
    }
}
