//! The latest count of each recent window, per video and window type, as
//! read from the output topics. Bounded: a few recent windows per type and
//! a maximum number of videos (the least recently updated go first), so a
//! load test over a million ids cannot exhaust the gateway's memory.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use videocounter_protocol::WindowCountRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WindowCount {
    pub count: u64,
    pub window_start: i64,
    pub window_end: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    pub max_videos: usize,
    pub windows_per_type: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_videos: 10_000,
            windows_per_type: 30,
        }
    }
}

/// Windows of one video: type (`1min`) -> window start -> count.
#[derive(Debug, Default)]
struct VideoWindows {
    by_type: BTreeMap<String, BTreeMap<i64, WindowCount>>,
    /// Store-wide sequence number of the last update, for eviction and ordering.
    last_update: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VideoSummary {
    pub video_id: String,
    /// The most recent window of each type.
    pub latest: BTreeMap<String, WindowCount>,
}

#[derive(Debug, Default)]
pub struct CountStore {
    videos: HashMap<String, VideoWindows>,
    limits: StoreLimits,
    seq: u64,
}

impl CountStore {
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            videos: HashMap::new(),
            limits: StoreLimits {
                max_videos: limits.max_videos.max(1),
                windows_per_type: limits.windows_per_type.max(1),
            },
            seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.videos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.videos.is_empty()
    }

    /// Changes with every record applied: tells a reader whether anything moved.
    pub fn version(&self) -> u64 {
        self.seq
    }

    /// Records the window's count (the newest record for a window wins).
    /// Returns false when the record is too old to keep.
    pub fn apply(&mut self, record: &WindowCountRecord) -> bool {
        let keep = self.limits.windows_per_type;
        let is_new_video = !self.videos.contains_key(&record.video_uid);
        let video = self.videos.entry(record.video_uid.clone()).or_default();
        let windows = video.by_type.entry(record.window_type.clone()).or_default();
        if windows.len() >= keep
            && windows
                .first_key_value()
                .is_some_and(|(s, _)| record.window_start < *s)
        {
            return false;
        }
        windows.insert(
            record.window_start,
            WindowCount {
                count: record.count,
                window_start: record.window_start,
                window_end: record.window_end,
            },
        );
        while windows.len() > keep {
            windows.pop_first();
        }
        self.seq += 1;
        video.last_update = self.seq;
        if is_new_video && self.videos.len() > self.limits.max_videos {
            self.evict_least_recent();
        }
        true
    }

    /// Drops the least recently updated tenth, so eviction is rare and cheap on average.
    fn evict_least_recent(&mut self) {
        let target = self.limits.max_videos - self.limits.max_videos / 10;
        let mut ages: Vec<(u64, String)> = self
            .videos
            .iter()
            .map(|(id, v)| (v.last_update, id.clone()))
            .collect();
        ages.sort_unstable();
        let excess = self.videos.len().saturating_sub(target);
        for (_, id) in ages.into_iter().take(excess) {
            self.videos.remove(&id);
        }
    }

    /// The most recent window of each type for a video.
    pub fn latest(&self, video_id: &str) -> Option<BTreeMap<String, WindowCount>> {
        let video = self.videos.get(video_id)?;
        Some(
            video
                .by_type
                .iter()
                .filter_map(|(t, w)| w.last_key_value().map(|(_, c)| (t.clone(), *c)))
                .collect(),
        )
    }

    /// Every kept window of a video, oldest first, per type.
    pub fn history(&self, video_id: &str) -> Option<BTreeMap<String, Vec<WindowCount>>> {
        let video = self.videos.get(video_id)?;
        Some(
            video
                .by_type
                .iter()
                .map(|(t, w)| (t.clone(), w.values().copied().collect()))
                .collect(),
        )
    }

    /// Known videos, most recently updated first.
    pub fn summaries(&self, limit: usize) -> Vec<VideoSummary> {
        let mut ids: Vec<(&String, u64)> = self.videos.iter().map(|(id, v)| (id, v.last_update)).collect();
        ids.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        ids.into_iter()
            .take(limit)
            .map(|(id, _)| VideoSummary {
                video_id: id.clone(),
                latest: self.latest(id).unwrap_or_default(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(video: &str, window_type: &str, start: i64, count: u64) -> WindowCountRecord {
        WindowCountRecord {
            window_type: window_type.into(),
            video_uid: video.into(),
            count,
            window_start: start,
            window_end: start + 60_000,
        }
    }

    fn limits(max_videos: usize, windows_per_type: usize) -> StoreLimits {
        StoreLimits {
            max_videos,
            windows_per_type,
        }
    }

    #[test]
    fn newest_record_of_a_window_wins_and_latest_is_the_last_window() {
        let mut store = CountStore::new(StoreLimits::default());
        assert!(store.apply(&rec("v", "1min", 0, 1)));
        assert!(store.apply(&rec("v", "1min", 0, 3)));
        assert!(store.apply(&rec("v", "1min", 60_000, 2)));
        assert!(store.apply(&rec("v", "5min", 0, 5)));
        let latest = store.latest("v").unwrap();
        assert_eq!(latest["1min"].count, 2);
        assert_eq!(latest["1min"].window_start, 60_000);
        assert_eq!(latest["5min"].count, 5);
        let history = store.history("v").unwrap();
        let counts: Vec<u64> = history["1min"].iter().map(|w| w.count).collect();
        assert_eq!(counts, [3, 2]);
        assert!(store.latest("other").is_none());
    }

    #[test]
    fn keeps_only_recent_windows() {
        let mut store = CountStore::new(limits(10, 3));
        for i in 0..5 {
            store.apply(&rec("v", "1min", i * 60_000, i as u64));
        }
        let starts: Vec<i64> = store.history("v").unwrap()["1min"]
            .iter()
            .map(|w| w.window_start)
            .collect();
        assert_eq!(starts, [120_000, 180_000, 240_000]);
        // A late record for a window older than all kept ones is ignored.
        assert!(!store.apply(&rec("v", "1min", 0, 99)));
        assert_eq!(store.history("v").unwrap()["1min"].len(), 3);
    }

    #[test]
    fn evicts_the_least_recently_updated_videos() {
        let mut store = CountStore::new(limits(10, 3));
        for i in 0..10 {
            store.apply(&rec(&format!("v{i}"), "1min", 0, 1));
        }
        // v0 is refreshed, so v1 is now the oldest.
        store.apply(&rec("v0", "1min", 0, 2));
        store.apply(&rec("v10", "1min", 0, 1));
        assert_eq!(store.len(), 9);
        assert!(store.latest("v0").is_some());
        assert!(store.latest("v1").is_none());
        assert!(store.latest("v2").is_none());
        assert!(store.latest("v10").is_some());
    }

    #[test]
    fn summaries_are_most_recent_first() {
        let mut store = CountStore::new(StoreLimits::default());
        store.apply(&rec("a", "1min", 0, 1));
        store.apply(&rec("b", "1min", 0, 1));
        store.apply(&rec("a", "1min", 0, 4));
        let ids: Vec<_> = store.summaries(10).into_iter().map(|s| s.video_id).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(store.summaries(1)[0].latest["1min"].count, 4);
    }
}
