//! Names of the Kafka topics a deployment uses, derived in one place so the
//! worker (which reads and writes them) and the operator (which creates them) agree.

use crate::config::WorkerConfig;

/// Repartition topic: input records re-keyed by video id.
pub fn repartition_topic(application_id: &str) -> String {
    format!("{application_id}-repartition")
}

/// Compacted changelog of the window-count stores; one partition per count partition.
pub fn changelog_topic(application_id: &str) -> String {
    format!("{application_id}-counts-changelog")
}

/// Default dead-letter topic for records that cannot be decoded.
pub fn default_dead_letter_topic(application_id: &str) -> String {
    format!("{application_id}-dead-letter")
}

/// Kafka's topic-name rule: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
/// Application ids stay shorter so derived names fit.
pub fn is_valid_topic_name(name: &str) -> bool {
    (1..=200).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Every topic a deployment needs, with its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPlan {
    pub name: String,
    pub role: TopicRole,
    pub partitions: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicRole {
    Input,
    Repartition,
    Changelog,
    Output,
    DeadLetter,
}

impl TopicRole {
    /// Whether an existing topic of this role must have exactly the planned
    /// partition count. The input topic may have any count: it is re-keyed.
    pub fn partition_count_must_match(self) -> bool {
        !matches!(self, TopicRole::Input)
    }

    /// Topic configs the role needs beyond the broker defaults.
    pub fn configs(self) -> &'static [(&'static str, &'static str)] {
        match self {
            TopicRole::Changelog => &[("cleanup.policy", "compact"), ("min.compaction.lag.ms", "0")],
            // Repartitioned records are consumed within seconds; a day covers long outages.
            TopicRole::Repartition => &[("cleanup.policy", "delete"), ("retention.ms", "86400000")],
            _ => &[],
        }
    }
}

/// The topics for a configuration, in creation order (input first).
pub fn topic_plan(config: &WorkerConfig) -> Vec<TopicPlan> {
    let app = &config.application_id;
    let parts = config.topics.partitions;
    let mut plan = vec![
        TopicPlan {
            name: config.topics.input.clone(),
            role: TopicRole::Input,
            partitions: parts,
        },
        TopicPlan {
            name: repartition_topic(app),
            role: TopicRole::Repartition,
            partitions: parts,
        },
        TopicPlan {
            name: changelog_topic(app),
            role: TopicRole::Changelog,
            partitions: parts,
        },
        TopicPlan {
            name: config.dead_letter_topic(),
            role: TopicRole::DeadLetter,
            partitions: parts,
        },
    ];
    for w in config.resolved_windows() {
        plan.push(TopicPlan {
            name: w.output_topic,
            role: TopicRole::Output,
            partitions: parts,
        });
    }
    plan
}
