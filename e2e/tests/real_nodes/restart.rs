//! The README's rolling restart (the restart annotation) of 4 real workers
//! under steady load: a watch of every pod change proves that never more
//! than 50% of the workers were unavailable, the counts stay exact, and the
//! test reports how long the restart took, the longest time any partition
//! with work waiting made no progress, and the rebalances the workers saw.

use crate::load::{Load, assert_counts_exact};
use crate::support::{COUNTER, Deployment};
use crate::watch::{Fleet, FleetWatch, Progress, ProgressWatch};
use std::time::{Duration, Instant};
use videocounter_e2e::cli::eventually;

pub struct RestartReport {
    pub total: Duration,
    pub fleet: Fleet,
    pub progress: Progress,
    pub likes: u64,
}

impl std::fmt::Display for RestartReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.fleet.rebalances;
        write!(
            f,
            "rolling restart: {:.1} s; at most {} workers unavailable (at {:?}); longest partition stall {:.1} s ({}; read every {:.2} s at worst, {} samples); \
             rebalance callbacks of running workers beyond their first assignment: {} assigns, {} revokes, {} losses \
             ({} worker processes); {} likes",
            self.total.as_secs_f64(),
            self.fleet.max_unavailable,
            self.fleet.worst_moment,
            self.progress.longest_stall.as_secs_f64(),
            self.progress.partition,
            self.progress.slowest_round.as_secs_f64(),
            self.progress.samples,
            r.extra_assigns,
            r.revokes,
            r.losses,
            self.fleet.processes,
            self.likes,
        )
    }
}

/// With `replicas` Ready workers: steady load, the restart annotation, wait
/// until every pod is replaced and restored, more load, then the exact
/// counts. Returns what the watchers saw.
pub fn rolling_restart_under_load(d: &Deployment, replicas: usize) -> RestartReport {
    let load = Load::start(&d.input, &d.windows, 200, 300);
    std::thread::sleep(Duration::from_secs(5));
    let selector = format!("app.kubernetes.io/instance={COUNTER}");
    let fleet = FleetWatch::start(&d.ns.name, &selector, replicas);
    let app = d.application_id();
    let progress = ProgressWatch::start(&app, &[d.input.clone(), format!("{app}-repartition")]);
    std::thread::sleep(Duration::from_secs(3));

    let before: Vec<serde_json::Value> = d
        .worker_pods()
        .iter()
        .map(|p| p["metadata"]["uid"].clone())
        .collect();
    let started = Instant::now();
    d.restart();
    eventually(
        "every worker replaced and restored",
        Duration::from_secs(300),
        || {
            let pods = d.worker_pods();
            let replaced =
                pods.len() == replicas && pods.iter().all(|p| !before.contains(&p["metadata"]["uid"]));
            (replaced && pods.iter().all(|p| d.is_restored(p))).then_some(())
        },
    );
    let total = started.elapsed();
    d.wait_ready(replicas as i64, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(5));

    let sent = load.stop();
    let fleet = fleet.stop();
    let progress = progress.stop();
    let report = RestartReport {
        total,
        fleet,
        progress,
        likes: sent.likes,
    };
    println!("{report}");
    assert_counts_exact(&d.windows, &sent.expected, Duration::from_secs(120), || {
        format!("{report}\nlate likes: {}\n{}", d.late_events(), d.worker_logs(30))
    });
    report
}

#[test]
fn a_rolling_restart_under_load_keeps_half_the_workers_up_and_every_count() {
    let mut d = Deployment::install("restart");
    let applied = Instant::now();
    d.apply_counter(4);
    d.wait_ready(4, Duration::from_secs(240));
    println!(
        "apply -> 4 workers Ready (stores restored): {:.1} s",
        applied.elapsed().as_secs_f64()
    );
    let report = rolling_restart_under_load(&d, 4);
    assert!(
        report.fleet.max_unavailable <= 2,
        "more than 50% of 4 workers were unavailable at once: {report}"
    );
    assert!(
        report.fleet.max_unavailable >= 1,
        "the watch saw no pod go down: {report}"
    );
}
