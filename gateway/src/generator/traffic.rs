//! What traffic to generate, as users describe it (`TrafficSpec`: likes per
//! minute per video, or a spread over many ids), and the plan it resolves
//! to: one Poisson stream at the total rate whose arrivals pick a video in
//! proportion to its rate (the same as independent streams per video).

use super::sampler::{WeightedPicker, zipf_weights};
use crate::ingest::request::video_id_problem;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most ids a spread may cover.
pub const MAX_SPREAD_VIDEOS: u32 = 1_000_000;
/// Highest total rate, likes per minute (a million per second).
pub const MAX_TOTAL_PER_MINUTE: f64 = 60_000_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Every id equally likely.
    #[default]
    Uniform,
    /// Rank k gets weight 1/k^s: a few hot videos and a long tail.
    Zipf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum TrafficSpec {
    /// The seed UI's model: a rate of likes per minute for each video.
    PerVideo { rates: BTreeMap<String, f64> },
    /// `videos` ids named `<prefix><k>` (k = 1..=videos) with
    /// `rate_per_minute` likes per minute each on average, spread by `distribution`.
    Spread {
        videos: u32,
        rate_per_minute: f64,
        #[serde(default)]
        distribution: Distribution,
        #[serde(default = "default_zipf_s")]
        zipf_s: f64,
        #[serde(default = "default_prefix")]
        prefix: String,
    },
}

pub fn default_zipf_s() -> f64 {
    1.1
}

pub fn default_prefix() -> String {
    "video-".into()
}

impl Default for TrafficSpec {
    fn default() -> Self {
        Self::PerVideo {
            rates: BTreeMap::new(),
        }
    }
}

/// A resolved spec: the ids, how to pick among them, and the total rate.
#[derive(Debug, Clone)]
pub struct TrafficPlan {
    pub videos: Vec<String>,
    picker: Option<WeightedPicker>,
    pub total_per_sec: f64,
}

impl TrafficPlan {
    /// The video for a uniform draw `u`; `None` when nothing is to be sent.
    pub fn pick(&self, u: f64) -> Option<&str> {
        self.picker.as_ref().map(|p| self.videos[p.pick(u)].as_str())
    }

    pub fn is_idle(&self) -> bool {
        self.picker.is_none() || self.total_per_sec <= 0.0
    }
}

