//! Records the worker cannot count: kept with their key and value, and sent
//! to the dead-letter topic in the same transaction as the offsets that
//! consume them, with headers saying why and where they came from.

use crate::commit::sink::{Record, Sink, SinkError};
use crate::rekey::decode::DecodeError;
use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};

/// A record the worker cannot count, with why.
pub struct DeadLetter {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
    error: DecodeError,
    source_topic: String,
    source_partition: i32,
    source_offset: i64,
}

impl DeadLetter {
    pub fn of(m: &BorrowedMessage<'_>, error: DecodeError) -> Self {
        Self {
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            timestamp: m.timestamp().to_millis(),
            error,
            source_topic: m.topic().to_owned(),
            source_partition: m.partition(),
            source_offset: m.offset(),
        }
    }
}

pub fn send_dead_letter(sink: &Sink, topic: &str, dl: DeadLetter) -> Result<(), SinkError> {
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
