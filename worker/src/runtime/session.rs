//! The imperative shell around the engine: one consumer session (producer,
//! group consumer, poll loop) and the supervisor that restarts sessions
//! after failures without ever crashing the process.

use crate::commit::sink::{Sink, SinkError};
use crate::config::Settings;
use crate::count::store::StoreResources;
use crate::engine::{Engine, SessionEnd};
use crate::kafka::{self, KafkaSetupError};
use crate::runtime::metrics::TopicPartitionLabel;
use crate::runtime::state::Shared;
use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Setup(#[from] KafkaSetupError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("consumer: {0}")]
    Consumer(KafkaError),
    #[error(transparent)]
    Ended(Box<SessionEnd>),
    #[error(
        "fenced right after this member's session timed out and it rejoined (librdkafka's own \
         rejoin under the same instance id, not another process): {0}"
    )]
    FencedByOwnRejoin(Box<SessionError>),
}

/// How long after losing its assignment (a session time-out, e.g. while the
/// broker restarts) a fence is taken for this member's own rejoin.
const OWN_REJOIN_WINDOW: Duration = Duration::from_secs(60);

impl SessionError {
    /// Another process joined the group with this worker's instance id (a
    /// replacement of a hung worker, or two workers configured alike): this
    /// one must stop rather than take the id back, or the two would fence
    /// each other forever.
    pub fn fenced_by_another_instance(&self) -> bool {
        match self {
            SessionError::Consumer(e) => e.rdkafka_error_code() == Some(RDKafkaErrorCode::FencedInstanceId),
            SessionError::Sink(e) => e.fenced_by_another_instance(),
            SessionError::Ended(e) => e.fenced_by_another_instance(),
            SessionError::Setup(_) | SessionError::FencedByOwnRejoin(_) => false,
        }
    }

    /// A fence soon after this session lost its assignment (`lost_at`) is
    /// most likely its own doing: librdkafka rejoins under the same instance
    /// id with a new member id, and a request still carrying the old one is
    /// answered "fenced". Such a session is restarted like any failed one;
    /// only a fence out of the blue means another process.
    pub fn judged_after_loss(self, lost_at: Option<Instant>, now: Instant) -> Self {
        let lost_recently = lost_at.is_some_and(|t| now.saturating_duration_since(t) < OWN_REJOIN_WINDOW);
        if lost_recently && self.fenced_by_another_instance() {
            SessionError::FencedByOwnRejoin(Box::new(self))
        } else {
            self
        }
    }
}

/// Consumer callbacks: rebalances go to the engine (which commits before
/// giving partitions up), statistics feed the lag gauges.
pub struct SessionContext {
    engine: Mutex<Engine>,
    shared: Arc<Shared>,
    lag: Mutex<BTreeMap<(String, i32), i64>>,
    slot: usize,
    /// When the group last took this session's partitions as lost.
    lost_at: Mutex<Option<Instant>>,
}

impl SessionContext {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for SessionContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
        }
    }

    fn stats(&self, stats: Statistics) {
        let m = &self.shared.metrics;
        let mut lag = self.lag.lock().unwrap_or_else(|e| e.into_inner());
        // Only this session's partitions: the others report their own.
        for (topic, partition) in lag.keys() {
            m.consumer_lag_records.remove(&TopicPartitionLabel {
                topic: topic.clone(),
                partition: partition.to_string(),
            });
        }
        lag.clear();
        for (topic, t) in &stats.topics {
            for (&partition, p) in &t.partitions {
                if partition < 0 || p.app_offset < 0 || p.ls_offset < 0 {
                    continue;
                }
                let records = (p.ls_offset - p.app_offset).max(0);
                lag.insert((topic.clone(), partition), records);
                m.consumer_lag_records
                    .get_or_create(&TopicPartitionLabel {
                        topic: topic.clone(),
                        partition: partition.to_string(),
                    })
                    .set(records);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "consumer error");
    }
}

