//! `TopicAdmin` against the test ground's Kafka broker: it creates what the
//! plan lists with the role's settings, creates nothing the second time, and
//! names a topic with the wrong partition count or a changelog that is not
//! compacted.

use std::time::Duration;
use videocounter_e2e::{kafka, unique_name};
use videocounter_protocol::WorkerConfig;
use videocounter_protocol::topics::{TopicRole, topic_plan};
use videocounter_shell::kafka::{Credentials, TopicAdmin, TopicError, client_config};

fn admin() -> TopicAdmin {
    let conn = videocounter_shell::kafka::plaintext(&kafka::bootstrap());
    TopicAdmin::new(&client_config(&conn, "shell-test", Credentials::Files).unwrap()).unwrap()
}

/// A configuration whose every topic is new: a unique application id and input.
fn fresh_config(partitions: u32) -> WorkerConfig {
    let mut config = WorkerConfig::with_bootstrap(kafka::bootstrap());
    config.application_id = unique_name("shell");
    config.topics.input = format!("{}-input", config.application_id);
    config.topics.partitions = partitions;
    for (i, w) in config.windows.iter_mut().enumerate() {
        w.output_topic = Some(format!("{}-out-{i}", config.application_id));
    }
    config
}

#[tokio::test]
async fn ensure_creates_the_plan_once_with_the_roles_settings() {
    let config = fresh_config(3);
    let plan = topic_plan(&config);
    let admin = admin();
    let mut created = admin.ensure(&plan, Some(1)).await.unwrap();
    created.sort();
    let mut planned: Vec<String> = plan.iter().map(|t| t.name.clone()).collect();
    planned.sort();
    assert_eq!(created, planned);
    let counts = admin
        .wait_until_listed(&plan, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(counts.len(), plan.len());
    assert!(counts.values().all(|&n| n == 3), "{counts:?}");
    assert_eq!(admin.ensure(&plan, Some(1)).await.unwrap(), Vec::<String>::new());
    let changelog = plan.iter().find(|t| t.role == TopicRole::Changelog).unwrap();
    assert_eq!(kafka::partition_count(&changelog.name), 3);
}

#[tokio::test]
async fn a_wrong_partition_count_is_named_and_nothing_is_created() {
    let config = fresh_config(4);
    let plan = topic_plan(&config);
    let repartition = plan.iter().find(|t| t.role == TopicRole::Repartition).unwrap();
    kafka::create_topic(&repartition.name, 2, &[]).await;
    let error = admin().ensure(&plan, Some(1)).await.unwrap_err();
    assert_eq!(error.reason(), "TopicPartitionMismatch");
    assert!(
        error.to_string().starts_with(&format!(
            "topic {} has 2 partitions, 4 are needed",
            repartition.name
        )),
        "{error}"
    );
    let existing = admin().existing_topics().await.unwrap();
    assert!(
        !existing.contains_key(&config.topics.input),
        "nothing else was created"
    );
}

#[tokio::test]
async fn a_changelog_that_is_not_compacted_is_refused() {
    let config = fresh_config(1);
    let plan = topic_plan(&config);
    let changelog = plan.iter().find(|t| t.role == TopicRole::Changelog).unwrap();
    kafka::create_topic(&changelog.name, 1, &[("cleanup.policy", "delete")]).await;
    match admin().ensure(&plan, Some(1)).await {
        Err(TopicError::NotCompacted { topic, policy }) => {
            assert_eq!(
                (topic.as_str(), policy.as_str()),
                (changelog.name.as_str(), "delete")
            )
        }
        other => panic!("expected NotCompacted, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_broker_is_named() {
    let conn = videocounter_shell::kafka::plaintext("127.0.0.1:1");
    let mut config = client_config(&conn, "shell-test", Credentials::Files).unwrap();
    config.set("socket.connection.setup.timeout.ms", "1000");
    let admin = TopicAdmin::new(&config).unwrap();
    let plan = topic_plan(&fresh_config(1));
    let error = tokio::time::timeout(Duration::from_secs(30), admin.ensure(&plan, None))
        .await
        .expect("ensure gives up within its metadata timeout")
        .unwrap_err();
    assert_eq!(error.reason(), "KafkaUnavailable");
    assert!(
        error
            .to_string()
            .starts_with("Kafka at 127.0.0.1:1 is unreachable"),
        "{error}"
    );
}
