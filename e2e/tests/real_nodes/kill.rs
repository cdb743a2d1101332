//! Workers killed at random moments under load, the two ways a pod dies
//! uncleanly: its container SIGKILLed (kubelet restarts it in the same pod,
//! on the same volume), or the pod force-deleted (the StatefulSet starts a
//! new one at once, while the old process may still be running: the
//! zombie the transactional fencing is for). The counts stay exact.

use crate::load::{Load, assert_counts_exact, rekeyed_twice};
use crate::support::{Deployment, pod_name};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use videocounter_e2e::cli::{kubectl, run};
use videocounter_e2e::required_env;

/// A small deterministic generator: the schedule repeats with the same seed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }
}

/// SIGKILL of the worker container's process, through its node's containerd.
fn sigkill_container(pod: &serde_json::Value) {
    let node = pod["spec"]["nodeName"].as_str().unwrap();
    let id = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .and_then(|c| c.strip_prefix("containerd://"))
        .expect("a running container");
    let socket = format!("{}/{node}/containerd.sock", required_env("VIDEOCOUNTER_NODE_DIR"));
    run(Command::new("ctr").args([
        "--address",
        &socket,
        "--namespace",
        "k8s.io",
        "tasks",
        "kill",
        "--signal",
        "SIGKILL",
        id,
    ]));
}

/// Three workers on two nodes, so a node runs two and every kill moves
/// partitions between the survivors too.
const WORKERS: i64 = 3;
const KILLS: u32 = 8;
/// Many ids at a rate where every commit writes to every partition.
const VIDEOS: usize = 2_000;
const LIKES_PER_SECOND: u64 = 1_000;

#[test]
fn workers_killed_at_random_under_load_lose_and_double_nothing() {
    let mut d = Deployment::install("kill");
    // Kills in a row can stall an input partition past the example's 10 s
    // grace while the others advance the counting partitions' stream time:
    // its likes would then be dropped as late, by design (README, Windows).
    // A longer grace keeps every like countable, so every count must be exact.
    d.counter["spec"]["grace"] = serde_json::Value::from("3m");
    d.apply_counter(WORKERS);
    d.wait_ready(WORKERS, Duration::from_secs(180));
    let seed = std::env::var("VIDEOCOUNTER_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    println!("kill schedule seed: VIDEOCOUNTER_KILL_SEED={seed}");
    let mut random = Random(seed);

    let load = Load::start(&d.input, &d.windows, VIDEOS, LIKES_PER_SECOND);
    std::thread::sleep(Duration::from_secs(5));
    let started = Instant::now();
    for kill in 0..KILLS {
        std::thread::sleep(Duration::from_millis(1_000 + random.below(5_000)));
        let pods = d.worker_pods();
        let running: Vec<&serde_json::Value> = pods
            .iter()
            .filter(|p| p["status"]["containerStatuses"][0]["state"]["running"].is_object())
            .collect();
        let Some(victim) =
            (!running.is_empty()).then(|| running[random.below(running.len() as u64) as usize])
        else {
            continue;
        };
        let name = pod_name(victim);
        if kill % 2 == 0 {
            println!(
                "{:.1} s: SIGKILL of {name}'s worker",
                started.elapsed().as_secs_f64()
            );
            sigkill_container(victim);
        } else {
            println!("{:.1} s: force delete of {name}", started.elapsed().as_secs_f64());
            run(kubectl().args([
                "delete",
                "pod",
                &name,
                "-n",
                &d.ns.name,
                "--force",
                "--grace-period=0",
            ]));
        }
    }
    d.wait_ready(WORKERS, Duration::from_secs(180));
    std::thread::sleep(Duration::from_secs(3));
    let sent = load.stop();
    assert_counts_exact(&d.windows, &sent.expected, Duration::from_secs(120), || {
        format!(
            "seed {seed}; late likes: {}\n{}\nall worker logs: {}\n{}",
            d.late_events(),
            rekeyed_twice(&d.repartition_topic(), &d.windows, &sent.expected),
            d.save_worker_logs(),
            d.worker_logs(40)
        )
    });
    println!(
        "{} likes counted exactly across {KILLS} kills of {WORKERS} workers (seed {seed})",
        sent.likes
    );
}