impl ConsumerContext for SessionContext {
    /// Replaces rdkafka's default so the engine can set every assigned
    /// partition's start offset before the assignment takes effect.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.engine().on_assign(consumer, tpl);
                let assigned = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                self.engine().after_assign(consumer, tpl);
                assigned
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                {
                    let mut engine = self.engine();
                    if consumer.assignment_lost() {
                        *self.lost_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                        engine.on_lost(consumer, tpl);
                    } else {
                        engine.on_revoke(consumer, tpl);
                    }
                }
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error");
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "applying the rebalance failed");
            self.engine().fail(SessionEnd::Consumer {
                action: "apply a rebalance",
                source: e,
            });
        }
    }
}

/// Runs the process's consumer sessions (`threads` of them, each on its own
/// thread) until shutdown is requested; the stores share one memory budget.
pub fn run_all(settings: Arc<Settings>, shared: Arc<Shared>) {
    let resources = StoreResources::default();
    let sessions: Vec<_> = (0..settings.threads.max(1))
        .map(|slot| {
            let (settings, shared, resources) = (
                Arc::new(settings.for_slot(slot)),
                shared.clone(),
                resources.clone(),
            );
            std::thread::Builder::new()
                .name(format!("session-{slot}"))
                .spawn(move || run(settings, shared, slot as usize, resources))
                .expect("spawning a session thread")
        })
        .collect();
    for s in sessions {
        let _ = s.join();
    }
    tracing::info!("worker stopped");
}

