//! The topics a deployment needs: which are missing or wrong ([`check_topics`],
//! pure), and creating them ([`TopicAdmin`], a thin layer over librdkafka's
//! admin client).
//!
//! The plan comes from `videocounter_protocol::topics::topic_plan`, the one
//! place topic names and partition counts are derived, so the operator (which
//! creates the topics before any worker starts) and the worker (which checks
//! them at every session) agree.

use futures::channel::oneshot;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use videocounter_protocol::topics::{TopicPlan, TopicRole};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the topics are not as planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("Kafka at {bootstrap} is unreachable: {reason}")]
    Unreachable { bootstrap: String, reason: String },
    #[error("{}", describe_mismatches(.0))]
    PartitionMismatch(Vec<Mismatch>),
    #[error(
        "topic {topic} has cleanup.policy={policy:?}; a changelog must be compacted (cleanup.policy=compact)"
    )]
    NotCompacted { topic: String, policy: String },
    #[error("creating topic {topic} failed: {reason}")]
    CreateFailed { topic: String, reason: String },
    #[error("topics {} do not exist and could not be created", .0.join(", "))]
    Missing(Vec<String>),
}

impl TopicError {
    /// A CamelCase reason (the operator's `Degraded` condition reason).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "KafkaUnavailable",
            Self::PartitionMismatch(_) => "TopicPartitionMismatch",
            Self::NotCompacted { .. } => "TopicMisconfigured",
            Self::CreateFailed { .. } | Self::Missing(_) => "TopicCreationFailed",
        }
    }
}

/// An existing topic whose partition count differs from the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub topic: String,
    pub existing: usize,
    pub planned: u32,
}

fn describe_mismatches(mismatches: &[Mismatch]) -> String {
    let list: Vec<String> = mismatches
        .iter()
        .map(|m| {
            format!(
                "topic {} has {} partitions, {} are needed",
                m.topic, m.existing, m.planned
            )
        })
        .collect();
    format!(
        "{}; partition counts of internal and output topics must equal topics.partitions \
         (delete the topics or choose another applicationId)",
        list.join("; ")
    )
}

/// What to do about the planned topics, given the existing ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicCheck {
    /// Planned topics that do not exist, each once.
    pub missing: Vec<TopicPlan>,
    /// Existing topics whose role needs the planned partition count, with another.
    pub mismatched: Vec<Mismatch>,
}

/// Compares the plan with the existing topics (name → partition count). The
/// input topic may have any count: it is re-keyed.
pub fn check_topics(plan: &[TopicPlan], existing: &BTreeMap<String, usize>) -> TopicCheck {
    let mut check = TopicCheck::default();
    for topic in plan {
        match existing.get(&topic.name) {
            None => {
                if !check.missing.iter().any(|t| t.name == topic.name) {
                    check.missing.push(topic.clone());
                }
            }
            Some(&n) if topic.role.partition_count_must_match() && n != topic.partitions as usize => {
                check.mismatched.push(Mismatch {
                    topic: topic.name.clone(),
                    existing: n,
                    planned: topic.partitions,
                })
            }
            Some(_) => {}
        }
    }
    check
}

/// Creates and checks topics on one Kafka cluster. Its calls need no
/// particular async runtime: the worker blocks on them, the operator awaits
/// them on Tokio.
#[derive(Clone)]
pub struct TopicAdmin {
    client: Arc<AdminClient<DefaultClientContext>>,
    bootstrap: String,
}

impl TopicAdmin {
    /// An admin client with `config` (see [`super::client_config`]).
    pub fn new(config: &ClientConfig) -> Result<Self, TopicError> {
        let bootstrap = config.get("bootstrap.servers").unwrap_or_default().to_string();
        let client = config.create().map_err(|e| TopicError::Unreachable {
            bootstrap: bootstrap.clone(),
            reason: format!("bad client settings: {e}"),
        })?;
        Ok(Self {
            client: Arc::new(client),
            bootstrap,
        })
    }

