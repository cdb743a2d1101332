//! Random draws behind the traffic generator, as pure functions of uniform
//! numbers so they can be tested exactly and seeded.

/// Seconds until the next arrival of a Poisson process of `rate_per_sec`
/// (exponential inter-arrival), from a uniform draw `u` in `[0, 1)`.
pub fn exponential_gap(rate_per_sec: f64, u: f64) -> f64 {
    -(1.0 - u).ln() / rate_per_sec
}

/// Zipf weights `1 / k^s` for ranks `k = 1..=n`: rank 1 is the hottest id.
pub fn zipf_weights(n: usize, s: f64) -> Vec<f64> {
    (1..=n).map(|k| (k as f64).powf(-s)).collect()
}

/// Picks indices in proportion to their weights: cumulative sums and a
/// binary search, O(log n) per draw, for millions of ids.
#[derive(Debug, Clone)]
pub struct WeightedPicker {
    cumulative: Vec<f64>,
}

impl WeightedPicker {
    /// `None` unless every weight is finite and non-negative and one is positive.
    pub fn new(weights: &[f64]) -> Option<Self> {
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return None;
        }
        let mut total = 0.0;
        let cumulative: Vec<f64> = weights
            .iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        (total > 0.0).then_some(Self { cumulative })
    }

    /// The index for a uniform draw `u` in `[0, 1)`. Zero-weight indices are never picked.
    pub fn pick(&self, u: f64) -> usize {
        let total = *self.cumulative.last().expect("a picker has weights");
        let target = u.clamp(0.0, 1.0) * total;
        let i = self.cumulative.partition_point(|c| *c <= target);
        i.min(self.cumulative.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn exponential_gaps_have_mean_and_variance_of_one_over_rate() {
        let mut rng = StdRng::seed_from_u64(7);
        let rate = 4.0;
        let n = 200_000;
        let gaps: Vec<f64> = (0..n).map(|_| exponential_gap(rate, rng.random())).collect();
        let mean = gaps.iter().sum::<f64>() / n as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 0.25).abs() < 0.005, "mean {mean}");
        assert!((var - 0.0625).abs() < 0.003, "variance {var}");
        assert_eq!(exponential_gap(2.0, 0.0), 0.0);
    }

    #[test]
    fn zipf_rank_frequencies_follow_the_power_law() {
        let s = 1.1;
        let picker = WeightedPicker::new(&zipf_weights(1_000, s)).unwrap();
        let mut rng = StdRng::seed_from_u64(11);
        let mut hits = vec![0u32; 1_000];
        for _ in 0..500_000 {
            hits[picker.pick(rng.random())] += 1;
        }
        // Frequency of rank 1 over rank 2 is 2^s; over rank 10 is 10^s.
        let r12 = f64::from(hits[0]) / f64::from(hits[1]);
        let r1_10 = f64::from(hits[0]) / f64::from(hits[9]);
        assert!((r12 - 2f64.powf(s)).abs() < 0.05, "rank1/rank2 = {r12}");
        assert!((r1_10 - 10f64.powf(s)).abs() < 0.6, "rank1/rank10 = {r1_10}");
        assert!(hits.windows(2).take(5).all(|w| w[0] > w[1]));
    }

    #[test]
    fn picker_respects_weights_exactly_at_the_boundaries() {
        let picker = WeightedPicker::new(&[1.0, 0.0, 3.0]).unwrap();
        assert_eq!(picker.pick(0.0), 0);
        assert_eq!(picker.pick(0.2499), 0);
        assert_eq!(picker.pick(0.25), 2);
        assert_eq!(picker.pick(0.9999), 2);
        assert_eq!(picker.pick(1.0), 2);
        assert!(WeightedPicker::new(&[]).is_none());
        assert!(WeightedPicker::new(&[0.0, 0.0]).is_none());
        assert!(WeightedPicker::new(&[1.0, f64::NAN]).is_none());
        assert!(WeightedPicker::new(&[1.0, -1.0]).is_none());
    }
}
