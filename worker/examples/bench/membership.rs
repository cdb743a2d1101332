//! Group membership figures, for the choice of the default group protocol:
//! for KIP-848 (`consumer`) and the classic protocol with cooperative-sticky
//! assignment, how long a second worker takes to join a running one (until
//! both own their share of the partitions, restored), and how long a static
//! member's restart (SIGTERM, start again with the same instance id, as a
//! pod's rolling restart) takes, with the rebalance callbacks the other
//! worker saw meanwhile (0 means the restart did not disturb it), and the
//! same for a crash (SIGKILL, start again at once: a pod's container restart).

use super::PARTITIONS;
use super::worker::{WorkerProcess, configure_app};
use std::time::{Duration, Instant};
use videocounter_e2e::{kafka, unique_name};

const TIMEOUT: Duration = Duration::from_secs(180);

/// Partitions a worker owns and whether it says it is ready.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Holding {
    inputs: usize,
    counting: usize,
    ready: bool,
}

fn holding(w: &WorkerProcess) -> Holding {
    let body = w.get("/v1/partitions");
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return Holding::default();
    };
    let len = |key: &str| v[key].as_array().map_or(0, Vec::len);
    Holding {
        inputs: len("input_partitions"),
        counting: len("partitions"),
        ready: v["ready"].as_bool().unwrap_or(false),
    }
}

/// Rebalance callbacks (assign, revoke, lost) a worker has seen so far.
fn rebalances(w: &WorkerProcess) -> f64 {
    w.get("/metrics")
        .lines()
        .filter(|l| l.starts_with("videocounter_rebalances_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until the workers together own every partition of both topics, each
/// owns some (the broker may give one worker all input partitions and the
/// other all counting ones: 6 each), and all are ready; the seconds it took.
fn settled(workers: &mut [&mut WorkerProcess], since: Instant) -> f64 {
    loop {
        for w in workers.iter_mut() {
            w.assert_running();
        }
        let h: Vec<Holding> = workers.iter().map(|w| holding(w)).collect();
        let all = |f: fn(&Holding) -> usize| h.iter().map(f).sum::<usize>() == PARTITIONS as usize;
        if all(|h| h.inputs) && all(|h| h.counting) && h.iter().all(|h| h.ready && h.inputs + h.counting > 0)
        {
            return since.elapsed().as_secs_f64();
        }
        assert!(
            since.elapsed() < TIMEOUT,
            "workers did not settle in {TIMEOUT:?}: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Figures {
    pub protocol: &'static str,
    pub first_ready_s: f64,
    pub join_s: f64,
    pub restart_s: f64,
    pub other_rebalances_on_restart: f64,
    pub crash_restart_s: f64,
    pub other_rebalances_on_crash: f64,
}

/// One run of the scenario with `protocol`.
pub async fn measure(protocol: &'static str) -> Figures {
    let app = unique_name("bench-members");
    let input = format!("{app}-input");
    kafka::create_topic(&input, PARTITIONS, &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = configure_app(dir.path(), &app, &input, "100ms").await;
    let flags = ["--group-protocol", protocol];
    let data = |i: usize| dir.path().join(format!("data-{i}"));

    let started = Instant::now();
    let mut a = WorkerProcess::spawn(&config, "member-0", &data(0), &flags);
    let first_ready_s = settled(&mut [&mut a], started);

    let joined = Instant::now();
    let mut b = WorkerProcess::spawn(&config, "member-1", &data(1), &flags);
    let join_s = settled(&mut [&mut a, &mut b], joined);

    let before = rebalances(&a);
    let restarted = Instant::now();
    b.stop();
    let mut b = WorkerProcess::spawn(&config, "member-1", &data(1), &flags);
    let restart_s = settled(&mut [&mut a, &mut b], restarted);
    let other_rebalances_on_restart = rebalances(&a) - before;

    let before = rebalances(&a);
    let crashed = Instant::now();
    b.kill();
    let mut b = WorkerProcess::spawn(&config, "member-1", &data(1), &flags);
    let crash_restart_s = settled(&mut [&mut a, &mut b], crashed);
    let other_rebalances_on_crash = rebalances(&a) - before;

    a.stop();
    b.stop();
    kafka::delete_topics_of(&app).await;
    Figures {
        protocol,
        first_ready_s,
        join_s,
        restart_s,
        other_rebalances_on_restart,
        crash_restart_s,
        other_rebalances_on_crash,
    }
}

/// Both protocols, printed side by side.
pub async fn run() {
    println!("group membership ({PARTITIONS} partitions, two static members, empty input):");
    println!();
    println!(
        "| protocol | first ready | second joins | static restart (SIGTERM) | other's rebalances | crash restart (SIGKILL) | other's rebalances |"
    );
    println!("|---|---|---|---|---|---|---|");
    for protocol in ["consumer", "classic"] {
        let f = measure(protocol).await;
        println!(
            "| {} | {:.2}s | {:.2}s | {:.2}s | {} | {:.2}s | {} |",
            f.protocol,
            f.first_ready_s,
            f.join_s,
            f.restart_s,
            f.other_rebalances_on_restart,
            f.crash_restart_s,
            f.other_rebalances_on_crash
        );
    }
}