impl TrafficSpec {
    pub fn plan(&self) -> Result<TrafficPlan, String> {
        let (videos, weights, total_per_minute) = match self {
            Self::PerVideo { rates } => {
                for (id, rate) in rates {
                    if let Some(problem) = video_id_problem(id) {
                        return Err(format!("video {id:?}: {problem}"));
                    }
                    if !rate.is_finite() || *rate < 0.0 {
                        return Err(format!("video {id:?}: rate {rate} must be a non-negative number"));
                    }
                }
                let videos: Vec<String> = rates.keys().cloned().collect();
                let weights: Vec<f64> = rates.values().copied().collect();
                let total = weights.iter().sum();
                (videos, weights, total)
            }
            Self::Spread {
                videos,
                rate_per_minute,
                distribution,
                zipf_s,
                prefix,
            } => {
                if !(1..=MAX_SPREAD_VIDEOS).contains(videos) {
                    return Err(format!("videos is {videos}, it must be 1 to {MAX_SPREAD_VIDEOS}"));
                }
                if !rate_per_minute.is_finite() || *rate_per_minute < 0.0 {
                    return Err(format!(
                        "rate_per_minute {rate_per_minute} must be a non-negative number"
                    ));
                }
                if *distribution == Distribution::Zipf && !(*zipf_s > 0.0 && *zipf_s <= 10.0) {
                    return Err(format!("zipf_s is {zipf_s}, it must be above 0 and at most 10"));
                }
                let n = *videos as usize;
                let ids: Vec<String> = (1..=n).map(|k| format!("{prefix}{k}")).collect();
                if let Some(problem) = ids.last().and_then(|last| video_id_problem(last)) {
                    return Err(format!("prefix {prefix:?}: {problem}"));
                }
                let weights = match distribution {
                    Distribution::Uniform => vec![1.0; n],
                    Distribution::Zipf => zipf_weights(n, *zipf_s),
                };
                (ids, weights, rate_per_minute * n as f64)
            }
        };
        if total_per_minute > MAX_TOTAL_PER_MINUTE {
            return Err(format!(
                "the total rate is {total_per_minute} likes per minute, the limit is {MAX_TOTAL_PER_MINUTE}"
            ));
        }
        Ok(TrafficPlan {
            picker: WeightedPicker::new(&weights),
            videos,
            total_per_sec: total_per_minute / 60.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_video_rates_sum_to_the_total_and_weight_the_picks() {
        let spec = TrafficSpec::PerVideo {
            rates: BTreeMap::from([("a".into(), 60.0), ("b".into(), 0.0), ("c".into(), 180.0)]),
        };
        let plan = spec.plan().unwrap();
        assert_eq!(plan.total_per_sec, 4.0);
        assert_eq!(plan.pick(0.0), Some("a"));
        assert_eq!(plan.pick(0.26), Some("c"));
        assert!(!plan.is_idle());
    }

    #[test]
    fn no_rates_is_idle() {
        assert!(TrafficSpec::default().plan().unwrap().is_idle());
        let zero = TrafficSpec::PerVideo {
            rates: BTreeMap::from([("a".into(), 0.0)]),
        };
        assert!(zero.plan().unwrap().is_idle());
    }

    #[test]
    fn spread_names_ids_and_multiplies_the_rate() {
        let spec = TrafficSpec::Spread {
            videos: 3,
            rate_per_minute: 120.0,
            distribution: Distribution::Zipf,
            zipf_s: 1.1,
            prefix: "v".into(),
        };
        let plan = spec.plan().unwrap();
        assert_eq!(plan.videos, ["v1", "v2", "v3"]);
        assert_eq!(plan.total_per_sec, 6.0);
        assert_eq!(plan.pick(0.0), Some("v1"));
    }

    #[test]
    fn bad_specs_say_why() {
        let cases = [
            (
                TrafficSpec::PerVideo {
                    rates: BTreeMap::from([("a".into(), -1.0)]),
                },
                "non-negative",
            ),
            (
                TrafficSpec::PerVideo {
                    rates: BTreeMap::from([(String::new(), 1.0)]),
                },
                "video id is empty",
            ),
            (
                TrafficSpec::PerVideo {
                    rates: BTreeMap::from([(" ".into(), 1.0)]),
                },
                "video id is blank",
            ),
            (
                TrafficSpec::Spread {
                    videos: 0,
                    rate_per_minute: 1.0,
                    distribution: Distribution::Uniform,
                    zipf_s: 1.1,
                    prefix: "v".into(),
                },
                "videos is 0",
            ),
            (
                TrafficSpec::Spread {
                    videos: 10,
                    rate_per_minute: 1.0,
                    distribution: Distribution::Zipf,
                    zipf_s: 0.0,
                    prefix: "v".into(),
                },
                "zipf_s is 0",
            ),
            (
                TrafficSpec::Spread {
                    videos: 1_000_000,
                    rate_per_minute: 1_000.0,
                    distribution: Distribution::Uniform,
                    zipf_s: 1.1,
                    prefix: "v".into(),
                },
                "the limit is",
            ),
        ];
        for (spec, needle) in cases {
            let err = spec.plan().unwrap_err();
            assert!(err.contains(needle), "{spec:?}: {err}");
        }
    }

    #[test]
    fn spec_json_shape() {
        let spec: TrafficSpec = serde_json::from_str(
            r#"{"mode":"spread","videos":100,"rate_per_minute":60,"distribution":"zipf"}"#,
        )
        .unwrap();
        assert_eq!(
            spec,
            TrafficSpec::Spread {
                videos: 100,
                rate_per_minute: 60.0,
                distribution: Distribution::Zipf,
                zipf_s: 1.1,
                prefix: "video-".into()
            }
        );
        let spec: TrafficSpec = serde_json::from_str(r#"{"mode":"per_video","rates":{"a":30}}"#).unwrap();
        assert_eq!(spec.plan().unwrap().total_per_sec, 0.5);
    }
}
