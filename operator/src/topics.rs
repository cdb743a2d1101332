//! Kafka topics a VideoCounter needs, created before its workers start.
//!
//! The plan comes from `videocounter_protocol::topics::topic_plan`, the same
//! function the workers use, so both sides agree on names and partition counts.
//! Deciding what to do ([`check_topics`]) is pure; [`TopicAdmin`] is the thin
//! I/O layer over rdkafka's admin client.

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use videocounter_protocol::config::{KafkaConnection, SecurityProtocol};
use videocounter_protocol::topics::{TopicPlan, TopicRole};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Credentials read from the Secrets the spec names (the operator does not
/// mount them: it reads them with the API).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KafkaCredentials {
    pub ca_pem: Option<String>,
    pub cert_pem: Option<String>,
    pub key_pem: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<String>,
}

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
}

impl TopicError {
    /// The Degraded condition's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "KafkaUnavailable",
            Self::PartitionMismatch(_) => "TopicPartitionMismatch",
            Self::NotCompacted { .. } => "TopicMisconfigured",
            Self::CreateFailed { .. } => "TopicCreationFailed",
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

/// What to do about the planned topics, given the existing ones (name →
/// partition count).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicCheck {
    pub missing: Vec<TopicPlan>,
    pub mismatched: Vec<Mismatch>,
}

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

/// librdkafka settings for an admin client of this connection.
pub fn admin_client_config(conn: &KafkaConnection, creds: &KafkaCredentials) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &conn.bootstrap_servers)
        .set("security.protocol", conn.security_protocol.as_librdkafka())
        .set("client.id", "videocounter-operator");
    if matches!(
        conn.security_protocol,
        SecurityProtocol::Ssl | SecurityProtocol::SaslSsl
    ) {
        for (key, value) in [
            ("ssl.ca.pem", &creds.ca_pem),
            ("ssl.certificate.pem", &creds.cert_pem),
            ("ssl.key.pem", &creds.key_pem),
        ] {
            if let Some(v) = value {
                c.set(key, v);
            }
        }
    }
    if let Some(sasl) = &conn.sasl {
        c.set("sasl.mechanism", sasl.mechanism.as_librdkafka());
        if let Some(u) = &creds.sasl_username {
            c.set("sasl.username", u.trim_end());
        }
        if let Some(p) = &creds.sasl_password {
            c.set("sasl.password", p.trim_end());
        }
    }
    c
}

/// Creates and checks topics on one Kafka cluster.
#[derive(Clone)]
pub struct TopicAdmin {
    client: Arc<AdminClient<DefaultClientContext>>,
    bootstrap: String,
}

impl TopicAdmin {
    pub fn new(conn: &KafkaConnection, creds: &KafkaCredentials) -> Result<Self, TopicError> {
        let client = admin_client_config(conn, creds)
            .create()
            .map_err(|e| TopicError::Unreachable {
                bootstrap: conn.bootstrap_servers.clone(),
                reason: format!("bad client settings: {e}"),
            })?;
        Ok(Self {
            client: Arc::new(client),
            bootstrap: conn.bootstrap_servers.clone(),
        })
    }

    /// Partition counts of every topic on the cluster.
    pub async fn existing_topics(&self) -> Result<BTreeMap<String, usize>, TopicError> {
        let client = self.client.clone();
        let metadata =
            tokio::task::spawn_blocking(move || client.inner().fetch_metadata(None, METADATA_TIMEOUT))
                .await
                .expect("metadata task panicked")
                .map_err(|e| self.unreachable(e.to_string()))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len()))
            .collect())
    }

    /// Makes every planned topic exist with the planned partitions and configs.
    /// Returns the names of the topics it created.
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
                Ok(name) => created.push(name),
                // Someone else (another worker, a racing reconcile) created it: fine.
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
    fn credentials_go_into_the_client_settings() {
        let mut conn = WorkerConfig::with_bootstrap("k:9093").kafka;
        conn.security_protocol = SecurityProtocol::SaslSsl;
        conn.sasl = Some(videocounter_protocol::config::SaslFiles {
            mechanism: videocounter_protocol::config::SaslMechanism::ScramSha256,
            username_file: "/u".into(),
            password_file: "/p".into(),
        });
        let creds = KafkaCredentials {
            ca_pem: Some("PEM".into()),
            sasl_username: Some("alice\n".into()),
            sasl_password: Some("secret".into()),
            ..KafkaCredentials::default()
        };
        let c = admin_client_config(&conn, &creds);
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(c.get("sasl.username"), Some("alice"));
        assert_eq!(c.get("ssl.ca.pem"), Some("PEM"));
    }
}