    /// Partition counts of every topic on the cluster that has partitions
    /// (a topic being created may be listed without them for a moment).
    pub async fn existing_topics(&self) -> Result<BTreeMap<String, usize>, TopicError> {
        // librdkafka's metadata call blocks: run it on a thread of its own.
        let client = self.client.clone();
        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(client.inner().fetch_metadata(None, METADATA_TIMEOUT));
        });
        let metadata = rx
            .await
            .expect("the metadata thread always answers")
            .map_err(|e| self.unreachable(e.to_string()))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| (t.name().to_string(), t.partitions().len()))
            .collect())
    }

    /// Makes every planned topic exist with the planned partitions and
    /// configs, and checks that each changelog is compacted. Returns the names
    /// of the topics it created.
    pub async fn ensure(
        &self,
        plan: &[TopicPlan],
        replication_factor: Option<i32>,
    ) -> Result<Vec<String>, TopicError> {
        let check = check_topics(plan, &self.existing_topics().await?);
        if !check.mismatched.is_empty() {
            return Err(TopicError::PartitionMismatch(check.mismatched));
        }
        let created = self.create(&check.missing, replication_factor).await?;
        for topic in plan.iter().filter(|t| t.role == TopicRole::Changelog) {
            self.check_compacted(&topic.name).await?;
        }
        Ok(created)
    }

    /// Waits (at most `timeout`) until every planned topic is in the
    /// metadata, as a client that reads them right after [`Self::ensure`]
    /// needs; then checks the partition counts again. Returns the partition
    /// count of every planned topic.
    pub async fn wait_until_listed(
        &self,
        plan: &[TopicPlan],
        timeout: Duration,
    ) -> Result<BTreeMap<String, usize>, TopicError> {
        let deadline = Instant::now() + timeout;
        loop {
            let existing = self.existing_topics().await?;
            let check = check_topics(plan, &existing);
            if !check.mismatched.is_empty() {
                return Err(TopicError::PartitionMismatch(check.mismatched));
            }
            if check.missing.is_empty() {
                return Ok(existing
                    .into_iter()
                    .filter(|(name, _)| plan.iter().any(|t| &t.name == name))
                    .collect());
            }
            if Instant::now() >= deadline {
                return Err(TopicError::Missing(
                    check.missing.into_iter().map(|t| t.name).collect(),
                ));
            }
            let (tx, rx) = oneshot::channel::<()>();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                let _ = tx.send(());
            });
            let _ = rx.await;
        }
    }

    async fn create(
        &self,
        topics: &[TopicPlan],
        replication_factor: Option<i32>,
    ) -> Result<Vec<String>, TopicError> {
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        // -1 lets the broker pick its default.replication.factor (KIP-464).
        let replication = replication_factor.unwrap_or(-1);
        let new_topics: Vec<NewTopic> = topics
            .iter()
            .map(|t| {
                t.role.configs().iter().fold(
                    NewTopic::new(&t.name, t.partitions as i32, TopicReplication::Fixed(replication)),
                    |topic, (k, v)| topic.set(k, v),
                )
            })
            .collect();
        let options = AdminOptions::new()
            .operation_timeout(Some(OPERATION_TIMEOUT))
            .request_timeout(Some(OPERATION_TIMEOUT));
        let results = self
            .client
            .create_topics(&new_topics, &options)
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        let mut created = Vec::new();
        for result in results {
            match result {
                Ok(name) => {
                    tracing::info!(topic = %name, "created topic");
                    created.push(name)
                }
                // Someone else (a worker, a racing reconcile) created it: fine.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(TopicError::CreateFailed {
                        topic,
                        reason: code.to_string(),
                    });
                }
            }
        }
        Ok(created)
    }

    async fn check_compacted(&self, topic: &str) -> Result<(), TopicError> {
        let options = AdminOptions::new().request_timeout(Some(METADATA_TIMEOUT));
        let results = self
            .client
            .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        let policy = results
            .into_iter()
            .next()
            .and_then(|r| r.ok())
            .and_then(|r| r.get("cleanup.policy").and_then(|e| e.value.clone()));
        match policy {
            Some(p) if !p.split(',').any(|part| part.trim() == "compact") => Err(TopicError::NotCompacted {
                topic: topic.to_string(),
                policy: p,
            }),
            _ => Ok(()),
        }
    }

    fn unreachable(&self, reason: String) -> TopicError {
        TopicError::Unreachable {
            bootstrap: self.bootstrap.clone(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use videocounter_protocol::WorkerConfig;
    use videocounter_protocol::topics::topic_plan;

    fn plan() -> Vec<TopicPlan> {
        topic_plan(&WorkerConfig::with_bootstrap("k:9092"))
    }

    #[test]
    fn missing_topics_are_created_and_the_input_may_have_any_count() {
        let existing = BTreeMap::from([
            ("video_clicks_ingestion".to_string(), 3),
            ("videocounter-repartition".to_string(), 6),
        ]);
        let check = check_topics(&plan(), &existing);
        assert!(check.mismatched.is_empty());
        let missing: Vec<_> = check.missing.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            missing,
            [
                "videocounter-counts-changelog",
                "videocounter-dead-letter",
                "video_aggregations_1",
                "video_aggregations_5",
                "video_aggregations_10"
            ]
        );
    }

    #[test]
    fn a_wrong_partition_count_is_reported() {
        let existing = BTreeMap::from([("videocounter-counts-changelog".to_string(), 3)]);
        let check = check_topics(&plan(), &existing);
        assert_eq!(
            check.mismatched,
            [Mismatch {
                topic: "videocounter-counts-changelog".into(),
                existing: 3,
                planned: 6
            }]
        );
        let message = TopicError::PartitionMismatch(check.mismatched).to_string();
        assert!(
            message.starts_with("topic videocounter-counts-changelog has 3 partitions, 6 are needed"),
            "{message}"
        );
    }

    #[test]
    fn a_topic_shared_by_two_roles_is_created_once() {
        let mut config = WorkerConfig::with_bootstrap("k:9092");
        config.topics.dead_letter = Some("video_clicks_ingestion".into());
        let check = check_topics(&topic_plan(&config), &BTreeMap::new());
        let count = check
            .missing
            .iter()
            .filter(|t| t.name == "video_clicks_ingestion")
            .count();
        assert_eq!(count, 1);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let missing = TopicError::Missing(vec!["a".into(), "b".into()]);
        assert_eq!(
            missing.to_string(),
            "topics a, b do not exist and could not be created"
        );
        assert_eq!(missing.reason(), "TopicCreationFailed");
        let unreachable = TopicError::Unreachable {
            bootstrap: "k:9092".into(),
            reason: "timed out".into(),
        };
        assert_eq!(unreachable.reason(), "KafkaUnavailable");
        assert_eq!(
            unreachable.to_string(),
            "Kafka at k:9092 is unreachable: timed out"
        );
    }
}
