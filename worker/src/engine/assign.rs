//! Following the group's assignment. Partitions are assigned with explicit
//! start offsets read here, never left to the consumer: librdkafka 2.12
//! starts a partition from `auto.offset.reset` (the beginning) when its
//! committed offset is still unstable (a crashed owner's transaction holds an
//! offset commit for it) and the assignment changes while it waits, which
//! counted whole partitions twice.

use super::{Engine, SessionEnd, Source, partition_names};
use crate::count::task::Task;
use crate::engine::offsets::{PartitionOffsets, Start};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long an assignment waits for stable committed offsets before the
/// session gives up and starts over. A crashed owner's open transaction
/// keeps them unstable until the broker aborts it (the transaction timeout
/// plus the broker's abort check interval).
const STABLE_OFFSETS_WAIT: Duration = Duration::from_secs(90);

impl Engine {
    /// Called with the partitions about to be assigned: reads their stable
    /// committed offsets, sets them as the start offsets, and sets up each
    /// partition (inputs at once, counting partitions as restores).
    pub fn on_assign<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &mut TopicPartitionList,
    ) {
        let m = &self.shared.metrics;
        m.rebalances.get_or_create(&m.kind("assign")).inc();
        if self.broken.is_some() || tpl.count() == 0 {
            return;
        }
        // First assignment of the session: take over the transactional id now,
        // which also aborts a crashed predecessor's open transaction, so its
        // offsets and changelog records are stable at once.
        // (While a commit runs the producer is on its thread: it is initialized then.)
        if let Some(Err(e)) = self.sink.as_mut().map(|s| s.init()) {
            self.set_broken(SessionEnd::InitProducer(e));
            return;
        }
        tracing::info!(partitions = ?partition_names(tpl), "assignment received; reading the committed offsets");
        let committed = match self.stable_committed_offsets(consumer, tpl) {
            Ok(c) => c,
            Err(e) => {
                self.set_broken(e);
                return;
            }
        };
        let mut starts = Vec::new();
        for e in tpl.elements() {
            let Some(source) = self.classify(e.topic()) else {
                continue;
            };
            let p = e.partition();
            let group_offset = committed.get(&(source, p)).copied().flatten();
            let start = Start::from_committed(group_offset);
            match source {
                Source::Input => {
                    self.inputs.insert(p, PartitionOffsets::new(start));
                }
                Source::Repartition => {
                    if let Some(old) = self.tasks.remove(&p) {
                        old.close(p);
                    }
                    let job = self.start_restore(p);
                    self.tasks.insert(p, Task::Restoring { job, group_offset });
                }
            }
            starts.push((e.topic().to_owned(), p, start));
        }
        for (topic, p, start) in starts {
            let offset = match start {
                Start::Offset(o) => Offset::Offset(o),
                Start::Beginning => Offset::Beginning,
            };
            if let Err(e) = tpl.set_partition_offset(&topic, p, offset) {
                self.set_broken(SessionEnd::Partition {
                    action: "set the start offset of",
                    topic,
                    partition: p,
                    source: e,
                });
            }
        }
        tracing::info!(assigned = ?partition_names(tpl), "partitions assigned");
    }

    /// Called once the partitions are assigned: counting partitions stay
    /// paused until their store is restored.
    pub fn after_assign<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        let mut pause = TopicPartitionList::new();
        for e in tpl.elements() {
            if self.classify(e.topic()) == Some(Source::Repartition) {
                pause.add_partition(e.topic(), e.partition());
            }
        }
        if pause.count() > 0
            && let Err(e) = consumer.pause(&pause)
        {
            self.set_broken(SessionEnd::Consumer {
                action: "pause partitions while they restore",
                source: e,
            });
        }
        self.status_changed = true;
        self.shared.slot_mut(self.slot).joined = true;
        self.publish_status();
    }

    /// The group's committed offsets of `tpl`'s partitions, once no open
    /// transaction can still change them (KIP-447: with `read_committed` the
    /// broker answers "unstable" while one is pending, and librdkafka asks
    /// again). `None` means the group never committed one for the partition.
    fn stable_committed_offsets<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<HashMap<(Source, i32), Option<i64>>, SessionEnd> {
        let started = Instant::now();
        let mut warned = false;
        loop {
            let mut query = TopicPartitionList::new();
            for e in tpl.elements() {
                query.add_partition(e.topic(), e.partition());
            }
            let problem = match consumer.committed_offsets(query, Duration::from_secs(10)) {
                Ok(result) => {
                    let failed: Vec<String> = result
                        .elements()
                        .iter()
                        .filter_map(|e| {
                            e.error()
                                .err()
                                .map(|err| format!("{}[{}]: {err}", e.topic(), e.partition()))
                        })
                        .collect();
                    if failed.is_empty() {
                        return Ok(result
                            .elements()
                            .iter()
                            .filter_map(|e| {
                                let source = self.classify(e.topic())?;
                                let offset = match e.offset() {
                                    Offset::Offset(o) => Some(o),
                                    _ => None,
                                };
                                Some(((source, e.partition()), offset))
                            })
                            .collect());
                    }
                    failed.join(", ")
                }
                Err(e) => e.to_string(),
            };
            if self.shared.shutdown_requested() {
                return Err(SessionEnd::ShuttingDown);
            }
            if started.elapsed() > STABLE_OFFSETS_WAIT {
                return Err(SessionEnd::UnstableOffsets {
                    waited: STABLE_OFFSETS_WAIT,
                    problem,
                });
            }
            if !warned && started.elapsed() > Duration::from_secs(2) {
                tracing::warn!(
                    %problem,
                    "waiting for stable committed offsets (a previous owner's transaction may still be open)"
                );
                warned = true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Partitions leaving this worker: commit everything first (so the next
    /// owner starts exactly where this one stopped), then close their stores.
    pub fn on_revoke<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        let m = &self.shared.metrics;
        m.rebalances.get_or_create(&m.kind("revoke")).inc();
        self.commit(consumer);
        self.release(tpl);
        tracing::info!(revoked = ?partition_names(tpl), "partitions revoked");
    }

    /// Partitions taken away without a revoke (session timeout, fenced
    /// member): another worker may own them already, so nothing uncommitted
    /// may be committed. The work of the partitions kept is redone too.
    pub fn on_lost<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        let m = &self.shared.metrics;
        m.rebalances.get_or_create(&m.kind("lost")).inc();
        tracing::warn!(lost = ?partition_names(tpl), "partitions lost; discarding uncommitted work");
        self.collect_commit(consumer, true);
        if let Some(Err(e)) = self.sink.as_mut().map(|s| s.abort()) {
            self.set_broken(SessionEnd::LostAbortFailed(e));
        }
        self.release(tpl);
        if self.broken.is_none() {
            self.rewind_to_last_commit(consumer);
        }
    }

    fn release(&mut self, tpl: &TopicPartitionList) {
        for e in tpl.elements() {
            let p = e.partition();
            match self.classify(e.topic()) {
                Some(Source::Input) => {
                    self.inputs.remove(&p);
                }
                Some(Source::Repartition) => {
                    if let Some(task) = self.tasks.remove(&p) {
                        self.shared.slot_mut(self.slot).partitions.remove(&p);
                        task.close(p);
                    }
                }
                None => {}
            }
        }
        self.status_changed = true;
        self.shared.slot_mut(self.slot).joined = true;
        self.publish_status();
    }
}
