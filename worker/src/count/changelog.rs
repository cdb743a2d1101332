//! A commit's changelog records for one partition, and what a changelog
//! record restores: both directions of the changelog's format in one place.

use crate::count::emit::{ChangelogChange, CommitPlan};
use crate::count::keys::{self, POSITION_KEY, STREAM_TIME_KEY};
use crate::count::window::CountWindow;

/// Calls `send(key, value)` (`None`: a tombstone) for each changelog record
/// of `plan`, in order: the batch of window counts, the windows written one
/// record each, the tombstones, the stream time, and last the position, so a
/// changelog read up to it holds every count it covers.
pub fn for_each_record<E>(
    specs: &[CountWindow],
    plan: &CommitPlan,
    mut send: impl FnMut(&[u8], Option<&[u8]>) -> Result<(), E>,
) -> Result<(), E> {
    let layout = &plan.layout;
    let mut puts = plan.changelog_puts();
    if layout.batched > 0 {
        let mut value = keys::batch_value(layout.seq, layout.batch_bytes);
        for w in puts.by_ref().take(layout.batched) {
            let size_ms = specs[w.id.window].size_ms;
            keys::push_batch_entry(&mut value, size_ms, w.id.start, &w.id.video_id, w.count);
        }
        send(&keys::batch_key(layout.slot()), Some(&value))?;
    }
    for w in puts.chain(&layout.flush) {
        let key = keys::window_key(specs[w.id.window].size_ms, w.id.start, &w.id.video_id);
        send(&key, Some(&keys::encode_u64(w.count)))?;
    }
    for change in &plan.changelog {
        match change {
            ChangelogChange::Delete(id) => send(
                &keys::window_key(specs[id.window].size_ms, id.start, &id.video_id),
                None,
            )?,
            ChangelogChange::StreamTime(st) => send(STREAM_TIME_KEY, Some(&keys::encode_i64(*st)))?,
            ChangelogChange::Position(o) => send(POSITION_KEY, Some(&keys::encode_i64(*o)))?,
        }
    }
    Ok(())
}

/// What one changelog record restores, as store writes `(key, value)`
/// (`None`: delete): a batch becomes its windows' counts and its sequence
/// number; records this version does not know restore nothing.
pub fn for_each_restored<'a>(
    key: &'a [u8],
    value: Option<&'a [u8]>,
    mut write: impl FnMut(&'a [u8], Option<&'a [u8]>),
) -> Option<u64> {
    if keys::is_batch_key(key) {
        let (seq, entries) = value.and_then(keys::parse_batch)?;
        for (k, count) in entries {
            write(k, Some(count));
        }
        return Some(seq);
    }
    if key == STREAM_TIME_KEY || key == POSITION_KEY || keys::parse_window_key(key).is_some() {
        write(key, value);
    }
    None
}
