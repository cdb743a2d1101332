//! The generator inside the gateway, driven by the dashboard: holds the
//! current spec, starts and stops, and sends due likes through the
//! gateway's producer on a short tick. The CLI (`videocounter-loadgen`)
//! runs the same `Arrivals` clock with its own loop.

use super::schedule::Arrivals;
use super::traffic::{TrafficPlan, TrafficSpec};
use crate::error::GatewayError;
use crate::ingest::Like;
use crate::ingest::producer::LikeProducer;
use crate::metrics::Metrics;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TICK: Duration = Duration::from_millis(20);
/// Records awaiting Kafka's acknowledgement before the generator pauses sending.
const MAX_IN_FLIGHT: usize = 50_000;

#[derive(Debug, Clone, Serialize)]
pub struct GeneratorStatus {
    pub running: bool,
    pub spec: TrafficSpec,
    /// Sum of all rates, likes per minute.
    pub total_per_minute: f64,
    pub videos: usize,
    /// Likes Kafka acknowledged since the gateway started.
    pub sent: u64,
    /// Likes Kafka did not take (unreachable broker, full queue).
    pub failed: u64,
    /// Likes skipped because sending fell behind schedule.
    pub skipped: u64,
}

struct State {
    spec: TrafficSpec,
    plan: TrafficPlan,
    running: bool,
    /// Bumped on every change, so the loop restarts its arrival clock.
    version: u64,
    sent: u64,
    failed: u64,
    skipped: u64,
}

#[derive(Clone)]
pub struct Generator {
    state: Arc<Mutex<State>>,
}

impl Generator {
    pub fn new(spec: TrafficSpec, running: bool) -> Result<Self, GatewayError> {
        let plan = spec.plan().map_err(GatewayError::InvalidTraffic)?;
        Ok(Self {
            state: Arc::new(Mutex::new(State {
                spec,
                plan,
                running,
                version: 0,
                sent: 0,
                failed: 0,
                skipped: 0,
            })),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_spec(&self, spec: TrafficSpec) -> Result<GeneratorStatus, GatewayError> {
        let plan = spec.plan().map_err(GatewayError::InvalidTraffic)?;
        let mut s = self.lock();
        s.spec = spec;
        s.plan = plan;
        s.version += 1;
        drop(s);
        Ok(self.status())
    }

    pub fn set_running(&self, running: bool) -> GeneratorStatus {
        let mut s = self.lock();
        s.running = running;
        s.version += 1;
        drop(s);
        self.status()
    }

    pub fn status(&self) -> GeneratorStatus {
        let s = self.lock();
        GeneratorStatus {
            running: s.running,
            spec: s.spec.clone(),
            total_per_minute: s.plan.total_per_sec * 60.0,
            videos: s.plan.videos.len(),
            sent: s.sent,
            failed: s.failed,
            skipped: s.skipped,
        }
    }

    /// Runs until `shutdown`, sending due likes whenever the generator is on.
    pub fn spawn(
        &self,
        producer: Arc<LikeProducer>,
        metrics: Arc<Metrics>,
        seed: u64,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let generator = self.clone();
        tokio::spawn(async move { generator.run(producer, metrics, seed, shutdown).await })
    }

    async fn run(
        &self,
        producer: Arc<LikeProducer>,
        metrics: Arc<Metrics>,
        seed: u64,
        shutdown: CancellationToken,
    ) {
        let mut arrivals = Arrivals::new(seed);
        let mut seen_version = u64::MAX;
        let mut started = Instant::now();
        let mut in_flight = FuturesUnordered::new();
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(outcome) = in_flight.next(), if !in_flight.is_empty() => {
                    let ok = matches!(outcome, Ok(Ok(_)));
                    self.record(ok, &metrics);
                }
                _ = ticker.tick() => {
                    let due: Vec<String> = {
                        let mut s = self.lock();
                        if s.version != seen_version {
                            seen_version = s.version;
                            arrivals.restart();
                            started = Instant::now();
                        }
                        if !s.running || in_flight.len() >= MAX_IN_FLIGHT {
                            continue;
                        }
                        let room = MAX_IN_FLIGHT - in_flight.len();
                        let before = arrivals.skipped;
                        let due = arrivals
                            .due(&s.plan, started.elapsed().as_secs_f64(), room)
                            .into_iter()
                            .map(str::to_owned)
                            .collect();
                        s.skipped += arrivals.skipped - before;
                        due
                    };
                    let now = crate::clock::now_ms();
                    for video in due {
                        match producer.enqueue(&Like::one(video), now) {
                            Ok(futures) => in_flight.extend(futures),
                            Err(_) => self.record(false, &metrics),
                        }
                    }
                }
            }
        }
    }

    fn record(&self, ok: bool, metrics: &Metrics) {
        let mut s = self.lock();
        if ok {
            s.sent += 1;
            metrics
                .generated_likes
                .get_or_create(&crate::metrics::Outcome::sent())
                .inc();
        } else {
            s.failed += 1;
            metrics
                .generated_likes
                .get_or_create(&crate::metrics::Outcome::failed())
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn rejects_a_bad_spec_and_keeps_the_old_one() {
        let good = TrafficSpec::PerVideo {
            rates: BTreeMap::from([("a".into(), 30.0)]),
        };
        let g = Generator::new(good.clone(), false).unwrap();
        let bad = TrafficSpec::PerVideo {
            rates: BTreeMap::from([("a".into(), f64::NAN)]),
        };
        assert!(matches!(g.set_spec(bad), Err(GatewayError::InvalidTraffic(_))));
        let status = g.status();
        assert_eq!(status.spec, good);
        assert_eq!(status.total_per_minute, 30.0);
        assert!(!status.running);
        assert!(g.set_running(true).running);
    }
}
