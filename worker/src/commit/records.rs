//! The records one commit writes for a counting partition: its window counts
//! to the output topics, and its counts, expiries, stream time and position
//! to its changelog partition.

use crate::commit::sink::{Record, Sink, SinkError};
use crate::config::Settings;
use crate::count::changelog::for_each_record;
use crate::count::emit::CommitPlan;
use crate::count::output::encode_output_into;
use crate::count::partitioner::partition_for;

pub fn send_plan(sink: &Sink, s: &Settings, partition: i32, plan: &CommitPlan) -> Result<(), SinkError> {
    let mut value = Vec::with_capacity(128);
    for w in plan.outputs() {
        let spec = &s.specs[w.id.window];
        encode_output_into(&mut value, spec, &w.id.video_id, w.id.start, w.count);
        sink.send(Record {
            topic: &spec.output_topic,
            partition: Some(partition_for(w.id.video_id.as_bytes(), s.partitions)),
            key: Some(w.id.video_id.as_bytes()),
            value: Some(&value),
            timestamp: None,
            headers: None,
        })?;
    }
    for_each_record(&s.specs, plan, |key, value| {
        sink.send(Record {
            topic: &s.changelog_topic,
            partition: Some(partition),
            key: Some(key),
            value,
            timestamp: None,
            headers: None,
        })
    })
}
