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

pub fn encode_output(spec: &CountWindow, video_id: &str, start: i64, count: u64) -> Vec<u8> {
    serde_json::to_vec(&OutputRecord {
        window_type: &spec.label,
        video_uid: video_id,
        count,
        window_start: start,
        window_end: spec.end_of(start),
    })
    .expect("serializing plain fields cannot fail")
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
        let bytes = encode_output(&spec, "v\"1", 120_000, 9);
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
