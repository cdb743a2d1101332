//! The dashboard's status strip: is Kafka reachable, which workers are
//! ready, how far behind they are. Polled in the background so a dead
//! worker never slows a page load; unknown stays unknown (`null`).

use crate::ingest::producer::LikeProducer;
use serde::Serialize;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkerStatus {
    pub url: String,
    /// `/readyz` answered 2xx; `None` when the worker did not answer at all.
    pub ready: Option<bool>,
    /// Sum of the lag metric's samples; `None` when unknown.
    pub lag: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct StatusSnapshot {
    pub kafka_reachable: Option<bool>,
    pub kafka_error: Option<String>,
    pub workers: Vec<WorkerStatus>,
    pub workers_ready: usize,
    /// Total lag over workers that report it; `None` when none does.
    pub lag: Option<f64>,
    pub checked_at: Option<i64>,
}

/// Sum of every sample of `metric` in a Prometheus text exposition.
pub fn sum_metric(text: &str, metric: &str) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        if &line[..name_end] != metric {
            continue;
        }
        let rest = match line[name_end..].strip_prefix('{') {
            Some(labels) => match labels.rfind('}') {
                Some(close) => &labels[close + 1..],
                None => continue,
            },
            None => &line[name_end..],
        };
        if let Some(Ok(value)) = rest.split_whitespace().next().map(str::parse::<f64>)
            && value.is_finite()
        {
            *total.get_or_insert(0.0) += value;
        }
    }
    total
}

/// Combines per-worker results into the strip's totals.
pub fn summarize(workers: Vec<WorkerStatus>, kafka: Result<(), String>, now_ms: i64) -> StatusSnapshot {
    let workers_ready = workers.iter().filter(|w| w.ready == Some(true)).count();
    let lag = workers
        .iter()
        .filter_map(|w| w.lag)
        .fold(None, |acc: Option<f64>, l| Some(acc.unwrap_or(0.0) + l));
    StatusSnapshot {
        kafka_reachable: Some(kafka.is_ok()),
        kafka_error: kafka.err(),
        workers,
        workers_ready,
        lag,
        checked_at: Some(now_ms),
    }
}

#[derive(Clone)]
pub struct StatusPoller {
    pub worker_urls: Vec<String>,
    pub lag_metric: String,
    pub every: Duration,
    pub snapshot: Arc<RwLock<StatusSnapshot>>,
}

impl StatusPoller {
    pub fn current(&self) -> StatusSnapshot {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn spawn(
        self,
        producer: Arc<LikeProducer>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("an HTTP client without TLS always builds");
            loop {
                let p = producer.clone();
                let kafka = tokio::task::spawn_blocking(move || p.check_reachable(Duration::from_secs(3)))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                let checks = self
                    .worker_urls
                    .iter()
                    .map(|u| poll_worker(&http, u, &self.lag_metric));
                let workers = futures::future::join_all(checks).await;
                let snapshot = summarize(workers, kafka, crate::clock::now_ms());
                *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = snapshot;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(self.every) => {}
                }
            }
        })
    }
}

async fn poll_worker(http: &reqwest::Client, base: &str, lag_metric: &str) -> WorkerStatus {
    let base = base.trim_end_matches('/');
    let (ready, error) = match http.get(format!("{base}/readyz")).send().await {
        Ok(r) => (Some(r.status().is_success()), None),
        Err(e) => (None, Some(format!("{base} did not answer: {e}"))),
    };
    let lag = match http.get(format!("{base}/metrics")).send().await {
        Ok(r) if r.status().is_success() => r.text().await.ok().and_then(|t| sum_metric(&t, lag_metric)),
        _ => None,
    };
    WorkerStatus {
        url: base.to_owned(),
        ready,
        lag,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP lag Records behind.\n# TYPE lag gauge\n\
        lag{topic=\"in\",partition=\"0\"} 3\nlag{topic=\"in\",partition=\"1\",note=\"a}b\"} 4.5\n\
        lag_other 100\nlagging 7\nlag 1 1700000000000\n";

    #[test]
    fn sums_every_sample_of_one_metric() {
        assert_eq!(sum_metric(TEXT, "lag"), Some(8.5));
        assert_eq!(sum_metric(TEXT, "lag_other"), Some(100.0));
        assert_eq!(sum_metric(TEXT, "missing"), None);
        assert_eq!(sum_metric("x NaN\n", "x"), None);
    }

    #[test]
    fn summary_counts_ready_workers_and_known_lag() {
        let w = |ready, lag| WorkerStatus {
            url: "u".into(),
            ready,
            lag,
            error: None,
        };
        let s = summarize(
            vec![w(Some(true), Some(2.0)), w(Some(false), None), w(None, Some(3.0))],
            Err("down".into()),
            5,
        );
        assert_eq!(s.workers_ready, 1);
        assert_eq!(s.lag, Some(5.0));
        assert_eq!(s.kafka_reachable, Some(false));
        assert_eq!(s.kafka_error.as_deref(), Some("down"));
        let none = summarize(vec![w(None, None)], Ok(()), 5);
        assert_eq!(none.lag, None);
        assert_eq!(none.kafka_reachable, Some(true));
    }
}
