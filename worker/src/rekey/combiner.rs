//! Pre-aggregation in the re-key stage: within one transaction, likes of the
//! same video in the same combining bucket (the gcd of the window sizes) are
//! summed into one repartition record. Every event of a bucket lands in the
//! same window of every size, so the sum counts exactly like the events would.

use foldhash::{HashMap, HashMapExt};
use smallvec::SmallVec;
use std::sync::Arc;

/// The summed likes of one video in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Combined {
    pub bucket: i64,
    pub count: u64,
    /// Largest event time in the bucket: it advances stream time as far as
    /// the individual events would have.
    pub max_ts: i64,
}

#[derive(Debug)]
pub struct Combiner {
    bucket_ms: i64,
    /// A video's buckets: one, at most two within a commit, kept inline.
    by_video: HashMap<Arc<str>, SmallVec<[Combined; 2]>>,
    events: u64,
    records: usize,
}

impl Combiner {
    pub fn new(bucket_ms: i64) -> Self {
        Self {
            bucket_ms: bucket_ms.max(1),
            by_video: HashMap::new(),
            events: 0,
            records: 0,
        }
    }

    pub fn add(&mut self, video_id: &str, count: u64, ts: i64) {
        let bucket = ts.div_euclid(self.bucket_ms);
        self.events += 1;
        let buckets = match self.by_video.get_mut(video_id) {
            Some(b) => b,
            None => self.by_video.entry(Arc::from(video_id)).or_default(),
        };
        match buckets.iter_mut().find(|c| c.bucket == bucket) {
            Some(c) => {
                c.count += count;
                c.max_ts = c.max_ts.max(ts);
            }
            None => {
                self.records += 1;
                buckets.push(Combined {
                    bucket,
                    count,
                    max_ts: ts,
                });
            }
        }
    }

    /// Input events added since the last drain.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Repartition records the next drain will produce.
    pub fn records(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Takes every combined record, oldest bucket first, leaving the combiner
    /// empty. Time order matters: a newer record applied first would advance
    /// stream time and could make the older one late.
    pub fn drain(&mut self) -> Vec<(Arc<str>, Combined)> {
        self.events = 0;
        let mut out: Vec<(Arc<str>, Combined)> = Vec::with_capacity(std::mem::take(&mut self.records));
        out.extend(
            self.by_video
                .drain()
                .flat_map(|(id, buckets)| buckets.into_iter().map(move |c| (id.clone(), c))),
        );
        out.sort_by_key(|(_, c)| c.bucket);
        out
    }

    /// Forgets everything (the transaction it belonged to was abandoned).
    pub fn clear(&mut self) {
        self.by_video.clear();
        self.events = 0;
        self.records = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_video_and_bucket() {
        let mut c = Combiner::new(60_000);
        c.add("a", 1, 1_000);
        c.add("a", 2, 59_999);
        c.add("a", 1, 60_000);
        c.add("b", 1, 5_000);
        assert_eq!((c.events(), c.records()), (4, 3));
        let mut out = c.drain();
        let buckets: Vec<i64> = out.iter().map(|(_, c)| c.bucket).collect();
        assert_eq!(buckets, [0, 0, 1], "drained oldest bucket first");
        out.sort_by_key(|(id, c)| (id.clone(), c.bucket));
        assert_eq!(
            out,
            [
                (
                    "a".into(),
                    Combined {
                        bucket: 0,
                        count: 3,
                        max_ts: 59_999
                    }
                ),
                (
                    "a".into(),
                    Combined {
                        bucket: 1,
                        count: 1,
                        max_ts: 60_000
                    }
                ),
                (
                    "b".into(),
                    Combined {
                        bucket: 0,
                        count: 1,
                        max_ts: 5_000
                    }
                ),
            ]
        );
        assert!(c.is_empty());
        assert!(c.drain().is_empty());
    }

    #[test]
    fn total_count_is_preserved() {
        let mut c = Combiner::new(7);
        let mut want = 0;
        for i in 0..1_000u64 {
            c.add(&format!("v{}", i % 13), i % 3, (i * 37 % 500) as i64);
            want += i % 3;
        }
        let got: u64 = c.drain().iter().map(|(_, c)| c.count).sum();
        assert_eq!(got, want);
    }
}
