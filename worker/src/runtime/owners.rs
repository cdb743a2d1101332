//! Which group member owns which counting partition, for `GET /v1/counts`
//! on a video another worker counts. librdkafka's DescribeConsumerGroups
//! admin call describes classic and KIP-848 groups alike; rust-rdkafka does
//! not wrap it, so the few calls are made through its bindings here.

use crate::config::process_of_member;
use rdkafka::bindings as rd;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::BTreeMap;
use std::ffi::{CStr, CString, c_char};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One group member: its instance id and its assigned partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub instance_id: String,
    pub partitions: Vec<(String, i32)>,
}

/// Owner (the process: pod name) of every assigned partition of `topic` (pure).
pub fn owners_of(topic: &str, members: &[Member]) -> BTreeMap<i32, String> {
    members
        .iter()
        .flat_map(|m| {
            m.partitions
                .iter()
                .filter(|(t, _)| t == topic)
                // A process with several sessions is one owner: the pod to ask.
                .map(|(_, p)| (*p, process_of_member(&m.instance_id).to_owned()))
        })
        .collect()
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
                Ok(members) => *cache = Some((Instant::now(), owners_of(&self.topic, &members))),
                Err(e) => {
                    tracing::debug!(error = %e, group = %self.group, "cannot describe the consumer group");
                    *cache = None;
                    return None;
                }
            }
        }
        cache.as_ref().and_then(|(_, o)| o.get(&partition).cloned())
    }

    fn describe(&self) -> Result<Vec<Member>, String> {
        let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if client.is_none() {
            *client = Some(self.config.create().map_err(|e| e.to_string())?);
        }
        describe_group(
            client.as_ref().expect("just created"),
            &self.group,
            Duration::from_secs(5),
        )
    }
}

/// Describes one consumer group through any client handle.
fn describe_group(client: &BaseConsumer, group: &str, timeout: Duration) -> Result<Vec<Member>, String> {
    let group = CString::new(group).map_err(|e| e.to_string())?;
    let rk = client.client().native_ptr();
    // SAFETY: every pointer comes from librdkafka and is used only while the
    // object owning it (queue, options, event) is alive; all three are
    // destroyed exactly once below.
    unsafe {
        let queue = rd::rd_kafka_queue_new(rk);
        let options = rd::rd_kafka_AdminOptions_new(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
        );
        let mut errstr = [0 as c_char; 256];
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options,
            timeout.as_millis() as i32,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        let mut groups = [group.as_ptr()];
        rd::rd_kafka_DescribeConsumerGroups(rk, groups.as_mut_ptr(), 1, options, queue);
        let event = rd::rd_kafka_queue_poll(queue, (timeout.as_millis() + 1_000) as i32);
        let result = if event.is_null() {
            Err("describing the consumer group timed out".to_string())
        } else {
            read_description(event)
        };
        if !event.is_null() {
            rd::rd_kafka_event_destroy(event);
        }
        rd::rd_kafka_AdminOptions_destroy(options);
        rd::rd_kafka_queue_destroy(queue);
        result
    }
}

unsafe fn text(ptr: *const c_char) -> Option<String> {
    // SAFETY: librdkafka returns NUL-terminated strings or null.
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

unsafe fn read_description(event: *mut rd::rd_kafka_event_t) -> Result<Vec<Member>, String> {
    // SAFETY: `event` is a live DescribeConsumerGroups result event.
    unsafe {
        let code = rd::rd_kafka_event_error(event);
        if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(text(rd::rd_kafka_event_error_string(event)).unwrap_or_default());
        }
        let result = rd::rd_kafka_event_DescribeConsumerGroups_result(event);
        if result.is_null() {
            return Err("unexpected admin result".into());
        }
        let mut count = 0usize;
        let groups = rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut count);
        let mut members = Vec::new();
        for g in 0..count {
            let description = *groups.add(g);
            let error = rd::rd_kafka_ConsumerGroupDescription_error(description);
            if !error.is_null() {
                return Err(text(rd::rd_kafka_error_string(error)).unwrap_or_default());
            }
            for i in 0..rd::rd_kafka_ConsumerGroupDescription_member_count(description) {
                let member = rd::rd_kafka_ConsumerGroupDescription_member(description, i);
                let instance_id = text(rd::rd_kafka_MemberDescription_group_instance_id(member))
                    .or_else(|| text(rd::rd_kafka_MemberDescription_client_id(member)))
                    .unwrap_or_default();
                let mut partitions = Vec::new();
                let assignment = rd::rd_kafka_MemberDescription_assignment(member);
                let list = if assignment.is_null() {
                    std::ptr::null()
                } else {
                    rd::rd_kafka_MemberAssignment_partitions(assignment)
                };
                if !list.is_null() {
                    for k in 0..(*list).cnt.max(0) as usize {
                        let tp = &*(*list).elems.add(k);
                        partitions.push((text(tp.topic).unwrap_or_default(), tp.partition));
                    }
                }
                members.push(Member {
                    instance_id,
                    partitions,
                });
            }
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_come_from_each_members_assignment_of_the_topic() {
        let members = vec![
            Member {
                instance_id: "w-0".into(),
                partitions: vec![("in".into(), 0), ("rep".into(), 1), ("rep".into(), 3)],
            },
            Member {
                instance_id: "w-1".into(),
                partitions: vec![("in".into(), 1), ("rep".into(), 0)],
            },
            Member {
                instance_id: "w-2".into(),
                partitions: vec![],
            },
        ];
        let owners = owners_of("rep", &members);
        assert_eq!(
            owners.into_iter().collect::<Vec<_>>(),
            [
                (0, "w-1".to_string()),
                (1, "w-0".to_string()),
                (3, "w-0".to_string())
            ]
        );
        assert!(owners_of("other", &members).is_empty());
    }

    #[test]
    fn the_sessions_of_one_process_are_one_owner() {
        let members = [Member {
            instance_id: "likes-1.t3".into(),
            partitions: vec![("rep".into(), 5)],
        }];
        assert_eq!(owners_of("rep", &members)[&5], "likes-1");
    }
}
