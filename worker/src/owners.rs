//! Which group member owns which counting partition, for `GET /v1/counts`
//! on a video another worker counts. The classic group protocol describes
//! every member with its client id (the instance id) and its assignment.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Parses a consumer-protocol `Assignment` (any version): topics with their
/// partitions; trailing user data is ignored.
pub fn parse_assignment(bytes: &[u8]) -> Result<Vec<(String, Vec<i32>)>, &'static str> {
    let mut r = Reader { bytes, at: 0 };
    let _version = r.i16()?;
    let topics = r.i32()?;
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        let len = r.i16()?;
        let name = r.take(len.max(0) as usize)?;
        let name = std::str::from_utf8(name).map_err(|_| "topic name is not UTF-8")?.to_owned();
        let n = r.i32()?;
        let mut parts = Vec::with_capacity(n.clamp(0, 10_000) as usize);
        for _ in 0..n.max(0) {
            parts.push(r.i32()?);
        }
        out.push((name, parts));
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.at.checked_add(n).ok_or("truncated assignment")?;
        let s = self.bytes.get(self.at..end).ok_or("truncated assignment")?;
        self.at = end;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, &'static str> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn i32(&mut self) -> Result<i32, &'static str> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
}

/// Cached owners of the partitions of one topic in one consumer group.
pub struct OwnerDirectory {
    group: String,
    topic: String,
    config: ClientConfig,
    client: Mutex<Option<BaseConsumer>>,
    cache: Mutex<Option<(Instant, BTreeMap<i32, String>)>>,
}

const CACHE_FOR: Duration = Duration::from_secs(2);

impl OwnerDirectory {
    pub fn new(group: String, topic: String, config: ClientConfig) -> Self {
        Self {
            group,
            topic,
            config,
            client: Mutex::new(None),
            cache: Mutex::new(None),
        }
    }

    /// Instance id of the member owning `partition`, if the group says. Blocking.
    pub fn owner_of(&self, partition: i32) -> Option<String> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = cache.as_ref().is_some_and(|(at, _)| at.elapsed() < CACHE_FOR);
        if !fresh {
            match self.describe() {
                Ok(owners) => *cache = Some((Instant::now(), owners)),
                Err(e) => {
                    tracing::debug!(error = %e, group = %self.group, "cannot describe the consumer group");
                    *cache = None;
                    return None;
                }
            }
        }
        cache.as_ref().and_then(|(_, o)| o.get(&partition).cloned())
    }

    fn describe(&self) -> Result<BTreeMap<i32, String>, String> {
        let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if client.is_none() {
            *client = Some(self.config.create().map_err(|e| e.to_string())?);
        }
        let consumer = client.as_ref().expect("just created");
        let groups = consumer
            .fetch_group_list(Some(&self.group), Duration::from_secs(3))
            .map_err(|e| e.to_string())?;
        let mut owners = BTreeMap::new();
        for g in groups.groups() {
            for m in g.members() {
                let Some(bytes) = m.assignment() else { continue };
                let Ok(topics) = parse_assignment(bytes) else { continue };
                for (topic, parts) in topics {
                    if topic == self.topic {
                        for p in parts {
                            owners.insert(p, m.client_id().to_owned());
                        }
                    }
                }
            }
        }
        Ok(owners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(version: i16, topics: &[(&str, &[i32])], user_data: &[u8]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend((topics.len() as i32).to_be_bytes());
        for (name, parts) in topics {
            b.extend((name.len() as i16).to_be_bytes());
            b.extend(name.as_bytes());
            b.extend((parts.len() as i32).to_be_bytes());
            for p in *parts {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend((user_data.len() as i32).to_be_bytes());
        b.extend(user_data);
        b
    }

    #[test]
    fn parses_assignments_of_every_version() {
        for version in [0, 1, 3] {
            let bytes = assignment(version, &[("in", &[0, 2]), ("app-repartition", &[1, 4, 5])], b"xyz");
            assert_eq!(
                parse_assignment(&bytes).unwrap(),
                [
                    ("in".to_string(), vec![0, 2]),
                    ("app-repartition".to_string(), vec![1, 4, 5])
                ]
            );
        }
        assert_eq!(parse_assignment(&assignment(0, &[], b"")).unwrap(), []);
    }

    #[test]
    fn truncated_assignments_are_errors_not_panics() {
        let bytes = assignment(1, &[("topic", &[1, 2, 3])], b"");
        for cut in 0..bytes.len() - 4 {
            assert!(parse_assignment(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_err());
    }
}
