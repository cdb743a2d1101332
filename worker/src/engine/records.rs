//! The records one commit writes besides the counts' own: dead letters with
//! their error headers, and a partition's output and changelog records.

use super::DeadLetter;
use crate::codec::{self, POSITION_KEY, STREAM_TIME_KEY};
use crate::config::Settings;
use crate::emit::{ChangelogChange, CommitPlan};
use crate::partitioner::partition_for;
use crate::sink::{Record, Sink, SinkError};
use rdkafka::message::{Header, OwnedHeaders};

pub(super) fn send_dead_letter(sink: &Sink, topic: &str, dl: DeadLetter) -> Result<(), SinkError> {
    let error = dl.error.to_string();
    let partition = dl.source_partition.to_string();
    let offset = dl.source_offset.to_string();
    let timestamp = dl.timestamp.map(|t| t.to_string()).unwrap_or_default();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "videocounter.error",
            value: Some(error.as_bytes()),
        })
        .insert(Header {
            key: "videocounter.error.kind",
            value: Some(dl.error.kind().as_bytes()),
        })
        .insert(Header {
            key: "videocounter.source.topic",
            value: Some(dl.source_topic.as_bytes()),
        })
        .insert(Header {
            key: "videocounter.source.partition",
            value: Some(partition.as_bytes()),
        })
        .insert(Header {
            key: "videocounter.source.offset",
            value: Some(offset.as_bytes()),
        })
        .insert(Header {
            key: "videocounter.source.timestamp",
            value: Some(timestamp.as_bytes()),
        });
    sink.send(Record {
        topic,
        partition: None,
        key: dl.key.as_deref(),
        value: dl.value.as_deref(),
        timestamp: None,
        headers: Some(headers),
    })
}

pub(super) fn send_plan(
    sink: &Sink,
    s: &Settings,
    partition: i32,
    plan: &CommitPlan,
) -> Result<(), SinkError> {
    for w in &plan.outputs {
        let spec = &s.specs[w.id.window];
        let value = codec::encode_output(spec, &w.id.video_id, w.id.start, w.count);
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
                codec::window_key(s.specs[w.id.window].size_ms, w.id.start, &w.id.video_id),
                Some(codec::encode_u64(w.count)),
            ),
            ChangelogChange::Delete(id) => (
                codec::window_key(s.specs[id.window].size_ms, id.start, &id.video_id),
                None,
            ),
            ChangelogChange::StreamTime(st) => (STREAM_TIME_KEY.to_vec(), Some(codec::encode_i64(*st))),
            ChangelogChange::Position(o) => (POSITION_KEY.to_vec(), Some(codec::encode_i64(*o))),
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
