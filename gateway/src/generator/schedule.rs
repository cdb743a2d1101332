//! When likes are due: a seeded Poisson arrival clock over a `TrafficPlan`.
//! The caller asks, at each tick, which arrivals fell before "now"; the
//! clock itself never sleeps, so it is tested without real time.

use super::sampler::exponential_gap;
use super::traffic::TrafficPlan;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How far behind schedule the clock may fall before it skips ahead (when
/// the producer cannot keep up, it sends as fast as it can, not a burst later).
pub const MAX_BACKLOG_SECS: f64 = 1.0;

#[derive(Debug)]
pub struct Arrivals {
    rng: StdRng,
    /// Seconds since start of the next arrival; `None` until the first tick.
    next_at: Option<f64>,
    /// Arrivals skipped because the sender fell more than `MAX_BACKLOG_SECS` behind.
    pub skipped: u64,
}

impl Arrivals {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            next_at: None,
            skipped: 0,
        }
    }

    /// Forget the pending arrival, for a plan whose rate changed. Exponential
    /// gaps are memoryless, so redrawing from now is exact.
    pub fn restart(&mut self) {
        self.next_at = None;
    }

    /// Videos whose likes are due at or before `now` (seconds since start),
    /// at most `max` of them, in arrival order.
    pub fn due<'p>(&mut self, plan: &'p TrafficPlan, now: f64, max: usize) -> Vec<&'p str> {
        if plan.is_idle() {
            self.next_at = None;
            return Vec::new();
        }
        let rate = plan.total_per_sec;
        let mut next = match self.next_at {
            Some(t) => t,
            None => now + exponential_gap(rate, self.rng.random()),
        };
        if now - next > MAX_BACKLOG_SECS {
            // Count what is dropped: the expected number of arrivals in the gap.
            self.skipped += ((now - next) * rate) as u64;
            next = now;
        }
        let mut out = Vec::new();
        while next <= now && out.len() < max {
            if let Some(video) = plan.pick(self.rng.random()) {
                out.push(video);
            }
            next += exponential_gap(rate, self.rng.random());
        }
        self.next_at = Some(next);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::traffic::{Distribution, TrafficSpec};
    use std::collections::{BTreeMap, HashMap};

    fn plan(rates: &[(&str, f64)]) -> TrafficPlan {
        TrafficSpec::PerVideo {
            rates: rates
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<BTreeMap<_, _>>(),
        }
        .plan()
        .unwrap()
    }

    /// Ticks every 10 ms for `secs` seconds and counts arrivals per video.
    fn run(arrivals: &mut Arrivals, plan: &TrafficPlan, secs: f64) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        let mut t = 0.0;
        while t < secs {
            t += 0.01;
            for v in arrivals.due(plan, t, usize::MAX) {
                *counts.entry(v.to_owned()).or_default() += 1;
            }
        }
        counts
    }

    #[test]
    fn long_run_rates_match_the_per_video_rates() {
        // 600 and 1200 likes per minute for 10 minutes: about 6000 and 12000.
        let p = plan(&[("a", 600.0), ("b", 1200.0)]);
        let counts = run(&mut Arrivals::new(3), &p, 600.0);
        let (a, b) = (counts["a"] as f64, counts["b"] as f64);
        assert!((a - 6000.0).abs() < 6000.0 * 0.04, "a = {a}");
        assert!((b - 12000.0).abs() < 12000.0 * 0.04, "b = {b}");
    }

    #[test]
    fn same_seed_same_arrivals() {
        let p = plan(&[("a", 600.0), ("b", 60.0)]);
        let first = run(&mut Arrivals::new(9), &p, 30.0);
        let second = run(&mut Arrivals::new(9), &p, 30.0);
        assert_eq!(first, second);
    }

    #[test]
    fn idle_plan_sends_nothing() {
        let p = plan(&[("a", 0.0)]);
        assert!(run(&mut Arrivals::new(1), &p, 10.0).is_empty());
    }

    #[test]
    fn a_stalled_sender_skips_ahead_instead_of_bursting() {
        let p = TrafficSpec::Spread {
            videos: 10,
            rate_per_minute: 600.0,
            distribution: Distribution::Uniform,
            zipf_s: 1.1,
            prefix: "v".into(),
        }
        .plan()
        .unwrap();
        let mut arrivals = Arrivals::new(5);
        assert!(arrivals.due(&p, 0.0, usize::MAX).len() < 10);
        // 100/s; the sender comes back after 60 s: at most about one second's worth is sent.
        let burst = arrivals.due(&p, 60.0, usize::MAX).len();
        assert!(burst < 200, "burst of {burst}");
        assert!(arrivals.skipped > 5_000, "skipped {}", arrivals.skipped);
    }

    #[test]
    fn max_bounds_one_call() {
        let p = plan(&[("a", 60_000.0)]);
        let mut arrivals = Arrivals::new(5);
        arrivals.due(&p, 0.0, 10);
        assert_eq!(arrivals.due(&p, 0.5, 10).len(), 10);
    }
}
