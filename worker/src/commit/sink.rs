//! The worker's one producer. In exactly-once mode every commit is one Kafka
//! transaction holding the repartition records, dead letters, changelog and
//! output records and the consumed offsets (KIP-447: the offsets carry the
//! consumer's group metadata, so a zombie's commit is fenced). In
//! at-least-once mode the records are flushed, then the offsets committed.

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{step}: {source}")]
    Kafka { step: &'static str, source: KafkaError },
    #[error("a record could not be delivered: {0}")]
    Delivery(String),
    #[error("the consumer has no group metadata (not in a group)")]
    NoGroupMetadata,
}

impl SinkError {
    /// Whether another process with this worker's instance id (and so its
    /// transactional id) took over: the producer is fenced for good.
    pub fn fenced_by_another_instance(&self) -> bool {
        match self {
            SinkError::Kafka { source, .. } => matches!(
                source.rdkafka_error_code(),
                Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::FencedInstanceId)
            ),
            _ => false,
        }
    }

    /// Whether the producer itself is unusable (fenced by a newer instance of
    /// this worker, or a fatal idempotence error): only a new session helps.
    /// Every other failure just aborts the transaction.
    pub fn is_fatal(&self) -> bool {
        match self {
            SinkError::Kafka {
                source: KafkaError::Transaction(e),
                ..
            } => e.is_fatal(),
            _ => false,
        }
    }
}

/// Delivery reports: the highest changelog offset written per partition (the
/// stores' next checkpoint) and the first failure, if any.
pub struct SinkContext {
    changelog_topic: String,
    changelog_offsets: Mutex<HashMap<i32, i64>>,
    failure: Mutex<Option<String>>,
}

impl ClientContext for SinkContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "producer error");
    }
}

/// A record's delivery opaque: whether it went to the changelog (so a
/// delivery report need not read its topic's name back from librdkafka).
const TO_CHANGELOG: usize = 1;

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, kind: usize) {
        match result {
            Ok(m) => {
                if kind == TO_CHANGELOG {
                    let mut offsets = self.changelog_offsets.lock().unwrap_or_else(|e| e.into_inner());
                    let slot = offsets.entry(m.partition()).or_insert(m.offset());
                    *slot = (*slot).max(m.offset());
                }
            }
            Err((e, m)) => {
                let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
                failure.get_or_insert_with(|| format!("{}[{}]: {e}", m.topic(), m.partition()));
            }
        }
    }
}

/// One record to produce.
pub struct Record<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub timestamp: Option<i64>,
    pub headers: Option<OwnedHeaders>,
}

pub struct Sink {
    producer: BaseProducer<SinkContext>,
    transactional: bool,
    initialized: bool,
    in_transaction: bool,
    /// During a warm shutdown: no call may wait past this.
    deadline: Option<Instant>,
}

const TXN_TIMEOUT: Duration = Duration::from_secs(60);

impl Sink {
    pub fn new(config: &ClientConfig, transactional: bool, changelog_topic: &str) -> Result<Self, SinkError> {
        let context = SinkContext {
            changelog_topic: changelog_topic.to_owned(),
            changelog_offsets: Mutex::default(),
            failure: Mutex::default(),
        };
        let producer = config
            .create_with_context(context)
            .map_err(|source| SinkError::Kafka {
                step: "creating the producer",
                source,
            })?;
        Ok(Self {
            producer,
            transactional,
            initialized: false,
            in_transaction: false,
            deadline: None,
        })
    }

