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

/// Key prefix of a batch record: the window counts of one commit in one
/// changelog record, under one of a few rotating keys (see `changelog_batch`).
const BATCH_PREFIX: &[u8] = b"m:batch:";

/// Store key of the sequence number of the partition's last batch record.
pub const BATCH_SEQ_KEY: &[u8] = b"m:batch_seq";

const BATCH_VERSION: u8 = 1;
/// Bytes of a batch value before its entries: a version and the sequence number.
pub const BATCH_HEADER_BYTES: usize = 9;

pub fn batch_key(slot: u64) -> Vec<u8> {
    let mut key = BATCH_PREFIX.to_vec();
    key.extend_from_slice(&(slot as u16).to_be_bytes());
    key
}

pub fn is_batch_key(key: &[u8]) -> bool {
    key.starts_with(BATCH_PREFIX)
}

/// A batch value under construction: `[version][seq u64]` then, per window,
/// `[key length u16][window key][count u64]`.
pub fn batch_value(seq: u64, capacity: usize) -> Vec<u8> {
    let mut value = Vec::with_capacity(capacity);
    value.push(BATCH_VERSION);
    value.extend_from_slice(&seq.to_be_bytes());
    value
}

/// Bytes one window takes in a batch value.
pub fn batch_entry_bytes(video_id: &str) -> usize {
    2 + 17 + video_id.len() + 8
}

pub fn push_batch_entry(value: &mut Vec<u8>, size_ms: i64, start: i64, video_id: &str, count: u64) {
    value.extend_from_slice(&((17 + video_id.len()) as u16).to_be_bytes());
    push_window_prefix(value, size_ms, start);
    value.extend_from_slice(video_id.as_bytes());
    value.extend_from_slice(&count.to_be_bytes());
}

/// One window of a batch value: its key and its count (8 bytes).
pub type BatchEntry<'a> = (&'a [u8], &'a [u8]);

/// The sequence number and the entries of a batch value; `None` if it is
/// not one this version writes.
pub fn parse_batch(value: &[u8]) -> Option<(u64, Vec<BatchEntry<'_>>)> {
    if value.len() < BATCH_HEADER_BYTES || value[0] != BATCH_VERSION {
        return None;
    }
    let seq = u64::from_be_bytes(value[1..9].try_into().ok()?);
    let mut entries = Vec::new();
    let mut rest = &value[BATCH_HEADER_BYTES..];
    while !rest.is_empty() {
        let len = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let key = rest.get(2..2 + len)?;
        let count = rest.get(2 + len..2 + len + 8)?;
        parse_window_key(key)?;
        entries.push((key, count));
        rest = &rest[2 + len + 8..];
    }
    Some((seq, entries))
}

pub fn window_key(size_ms: i64, start: i64, video_id: &str) -> Vec<u8> {
    let mut key = window_prefix(size_ms, start);
    key.extend_from_slice(video_id.as_bytes());
    key
}

fn window_prefix(size_ms: i64, start: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(17 + 16);
    push_window_prefix(&mut key, size_ms, start);
    key
}

fn push_window_prefix(out: &mut Vec<u8>, size_ms: i64, start: i64) {
    out.push(WINDOW_TAG);
    out.extend_from_slice(&(size_ms as u64).to_be_bytes());
    out.extend_from_slice(&((start as u64) ^ (1 << 63)).to_be_bytes());
}

/// Key range `[from, to)` holding every window of `size_ms` whose start is in `starts`.
pub fn window_key_range(size_ms: i64, starts: Range<i64>) -> (Vec<u8>, Vec<u8>) {
    (
        window_prefix(size_ms, starts.start),
        window_prefix(size_ms, starts.end),
    )
}

/// Key range `[from, to)` holding every window key.
pub fn all_windows_range() -> (Vec<u8>, Vec<u8>) {
    (vec![WINDOW_TAG], vec![WINDOW_TAG + 1])
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
    fn batch_values_hold_window_keys_and_counts() {
        let mut value = batch_value(42, 0);
        push_batch_entry(&mut value, 60_000, -60_000, "a", 3);
        push_batch_entry(&mut value, 300_000, 0, "video-7", u64::MAX);
        assert_eq!(
            value.len(),
            BATCH_HEADER_BYTES + batch_entry_bytes("a") + batch_entry_bytes("video-7")
        );
        let (seq, entries) = parse_batch(&value).unwrap();
        assert_eq!(seq, 42);
        let expected = [
            (window_key(60_000, -60_000, "a"), 3u64),
            (window_key(300_000, 0, "video-7"), u64::MAX),
        ];
        assert_eq!(entries.len(), 2);
        for ((key, count), (k, c)) in entries.iter().zip(&expected) {
            assert_eq!(key, &&k[..]);
            assert_eq!(decode_u64(count), Some(*c));
        }
        assert_eq!(parse_batch(&value[..value.len() - 1]), None, "a cut entry");
        assert_eq!(parse_batch(&[9; 12]), None, "another version");
        assert!(is_batch_key(&batch_key(31)) && !is_batch_key(STREAM_TIME_KEY));
        assert_ne!(batch_key(1), batch_key(2));
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
