//! Store and changelog keys and values of a counting partition: window
//! counts, the stream time and the position.

use std::ops::Range;

/// Store and changelog key of a window count: a tag, the window size, the
/// window start (order-preserving) and the video id, so the windows of one
/// size sort by start and a time range is one contiguous key range.
const WINDOW_TAG: u8 = b'w';

/// Key of the partition's stream time, in the store and in the changelog.
pub const STREAM_TIME_KEY: &[u8] = b"m:stream_time";

/// Key of the partition's position: the next repartition offset to count,
/// written with the counts in every transaction that moves it, so a restored
/// store knows exactly which records it already holds.
pub const POSITION_KEY: &[u8] = b"m:position";

pub fn window_key(size_ms: i64, start: i64, video_id: &str) -> Vec<u8> {
    let mut key = window_prefix(size_ms, start);
    key.extend_from_slice(video_id.as_bytes());
    key
}

fn window_prefix(size_ms: i64, start: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(17 + 16);
    key.push(WINDOW_TAG);
    key.extend_from_slice(&(size_ms as u64).to_be_bytes());
    key.extend_from_slice(&((start as u64) ^ (1 << 63)).to_be_bytes());
    key
}

/// Key range `[from, to)` holding every window of `size_ms` whose start is in `starts`.
pub fn window_key_range(size_ms: i64, starts: Range<i64>) -> (Vec<u8>, Vec<u8>) {
    (
        window_prefix(size_ms, starts.start),
        window_prefix(size_ms, starts.end),
    )
}

/// A decoded window key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowKeyRef<'a> {
    pub size_ms: i64,
    pub start: i64,
    pub video_id: &'a str,
}

pub fn parse_window_key(key: &[u8]) -> Option<WindowKeyRef<'_>> {
    if key.len() < 17 || key[0] != WINDOW_TAG {
        return None;
    }
    let size_ms = u64::from_be_bytes(key[1..9].try_into().ok()?) as i64;
    let start = (u64::from_be_bytes(key[9..17].try_into().ok()?) ^ (1 << 63)) as i64;
    let video_id = std::str::from_utf8(&key[17..]).ok()?;
    Some(WindowKeyRef {
        size_ms,
        start,
        video_id,
    })
}

pub fn encode_u64(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

pub fn encode_i64(v: i64) -> [u8; 8] {
    v.to_be_bytes()
}

pub fn decode_i64(bytes: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keys_sort_by_size_then_start_then_id() {
        let keys = [
            window_key(60_000, -60_000, "z"),
            window_key(60_000, 0, "a"),
            window_key(60_000, 0, "b"),
            window_key(60_000, 60_000, "a"),
            window_key(300_000, 0, "a"),
        ];
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys);
        assert!(STREAM_TIME_KEY < &keys[0][..]);
        let parsed = parse_window_key(&keys[1]).unwrap();
        assert_eq!(
            parsed,
            WindowKeyRef {
                size_ms: 60_000,
                start: 0,
                video_id: "a"
            }
        );
        assert_eq!(parse_window_key(STREAM_TIME_KEY), None);
    }

    #[test]
    fn key_ranges_hold_exactly_their_windows() {
        let (from, to) = window_key_range(60_000, 0..120_000);
        let inside = [window_key(60_000, 0, "a"), window_key(60_000, 60_000, "zzz")];
        let outside = [
            window_key(60_000, -60_000, "a"),
            window_key(60_000, 120_000, ""),
            window_key(300_000, 0, "a"),
        ];
        assert!(inside.iter().all(|k| *k >= from && *k < to));
        assert!(outside.iter().all(|k| *k < from || *k >= to));
        let (from, _) = window_key_range(60_000, i64::MIN..0);
        assert!(window_key(60_000, -600_000, "a") >= from);
    }

    #[test]
    fn numbers_round_trip() {
        assert_eq!(decode_u64(&encode_u64(u64::MAX)), Some(u64::MAX));
        assert_eq!(decode_i64(&encode_i64(-3)), Some(-3));
        assert_eq!(decode_u64(b"short"), None);
    }
}