/// Runs sessions of consumer slot `slot` until shutdown is requested.
/// Failures are logged, shown in readiness, and followed by a new session
/// after a backoff.
pub fn run(settings: Arc<Settings>, shared: Arc<Shared>, slot: usize, resources: StoreResources) {
    // Every line of this session (its rebalance callbacks too) names its member.
    let _span = tracing::info_span!("session", member = %settings.instance_id).entered();
    let mut backoff = Duration::from_millis(500);
    while !shared.shutdown_requested() {
        let started = Instant::now();
        match run_session(&settings, &shared, slot, &resources) {
            Ok(()) => break,
            Err(e) if e.fenced_by_another_instance() => {
                tracing::error!(
                    error = %e,
                    instance = %settings.instance_id,
                    "another process joined the group with this instance id; stopping (only one worker may use it)"
                );
                shared.set_problem(
                    slot,
                    Some(format!(
                        "fenced: another process uses instance id {}",
                        settings.instance_id
                    )),
                );
                shared.fail_process();
                break;
            }
            Err(e) => {
                tracing::error!(error = %e, "session ended; starting a new one in {backoff:?}");
                shared.set_problem(slot, Some(e.to_string()));
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_millis(500);
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until && !shared.shutdown_requested() {
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

fn run_session(
    settings: &Arc<Settings>,
    shared: &Arc<Shared>,
    slot: usize,
    resources: &StoreResources,
) -> Result<(), SessionError> {
    let base = kafka::base_config(settings)?;
    kafka::ensure_topics(&base, settings)?;
    let sink = Sink::new(
        &kafka::producer_config(&base, settings),
        settings.exactly_once(),
        &settings.changelog_topic,
    )?;
    let engine = Engine::new(
        settings.clone(),
        shared.clone(),
        sink,
        base.clone(),
        resources.clone(),
        slot,
    );
    let context = SessionContext {
        engine: Mutex::new(engine),
        shared: shared.clone(),
        lag: Mutex::default(),
        slot,
        lost_at: Mutex::default(),
    };
    let consumer: BaseConsumer<SessionContext> = kafka::consumer_config(&base, settings)
        .create_with_context(context)
        .map_err(SessionError::Consumer)?;
    consumer
        .subscribe(&[&settings.input_topic, &settings.repartition_topic])
        .map_err(SessionError::Consumer)?;
    shared.set_problem(slot, None);
    tracing::info!(
        instance = %settings.instance_id,
        group = %settings.worker.application_id,
        input = %settings.input_topic,
        "session started"
    );
    let lost_at = || {
        *consumer
            .context()
            .lost_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    };
    let result = poll_loop(&consumer, shared).map_err(|e| e.judged_after_loss(lost_at(), Instant::now()));
    let engine = || consumer.context().engine();
    if result.is_ok() {
        // Warm shutdown: commit the in-flight batch before leaving, within
        // most of the shutdown timeout (the rest is for closing).
        let deadline = Instant::now() + settings.shutdown_timeout.mul_f64(0.6);
        engine().prepare_shutdown(&consumer, deadline);
        engine().commit(&consumer);
        if let Some(b) = engine().broken() {
            tracing::error!(
                error = %b,
                "final commit failed; its transaction is aborted by the broker or the next instance"
            );
        }
    }
    engine().close_all(&consumer);
    let closing = Instant::now();
    drop(consumer);
    tracing::info!(close_ms = closing.elapsed().as_millis() as u64, "left the group");
    result
}

fn poll_loop(consumer: &BaseConsumer<SessionContext>, shared: &Shared) -> Result<(), SessionError> {
    let context = consumer.context();
    loop {
        if shared.shutdown_requested() {
            tracing::info!("shutdown requested: committing and leaving");
            return Ok(());
        }
        // Process everything that is already fetched, then do housekeeping
        // again: soon when a commit runs, to start the next one when it ends,
        // and when the next commit is due, so a quiet stream waits no longer.
        let mut timeout = {
            let mut engine = context.engine();
            if let Some(reason) = engine.take_broken() {
                return Err(SessionError::Ended(Box::new(reason)));
            }
            engine.housekeeping(consumer);
            if shared.take_dump_request(context.slot) {
                let lag = context.lag.lock().unwrap_or_else(|e| e.into_inner()).clone();
                engine.dump(&lag);
            }
            if engine.committing() {
                Duration::from_millis(2)
            } else {
                engine.until_commit_due().min(Duration::from_millis(50))
            }
        };
        for _ in 0..10_000 {
            match consumer.poll(timeout) {
                Some(Ok(m)) => {
                    let mut engine = context.engine();
                    engine.process(&m);
                    if engine.commit_due() {
                        engine.commit_if_due(consumer);
                    }
                }
                Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                    return Err(SessionError::Consumer(KafkaError::MessageConsumptionFatal(code)));
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error");
                    break;
                }
                None => break,
            }
            timeout = Duration::ZERO;
        }
    }
}

/// Client settings for the owner lookups of the HTTP API (outside the group).
pub fn lookup_config(settings: &Settings) -> Result<ClientConfig, KafkaSetupError> {
    Ok(kafka::plain_consumer_config(&kafka::base_config(settings)?, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fenced() -> SessionError {
        SessionError::Consumer(KafkaError::MessageConsumptionFatal(
            RDKafkaErrorCode::FencedInstanceId,
        ))
    }

    #[test]
    fn a_fence_soon_after_losing_the_assignment_is_the_members_own_rejoin() {
        let now = Instant::now() + Duration::from_secs(600);
        let own = fenced().judged_after_loss(Some(now - Duration::from_secs(20)), now);
        assert!(matches!(own, SessionError::FencedByOwnRejoin(_)));
        assert!(!own.fenced_by_another_instance());
        // Out of the blue, or long after a loss: another process.
        assert!(fenced().judged_after_loss(None, now).fenced_by_another_instance());
        assert!(
            fenced()
                .judged_after_loss(Some(now - Duration::from_secs(120)), now)
                .fenced_by_another_instance()
        );
        // Other errors stay what they are.
        let other = SessionError::Consumer(KafkaError::MessageConsumptionFatal(
            RDKafkaErrorCode::BrokerTransportFailure,
        ))
        .judged_after_loss(Some(now), now);
        assert!(matches!(other, SessionError::Consumer(_)));
    }
}
