//! Counting partitions becoming active: a finished restore resumes its
//! partition at the position its store recorded (or retries later), and a
//! failed restore is started again.

use super::{Engine, RESTORE_RETRY, SessionEnd, Source, kafka_offset};
use crate::count::restore::{RestoreJob, RestoreParams};
use crate::count::task::{ActiveTask, Task};
use crate::engine::offsets::Start;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use std::time::{Duration, Instant};

impl Engine {
    pub(super) fn finish_restores<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let finished: Vec<i32> = self
            .tasks
            .iter()
            .filter(|(_, t)| match t {
                Task::Restoring { job, .. } => job.is_finished(),
                Task::Failed { retry_at, .. } => *retry_at <= Instant::now(),
                Task::Active(_) => false,
            })
            .map(|(p, _)| *p)
            .collect();
        for p in finished {
            let task = match self.tasks.remove(&p) {
                Some(Task::Restoring { job, group_offset }) => self.activate(consumer, p, job, group_offset),
                Some(Task::Failed { group_offset, .. }) => Task::Restoring {
                    job: self.start_restore(p),
                    group_offset,
                },
                Some(other) => other,
                None => continue,
            };
            self.tasks.insert(p, task);
            self.status_changed = true;
        }
    }

    /// A restore finished: the partition resumes at the position its store
    /// recorded, or the task waits to retry the restore.
    fn activate<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        p: i32,
        job: RestoreJob,
        group_offset: Option<i64>,
    ) -> Task {
        let progress = job.progress.clone();
        let restored = job.join().map_err(|e| e.to_string()).and_then(|store| {
            ActiveTask::new(store, self.settings.specs.clone(), progress.clone(), group_offset)
                .map_err(|e| e.to_string())
        });
        // Changelog records applied, whether or not the restore then succeeded.
        self.shared
            .metrics
            .restored_records
            .inc_by(progress.restored.load(std::sync::atomic::Ordering::Relaxed));
        match restored {
            Ok((active, start)) => {
                if start.disagrees_with_group {
                    tracing::warn!(
                        partition = p,
                        store_position = ?start.start,
                        group_offset,
                        "the store's position and the group's committed offset differ; resuming at the store's"
                    );
                }
                self.seek_and_resume(consumer, Source::Repartition, p, start.start);
                Task::Active(active)
            }
            Err(error) => {
                tracing::error!(partition = p, %error, "restore failed; retrying in {RESTORE_RETRY:?}");
                Task::Failed {
                    error,
                    retry_at: Instant::now() + RESTORE_RETRY,
                    progress,
                    group_offset,
                }
            }
        }
    }

    fn seek_and_resume<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        source: Source,
        partition: i32,
        start: Start,
    ) {
        let topic = self.topic(source).to_owned();
        if let Err(e) = consumer.seek(&topic, partition, kafka_offset(start), Duration::from_secs(10)) {
            self.set_broken(SessionEnd::Partition {
                action: "seek to its start",
                topic,
                partition,
                source: e,
            });
            return;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&topic, partition);
        if let Err(e) = consumer.resume(&tpl) {
            self.set_broken(SessionEnd::Partition {
                action: "resume",
                topic,
                partition,
                source: e,
            });
        }
    }

    pub(super) fn start_restore(&self, partition: i32) -> RestoreJob {
        RestoreJob::start(RestoreParams {
            partition,
            path: self.settings.partition_dir(partition),
            identity: self.settings.store_identity(partition),
            specs: self.settings.specs.clone(),
            resources: self.resources.clone(),
            changelog_topic: self.settings.changelog_topic.clone(),
            kafka: self.kafka.clone(),
        })
    }
}
