//! Tumbling windows on event time (epoch milliseconds): which window a
//! timestamp falls in, when a window closes, when it expires.
//!
//! Windows are aligned to the epoch, so every window of size `s` starts at a
//! multiple of `s`. A window closes once stream time (the largest event
//! timestamp seen by a partition) reaches `end + grace`; records for a closed
//! window are late. It expires (is deleted) once stream time reaches
//! `end + grace + retention`.

use std::ops::Range;
use videocounter_protocol::ResolvedWindow;

/// Latest accepted event timestamp (year 9999), so window arithmetic never overflows.
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// One window size as the count stage uses it (from the configuration's
/// resolved window): arithmetic on epoch-aligned tumbling windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountWindow {
    pub size_ms: i64,
    pub grace_ms: i64,
    pub retention_ms: i64,
    /// The output record's `type` (`1min`).
    pub label: String,
    pub output_topic: String,
}

impl CountWindow {
    pub fn from_resolved(w: &ResolvedWindow) -> Self {
        Self {
            size_ms: clamp_ms(w.size_ms),
            grace_ms: clamp_ms(w.grace_ms),
            retention_ms: clamp_ms(w.retention_ms),
            label: w.label.clone(),
            output_topic: w.output_topic.clone(),
        }
    }

    /// Start of the window that contains `ts`.
    pub fn start_of(&self, ts: i64) -> i64 {
        ts.div_euclid(self.size_ms) * self.size_ms
    }

    pub fn end_of(&self, start: i64) -> i64 {
        start.saturating_add(self.size_ms)
    }

    /// Whether the window starting at `start` no longer accepts records at stream time `st`.
    pub fn is_closed(&self, start: i64, st: i64) -> bool {
        start < self.close_bound(st)
    }

    /// Windows with a start below this bound are closed at stream time `st`.
    pub fn close_bound(&self, st: i64) -> i64 {
        st.saturating_sub(self.size_ms)
            .saturating_sub(self.grace_ms)
            .saturating_add(1)
    }

    /// The first window start still open at stream time `st`.
    pub fn first_open_start(&self, st: i64) -> i64 {
        ceil_to(self.close_bound(st), self.size_ms)
    }

    /// Windows with a start below this bound have expired at stream time `st`.
    pub fn expiry_bound(&self, st: i64) -> i64 {
        self.close_bound(st).saturating_sub(self.retention_ms)
    }

    /// Starts of the windows that newly closed when stream time moved from `old` to `new`.
    pub fn newly_closed(&self, old: Option<i64>, new: Option<i64>) -> Range<i64> {
        advance_range(old.map(|t| self.close_bound(t)), new.map(|t| self.close_bound(t)))
    }

    /// Starts of the windows that newly expired when stream time moved from `old` to `new`.
    pub fn newly_expired(&self, old: Option<i64>, new: Option<i64>) -> Range<i64> {
        advance_range(
            old.map(|t| self.expiry_bound(t)),
            new.map(|t| self.expiry_bound(t)),
        )
    }

    /// Whether some window of this size starts within `starts`.
    pub fn any_start_in(&self, starts: &Range<i64>) -> bool {
        !starts.is_empty() && ceil_to(starts.start, self.size_ms) < starts.end
    }

    /// Starts of every window still kept at stream time `st`, oldest first.
    pub fn retained_starts(&self, st: i64) -> impl Iterator<Item = i64> + use<> {
        let first = ceil_to(self.expiry_bound(st), self.size_ms);
        let last = self.start_of(st);
        let size = self.size_ms;
        (0..)
            .map(move |i: i64| first + i * size)
            .take_while(move |s| *s <= last)
    }
}

fn clamp_ms(ms: u64) -> i64 {
    ms.min(MAX_TIMESTAMP_MS as u64) as i64
}

fn ceil_to(value: i64, step: i64) -> i64 {
    let floor = value.div_euclid(step) * step;
    if floor == value { value } else { floor + step }
}

fn advance_range(old: Option<i64>, new: Option<i64>) -> Range<i64> {
    match (old, new) {
        (_, None) => 0..0,
        (None, Some(n)) => i64::MIN..n,
        (Some(o), Some(n)) if n > o => o..n,
        _ => 0..0,
    }
}

