//! The fault test: several workers count a stream of JSON likes (many ids,
//! event times over several windows, malformed records of many kinds) while
//! workers are SIGKILLed at random moments, one loses its data directory,
//! one gets SIGTERM, and the broker itself is killed and restarted. Then the
//! final count of every window must equal the truth computed from the input
//! topic, every malformed record must be in the dead-letter topic exactly
//! once, and no good record may be there. One of the workers runs two
//! consumer sessions in its process (`--threads 2`). The changelog is
//! compacted (a segment every 3 s), so restores read what compaction left.
//!
//! `make test` runs a short form with each group protocol; `make chaos` runs
//! the long one (`CHAOS_PROFILE=long`). Every figure can be overridden
//! (`CHAOS_RECORDS`, `CHAOS_SECONDS`, `CHAOS_KILLS`, `CHAOS_WORKERS`,
//! `CHAOS_IDS`), and `CHAOS_SEED` replays a run: the same input and the same
//! fault schedule.
//!
//! Its own test binary: it restarts the broker, which would disturb tests
//! running beside it.

#[path = "../common/mod.rs"]
mod common;
mod faults;
mod input;
mod shutdown;
mod verdict;

use common::*;
use rand::SeedableRng;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One chaos run at a time: each restarts the shared broker.
pub static BROKER: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone)]
pub struct Profile {
    pub records: usize,
    pub seconds: u64,
    pub kills: usize,
    pub workers: usize,
    pub ids: usize,
    pub partitions: u32,
}

impl Profile {
    fn from_env() -> Self {
        let long = std::env::var("CHAOS_PROFILE").as_deref() == Ok("long");
        let base = if long {
            Profile {
                records: 1_000_000,
                seconds: 240,
                kills: 20,
                workers: 3,
                ids: 5_000,
                partitions: 6,
            }
        } else {
            Profile {
                records: 120_000,
                seconds: 40,
                kills: 8,
                workers: 3,
                ids: 2_000,
                partitions: 6,
            }
        };
        let var = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Profile {
            records: var("CHAOS_RECORDS", base.records),
            seconds: var("CHAOS_SECONDS", base.seconds as usize) as u64,
            kills: var("CHAOS_KILLS", base.kills),
            workers: var("CHAOS_WORKERS", base.workers),
            ids: var("CHAOS_IDS", base.ids),
            partitions: base.partitions,
        }
    }
}

fn run(protocol: &str) {
    let _broker = BROKER.lock().unwrap_or_else(|e| e.into_inner());
    let profile = Profile::from_env();
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("chaos ({protocol}): {profile:?}; replay with CHAOS_SEED={seed}");

    let mut app = TestApp::new(&format!("chaos-{protocol}"));
    app.input_format = "json";
    app.partitions = profile.partitions;
    app.retention = "24h";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(app.create_input(profile.partitions as i32));
    // The changelog compacted often (a segment every 3 s), as a long-running one is:
    // restores then read what compaction left of the batch records and the
    // windows' own records, not the whole history.
    runtime.block_on(videocounter_e2e::kafka::create_topic(
        &app.changelog_topic(),
        profile.partitions as i32,
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "3000"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("min.compaction.lag.ms", "0"),
        ],
    ));

    let mut workers: Vec<WorkerProcess> = (0..profile.workers)
        .map(|i| {
            let mut w = app.worker(&format!("worker-{i}"));
            set_protocol(&mut w, protocol);
            // One process runs two consumer sessions (as a pod with 2 CPUs).
            if i == 2 {
                w.extra_args.extend(["--threads".into(), "2".into()]);
            }
            w
        })
        .collect();
    for w in &mut workers {
        w.start();
    }
    for w in &workers {
        w.wait_ready(Duration::from_secs(90));
    }

    let started = Instant::now();
    let producing = {
        let topic = app.input.clone();
        let profile = profile.clone();
        std::thread::spawn(move || faults::produce_paced(&topic, &profile, seed))
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
    let schedule = faults::schedule(&mut rng, &profile, workers.len());
    let report = faults::run(&schedule, &mut workers, &app);
    let produced = producing.join().expect("producer thread");
    let produced_in = started.elapsed();

    for w in &mut workers {
        assert!(
            w.is_running(),
            "{} exited on its own during the run\n{}",
            w.instance_id,
            w.log_tail(60)
        );
    }
    for w in &workers {
        w.wait_ready(Duration::from_secs(180));
    }
    let refs: Vec<&WorkerProcess> = workers.iter().collect();
    wait_caught_up(&app, Duration::from_secs(600), &refs);
    let caught_up_in = started.elapsed();

    let verdict = verdict::check(&app);
    println!(
        "chaos ({protocol}) figures: {produced} records ({} good likes, {} malformed) produced in {:.1}s; \
         {} SIGKILLs ({} with the data directory deleted), {} SIGTERM, {} broker restart(s); \
         caught up {:.1}s after the start ({:.0} records/s end to end); \
         {} windows checked, {} exact, {} too high, {} too low, {} missing, {} unexpected; \
         dead letters: {} expected, {} once, {} twice or more, {} missing, {} good records dead-lettered, {} with the wrong reason",
        verdict.good_likes,
        verdict.bad_records,
        produced_in.as_secs_f64(),
        report.kills,
        report.wipes,
        report.terms,
        report.broker_restarts,
        caught_up_in.as_secs_f64(),
        produced as f64 / caught_up_in.as_secs_f64(),
        verdict.windows,
        verdict.exact,
        verdict.too_high,
        verdict.too_low,
        verdict.missing,
        verdict.unexpected,
        verdict.bad_records,
        verdict.dead_once,
        verdict.dead_repeated,
        verdict.dead_missing,
        verdict.good_dead_lettered,
        verdict.wrong_reason,
    );
    for t in &report.term_exits {
        println!("chaos ({protocol}): SIGTERM exit after {t:.2}s");
    }
    if !verdict.is_exact() {
        let logs: Vec<String> = workers.iter().map(|w| w.log_tail(20)).collect();
        panic!(
            "chaos ({protocol}) is not exact (replay with CHAOS_SEED={seed}; logs in {}):\n{}\n{}",
            app.dir.display(),
            verdict.first_problems.join("\n"),
            logs.join("\n")
        );
    }
    drop(workers);
    app.cleanup();
}

fn set_protocol(w: &mut WorkerProcess, protocol: &str) {
    let i = w
        .extra_args
        .iter()
        .position(|a| a == "--group-protocol")
        .expect("--group-protocol in the test worker's arguments");
    w.extra_args[i + 1] = protocol.to_owned();
}

#[test]
fn chaos_with_the_consumer_group_protocol_counts_exactly() {
    run("consumer");
}

#[test]
fn chaos_with_the_classic_group_protocol_counts_exactly() {
    run("classic");
}
