//! The loops behind `videocounter-loadgen`: generate a plan's traffic for a
//! while, or replay a file at a fixed rate, producing straight to Kafka and
//! counting what Kafka acknowledged.

use super::replay::{ReplayItem, due_by};
use super::schedule::Arrivals;
use super::traffic::TrafficPlan;
use crate::ingest::Like;
use crate::ingest::producer::LikeProducer;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::producer::DeliveryFuture;
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TICK: Duration = Duration::from_millis(10);
/// Below librdkafka's queue (100,000 messages), so a saturated broker slows the
/// generator down (arrivals are skipped and counted) instead of failing sends.
const MAX_IN_FLIGHT: usize = 50_000;

#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// Likes Kafka acknowledged (records, in the `raw` format).
    pub acknowledged: u64,
    pub failed: u64,
    /// Arrivals dropped because sending fell behind, or invalid lines skipped.
    pub skipped: u64,
    pub elapsed_secs: f64,
    pub acknowledged_per_sec: f64,
    /// The first delivery error, to say why likes failed.
    pub first_error: Option<String>,
}

/// Delivery futures and their tally.
struct Tally {
    in_flight: FuturesUnordered<DeliveryFuture>,
    report: LoadReport,
}

impl Tally {
    fn new() -> Self {
        Self {
            in_flight: FuturesUnordered::new(),
            report: LoadReport::default(),
        }
    }

    fn send(&mut self, producer: &LikeProducer, like: &Like) {
        match producer.enqueue(like, crate::clock::now_ms()) {
            Ok(futures) => self.in_flight.extend(futures),
            Err(e) => self.fail(e.to_string()),
        }
    }

    fn fail(&mut self, why: String) {
        self.report.failed += 1;
        self.report.first_error.get_or_insert(why);
    }

    fn settle(&mut self, outcome: Option<<DeliveryFuture as std::future::Future>::Output>) {
        match outcome {
            Some(Ok(Ok(_))) => self.report.acknowledged += 1,
            Some(Ok(Err((e, _)))) => self.fail(e.to_string()),
            Some(Err(_)) => self.fail("the producer dropped the record".into()),
            None => {}
        }
    }

    /// Collects finished deliveries without waiting; waits while too many are pending.
    async fn collect(&mut self) {
        while let Some(Some(outcome)) = futures::FutureExt::now_or_never(self.in_flight.next()) {
            self.settle(Some(outcome));
        }
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            let next = self.in_flight.next().await;
            self.settle(next);
        }
    }

    async fn finish(mut self, started: Instant) -> LoadReport {
        while let Some(outcome) = self.in_flight.next().await {
            self.settle(Some(outcome));
        }
        let elapsed = started.elapsed().as_secs_f64();
        self.report.elapsed_secs = elapsed;
        self.report.acknowledged_per_sec = self.report.acknowledged as f64 / elapsed.max(1e-9);
        self.report
    }
}

/// Sends the plan's Poisson traffic until `duration` passes (or forever) or `stop`.
pub async fn generate(
    producer: &LikeProducer,
    plan: &TrafficPlan,
    duration: Option<Duration>,
    seed: u64,
    stop: CancellationToken,
) -> LoadReport {
    let mut arrivals = Arrivals::new(seed);
    let mut tally = Tally::new();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let elapsed = started.elapsed();
        if duration.is_some_and(|d| elapsed >= d) {
            break;
        }
        let room = MAX_IN_FLIGHT.saturating_sub(tally.in_flight.len());
        for video in arrivals.due(plan, elapsed.as_secs_f64(), room) {
            tally.send(producer, &Like::one(video));
        }
        tally.collect().await;
    }
    tally.report.skipped = arrivals.skipped;
    tally.finish(started).await
}

/// Replays `events` at `rate_per_sec`. The file's timestamps are kept when
/// `keep_timestamps`, else each like is stamped when sent. Stops at the first
/// invalid line unless `skip_invalid`.
pub async fn replay(
    producer: &LikeProducer,
    events: impl Iterator<Item = ReplayItem>,
    rate_per_sec: f64,
    keep_timestamps: bool,
    skip_invalid: bool,
    stop: CancellationToken,
) -> Result<LoadReport, String> {
    let mut events = events.peekable();
    let mut tally = Tally::new();
    let mut sent: u64 = 0;
    let started = Instant::now();
    let mut ticker = tokio::time::interval(TICK);
    while events.peek().is_some() {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let due = due_by(rate_per_sec, started.elapsed().as_secs_f64());
        while sent < due {
            let Some((line, item)) = events.next() else { break };
            match item {
                Ok(mut like) => {
                    if !keep_timestamps {
                        like.ts = None;
                    }
                    tally.send(producer, &like);
                    sent += 1;
                }
                Err(why) if skip_invalid => {
                    tracing::warn!(line, %why, "skipping an invalid event");
                    tally.report.skipped += 1;
                }
                Err(why) => {
                    tally.finish(started).await;
                    return Err(format!("line {line}: {why}"));
                }
            }
        }
        tally.collect().await;
    }
    Ok(tally.finish(started).await)
}