/// The combining bucket of the re-key stage: the greatest common divisor of
/// every window size, so all events of one bucket fall in the same window of
/// every size and can be summed before they are repartitioned.
pub fn combine_bucket_ms(specs: &[CountWindow]) -> i64 {
    specs.iter().map(|s| s.size_ms).fold(0, gcd).max(1)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A window for unit tests: its times in milliseconds, label and topic named after its size.
#[cfg(test)]
pub fn test_window(size_ms: i64, grace_ms: i64, retention_ms: i64) -> CountWindow {
    CountWindow {
        size_ms,
        grace_ms,
        retention_ms,
        label: format!("{size_ms}ms"),
        output_topic: format!("out{size_ms}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_open_start_follows_the_close_bound_to_window_starts() {
        let s = test_window(10, 2, 20);
        // Closed below st - 10 - 2 + 1.
        assert_eq!(s.first_open_start(11), 0);
        assert_eq!(s.first_open_start(12), 10);
        assert_eq!(s.first_open_start(21), 10);
        assert_eq!(s.first_open_start(22), 20);
    }

    #[test]
    fn timestamps_fall_in_epoch_aligned_windows() {
        let w = test_window(60_000, 0, 0);
        assert_eq!(w.start_of(0), 0);
        assert_eq!(w.start_of(59_999), 0);
        assert_eq!(w.start_of(60_000), 60_000);
        assert_eq!(w.start_of(1_700_000_012_345), 1_700_000_000_000 - 20_000);
        assert_eq!(w.end_of(60_000), 120_000);
        assert_eq!(w.start_of(-1), -60_000);
    }

    #[test]
    fn a_window_closes_at_end_plus_grace() {
        let w = test_window(60_000, 10_000, 0);
        // Window [0, 60000) closes when stream time reaches 70000.
        assert!(!w.is_closed(0, 69_999));
        assert!(w.is_closed(0, 70_000));
        assert!(!w.is_closed(60_000, 70_000));
        // A record never closes its own window.
        for ts in [0, 59_999, 123_456] {
            assert!(!w.is_closed(w.start_of(ts), ts));
        }
    }

    #[test]
    fn a_window_expires_after_its_retention() {
        let w = test_window(60_000, 10_000, 300_000);
        assert_eq!(w.expiry_bound(370_000), 1);
        assert_eq!(w.expiry_bound(369_999), 0);
        assert_eq!(w.newly_expired(Some(369_999), Some(370_000)), 0..1);
        assert_eq!(w.newly_expired(Some(370_000), Some(370_000)), 0..0);
        assert_eq!(w.newly_expired(Some(400_000), Some(370_000)), 0..0);
        assert_eq!(w.newly_expired(None, None), 0..0);
        assert_eq!(w.newly_closed(None, Some(70_000)), i64::MIN..1);
    }

    #[test]
    fn ranges_know_whether_they_hold_a_window() {
        let w = test_window(60_000, 0, 0);
        assert!(w.any_start_in(&(0..1)));
        assert!(!w.any_start_in(&(1..60_000)));
        assert!(w.any_start_in(&(1..60_001)));
        assert!(!w.any_start_in(&(5..5)));
        assert!(w.any_start_in(&(i64::MIN..-59_999)));
    }

    #[test]
    fn retained_windows_run_from_the_oldest_kept_to_the_current() {
        let w = test_window(60_000, 10_000, 120_000);
        // At st = 250000, the current window starts at 240000; the expiry bound is
        // 250000 - 60000 - 10000 - 120000 + 1 = 60001, so 120000 is the oldest kept.
        let starts: Vec<i64> = w.retained_starts(250_000).collect();
        assert_eq!(starts, [120_000, 180_000, 240_000]);
        // Exactly at a boundary the window at the bound is kept.
        let w = test_window(10, 0, 0);
        assert_eq!(w.retained_starts(25).collect::<Vec<_>>(), [20]);
        assert_eq!(w.retained_starts(0).collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn combine_bucket_is_the_gcd_of_sizes() {
        let minutes = [
            test_window(60_000, 0, 0),
            test_window(300_000, 0, 0),
            test_window(600_000, 0, 0),
        ];
        assert_eq!(combine_bucket_ms(&minutes), 60_000);
        assert_eq!(
            combine_bucket_ms(&[test_window(4_000, 0, 0), test_window(6_000, 0, 0)]),
            2_000
        );
        assert_eq!(combine_bucket_ms(&[test_window(7, 0, 0)]), 7);
        // Every event of a bucket falls in the same window of every size.
        let sizes = [test_window(4_000, 0, 0), test_window(6_000, 0, 0)];
        let bucket = combine_bucket_ms(&sizes);
        for ts in (0..48_000).step_by(250) {
            let first = ts - ts % bucket;
            for w in &sizes {
                assert_eq!(w.start_of(ts), w.start_of(first));
            }
        }
    }
}
