//! The record between the two stages: the re-key stage writes the summed
//! likes of one video in one combining bucket to the repartition topic
//! (key = video id), the count stage reads them back.

use crate::count::window::MAX_TIMESTAMP_MS;
use crate::rekey::decode::DecodeError;

/// Repartition record value: a format byte, the summed count and the event time.
const REPARTITION_V1: u8 = 1;

pub fn encode_repartition_value(count: u64, ts: i64) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[0] = REPARTITION_V1;
    out[1..9].copy_from_slice(&count.to_be_bytes());
    out[9..17].copy_from_slice(&ts.to_be_bytes());
    out
}

/// Decodes a repartition record (key = video id) into `(video id, count, ts)`.
pub fn decode_repartition<'a>(
    key: Option<&'a [u8]>,
    value: Option<&[u8]>,
) -> Result<(&'a str, u64, i64), DecodeError> {
    let key = key.ok_or(DecodeError::MalformedRepartition("no key"))?;
    let id = std::str::from_utf8(key).map_err(|_| DecodeError::MalformedRepartition("key is not UTF-8"))?;
    let value = value.ok_or(DecodeError::MalformedRepartition("no value"))?;
    if value.len() != 17 || value[0] != REPARTITION_V1 {
        return Err(DecodeError::MalformedRepartition("unknown value format"));
    }
    let count = u64::from_be_bytes(value[1..9].try_into().expect("8 bytes"));
    let ts = i64::from_be_bytes(value[9..17].try_into().expect("8 bytes"));
    if !(0..=MAX_TIMESTAMP_MS).contains(&ts) {
        return Err(DecodeError::MalformedRepartition("timestamp out of range"));
    }
    Ok((id, count, ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repartition_values_round_trip() {
        let value = encode_repartition_value(42, 1_700_000_000_000);
        assert_eq!(
            decode_repartition(Some(b"vid"), Some(&value)),
            Ok(("vid", 42, 1_700_000_000_000))
        );
        assert!(decode_repartition(None, Some(&value)).is_err());
        assert!(decode_repartition(Some(b"vid"), Some(b"junk")).is_err());
        assert!(decode_repartition(Some(&[0xff]), Some(&value)).is_err());
    }
}
