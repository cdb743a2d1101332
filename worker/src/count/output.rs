//! The JSON record a window count is published as, in its window's output topic.

use crate::count::window::CountWindow;
use serde::Serialize;

/// The output record, borrowed; the same JSON as `videocounter_protocol::WindowCountRecord`.
#[derive(Serialize)]
struct OutputRecord<'a> {
    #[serde(rename = "type")]
    window_type: &'a str,
    video_uid: &'a str,
    count: u64,
    window_start: i64,
    window_end: i64,
}

/// Writes the output record's JSON into `buf`, replacing what it held (one
/// buffer serves a whole commit's outputs).
pub fn encode_output_into(buf: &mut Vec<u8>, spec: &CountWindow, video_id: &str, start: i64, count: u64) {
    buf.clear();
    serde_json::to_writer(
        &mut *buf,
        &OutputRecord {
            window_type: &spec.label,
            video_uid: video_id,
            count,
            window_start: start,
            window_end: spec.end_of(start),
        },
    )
    .expect("serializing plain fields into memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use videocounter_protocol::WindowCountRecord;

    #[test]
    fn output_json_is_the_protocol_record() {
        let spec = CountWindow {
            size_ms: 60_000,
            grace_ms: 0,
            retention_ms: 0,
            label: "1min".into(),
            output_topic: "video_aggregations_1".into(),
        };
        let mut bytes = b"left over".to_vec();
        encode_output_into(&mut bytes, &spec, "v\"1", 120_000, 9);
        let rec: WindowCountRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            rec,
            WindowCountRecord {
                window_type: "1min".into(),
                video_uid: "v\"1".into(),
                count: 9,
                window_start: 120_000,
                window_end: 180_000
            }
        );
    }
}