    /// Bounds every later call by `deadline` (a warm shutdown's).
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    /// How long the next call may wait.
    fn timeout(&self) -> Duration {
        match self.deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(TXN_TIMEOUT),
            None => TXN_TIMEOUT,
        }
    }

    /// Registers the transactional id, fencing any previous instance of this
    /// worker and aborting its open transaction. Called once the consumer is in
    /// the group: a process that cannot join (its instance id is still held by
    /// another one) must not fence the producer of the one that did.
    pub fn init(&mut self) -> Result<(), SinkError> {
        if self.transactional && !self.initialized {
            self.producer
                .init_transactions(self.timeout())
                .map_err(|source| SinkError::Kafka {
                    step: "initializing transactions",
                    source,
                })?;
        }
        self.initialized = true;
        Ok(())
    }

    pub fn begin(&mut self) -> Result<(), SinkError> {
        self.producer
            .context()
            .changelog_offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        *self
            .producer
            .context()
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        if self.transactional {
            self.producer
                .begin_transaction()
                .map_err(|source| SinkError::Kafka {
                    step: "beginning a transaction",
                    source,
                })?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Enqueues a record, waiting while the local queue is full.
    pub fn send(&self, r: Record<'_>) -> Result<(), SinkError> {
        let kind = usize::from(r.topic == self.producer.context().changelog_topic);
        let mut record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(r.topic, kind);
        record.partition = r.partition;
        record.key = r.key;
        record.payload = r.value;
        record.timestamp = r.timestamp;
        record.headers = r.headers;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((source, _)) => {
                    return Err(SinkError::Kafka {
                        step: "producing a record",
                        source,
                    });
                }
            }
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.transactional
    }

    /// Exactly-once: commits the transaction begun by `begin`, with the
    /// consumed `offsets` and the consumer's group `metadata` (KIP-447).
    /// Needs no consumer, so it can run beside the poll loop. Returns the
    /// highest changelog offset written per partition.
    pub fn commit_transaction_with(
        &mut self,
        offsets: &TopicPartitionList,
        metadata: Option<&ConsumerGroupMetadata>,
    ) -> Result<HashMap<i32, i64>, SinkError> {
        let started = Instant::now();
        // The records first, then the offsets: right after the previous
        // commit the coordinators are still finishing it, and an offset commit
        // they answer with "concurrent transactions" is retried only after
        // librdkafka's fixed 500 ms. While the records are delivered they finish.
        self.deliver_all()?;
        let delivered = started.elapsed();
        if offsets.count() > 0 {
            let metadata = metadata.ok_or(SinkError::NoGroupMetadata)?;
            self.producer
                .send_offsets_to_transaction(offsets, metadata, self.timeout())
                .map_err(|source| SinkError::Kafka {
                    step: "adding offsets to the transaction",
                    source,
                })?;
        }
        let offsets_sent = started.elapsed();
        self.commit_transaction()?;
        tracing::debug!(
            deliver_ms = delivered.as_secs_f64() * 1e3,
            send_offsets_ms = (offsets_sent - delivered).as_secs_f64() * 1e3,
            end_transaction_ms = (started.elapsed() - offsets_sent).as_secs_f64() * 1e3,
            "transaction"
        );
        self.delivery_failure()?;
        Ok(self.take_changelog_offsets())
    }

    /// At-least-once: flushes what was sent, then commits the offsets.
    pub fn flush_and_commit<C: ConsumerContext>(
        &mut self,
        offsets: &TopicPartitionList,
        consumer: &BaseConsumer<C>,
    ) -> Result<HashMap<i32, i64>, SinkError> {
        self.deliver_all()?;
        self.delivery_failure()?;
        if offsets.count() > 0 {
            consumer
                .commit(offsets, CommitMode::Sync)
                .map_err(|source| SinkError::Kafka {
                    step: "committing offsets",
                    source,
                })?;
        }
        Ok(self.take_changelog_offsets())
    }

    /// Waits until every record sent is delivered (its report served).
    /// rdkafka's own `flush`, which `commit_transaction` starts with, sleeps in
    /// steps of 100 ms while anything is outstanding: that step alone was most
    /// of a commit. After this its flush finds nothing left.
    fn deliver_all(&self) -> Result<(), SinkError> {
        let deadline = Instant::now() + self.timeout();
        // Sends what lingers at once (the time-out it reports is expected).
        let _ = self.producer.flush(Duration::ZERO);
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(SinkError::Kafka {
                    step: "delivering the records",
                    source: KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut),
                });
            }
            self.producer.poll(Duration::from_millis(1));
        }
        Ok(())
    }

    fn take_changelog_offsets(&self) -> HashMap<i32, i64> {
        std::mem::take(
            &mut *self
                .producer
                .context()
                .changelog_offsets
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    fn commit_transaction(&mut self) -> Result<(), SinkError> {
        let deadline = Instant::now() + self.timeout();
        loop {
            match self.producer.commit_transaction(self.timeout()) {
                Ok(()) => {
                    self.in_transaction = false;
                    return Ok(());
                }
                Err(KafkaError::Transaction(e)) if e.is_retriable() && Instant::now() < deadline => {
                    tracing::warn!(error = %e, "transaction commit failed with a retriable error; retrying");
                }
                Err(source) => {
                    return Err(SinkError::Kafka {
                        step: "committing the transaction",
                        source,
                    });
                }
            }
        }
    }

    fn delivery_failure(&self) -> Result<(), SinkError> {
        match self
            .producer
            .context()
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(f) => Err(SinkError::Delivery(f)),
            None => Ok(()),
        }
    }

    /// Records waiting in the producer's queue or in flight.
    pub fn queued(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Abandons the open transaction, if any; its records are never seen by
    /// read_committed consumers. An error means the outcome is unknown (the
    /// commit may have gone through): only a new session, which derives its
    /// state from what Kafka holds, can continue safely.
    pub fn abort(&mut self) -> Result<(), SinkError> {
        if self.transactional && self.in_transaction {
            self.in_transaction = false;
            // librdkafka's abort drops the transaction's queued records and
            // waits for every delivery report, which only a poll serves: a
            // commit that failed with thousands of records still queued (a
            // stale generation in a rebalance) made the abort wait its whole
            // time-out, with the session's rebalance stuck behind it. So a
            // second thread serves the reports while the abort runs.
            let timeout = self.timeout();
            let aborting = AtomicBool::new(true);
            let producer = &self.producer;
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    while aborting.load(Ordering::Relaxed) {
                        producer.poll(Duration::from_millis(5));
                    }
                });
                let result = producer.abort_transaction(timeout);
                aborting.store(false, Ordering::Relaxed);
                result
            })
            .map_err(|source| SinkError::Kafka {
                step: "aborting the transaction",
                source,
            })?;
        }
        Ok(())
    }
}
