//! The records one commit writes for a counting partition: its window counts
//! to the output topics, and its counts, expiries, stream time and position
//! to its changelog partition.

use crate::commit::sink::{Record, Sink, SinkError};
use crate::config::Settings;
use crate::count::emit::{ChangelogChange, CommitPlan};
use crate::count::keys::{self, POSITION_KEY, STREAM_TIME_KEY};
use crate::count::output::encode_output;
use crate::count::partitioner::partition_for;

pub fn send_plan(sink: &Sink, s: &Settings, partition: i32, plan: &CommitPlan) -> Result<(), SinkError> {
    for w in &plan.outputs {
        let spec = &s.specs[w.id.window];
        let value = encode_output(spec, &w.id.video_id, w.id.start, w.count);
        sink.send(Record {
            topic: &spec.output_topic,
            partition: Some(partition_for(w.id.video_id.as_bytes(), s.partitions)),
            key: Some(w.id.video_id.as_bytes()),
            value: Some(&value),
            timestamp: None,
            headers: None,
        })?;
    }
    for change in &plan.changelog {
        let (key, value): (Vec<u8>, Option<[u8; 8]>) = match change {
            ChangelogChange::Put(w) => (
                keys::window_key(s.specs[w.id.window].size_ms, w.id.start, &w.id.video_id),
                Some(keys::encode_u64(w.count)),
            ),
            ChangelogChange::Delete(id) => (
                keys::window_key(s.specs[id.window].size_ms, id.start, &id.video_id),
                None,
            ),
            ChangelogChange::StreamTime(st) => (STREAM_TIME_KEY.to_vec(), Some(keys::encode_i64(*st))),
            ChangelogChange::Position(o) => (POSITION_KEY.to_vec(), Some(keys::encode_i64(*o))),
        };
        sink.send(Record {
            topic: &s.changelog_topic,
            partition: Some(partition),
            key: Some(&key),
            value: value.as_ref().map(|v| &v[..]),
            timestamp: None,
            headers: None,
        })?;
    }
    Ok(())
}
