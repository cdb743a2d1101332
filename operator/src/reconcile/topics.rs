//! Stage 3, topics: every Kafka topic the workers need exists with the
//! planned partitions before any worker starts. The plan is
//! `videocounter_protocol::topics::topic_plan`, the one the workers check;
//! checking and creating is the shared Kafka layer (`videocounter_shell::kafka`).

use crate::crd::VideoCounter;
use crate::reconcile::context::Context;
use crate::reconcile::outcome::{Problem, StageResult};
use crate::reconcile::validate::ValidCounter;
use kube::runtime::events::EventType;
use videocounter_protocol::topics::topic_plan;
use videocounter_shell::kafka::KafkaCredentials;

/// Creates the missing topics and checks the existing ones; an unreachable
/// broker or a wrong topic is a problem of the VideoCounter.
pub async fn ensure(
    ctx: &Context,
    vc: &VideoCounter,
    counter: &ValidCounter,
    creds: &KafkaCredentials,
) -> StageResult<()> {
    let admin = ctx.admin_for(&counter.config.kafka, creds)?;
    let created = admin
        .ensure(&topic_plan(&counter.config), counter.replication_factor)
        .await
        .map_err(|e| Problem::new(e.reason(), e.to_string()))?;
    if !created.is_empty() {
        ctx.metrics.topics_created.inc_by(created.len() as u64);
        ctx.publish(
            vc,
            EventType::Normal,
            "TopicsCreated",
            format!("created Kafka topics {}", created.join(", ")),
        )
        .await;
    }
    Ok(())
}
