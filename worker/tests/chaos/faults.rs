//! The chaos test's load and faults: records produced at a steady pace, and
//! a seeded schedule of SIGKILLs (one with the data directory deleted), a
//! SIGTERM and a broker kill, at random moments of the run.

use crate::Profile;
use crate::common::{TestApp, WorkerProcess, remove_dir, send};
use crate::input::{EXPECT_HEADER, Generator};
use rand::Rng;
use rand::rngs::StdRng;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::time::{Duration, Instant};
use videocounter_e2e::{kafka, run_env_script};

/// Produces `profile.records` records evenly over `profile.seconds`; returns how many.
pub fn produce_paced(topic: &str, profile: &Profile, seed: u64) -> usize {
    let producer: ThreadedProducer<DefaultProducerContext> = kafka::client_config()
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("message.max.bytes", "2000000")
        // Long enough to ride out the broker restart.
        .set("message.timeout.ms", "300000")
        .create()
        .expect("producer");
    let mut generator = Generator::new(seed, profile.ids, 1.1, *crate::common::BASE_TS, 8 * 60_000);
    let started = Instant::now();
    let per_sec = profile.records as f64 / profile.seconds as f64;
    let mut sent = 0;
    while sent < profile.records {
        let due = ((started.elapsed().as_secs_f64() * per_sec) as usize).min(profile.records);
        while sent < due {
            let r = generator.next_record();
            let header = r.expect.to_header();
            let headers = OwnedHeaders::new().insert(Header {
                key: EXPECT_HEADER,
                value: Some(&header),
            });
            let mut record = BaseRecord::<[u8], [u8]>::to(topic)
                .timestamp(r.timestamp)
                .headers(headers);
            record.key = r.key.as_deref();
            record.payload = r.value.as_deref();
            send(&producer, record);
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    producer
        .flush(Duration::from_secs(300))
        .expect("flushing the chaos input");
    sent
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL a worker, restart it after `down` (deleting its data directory first if `wipe`).
    Kill {
        worker: usize,
        down: Duration,
        wipe: bool,
    },
    /// SIGTERM a worker: it must exit cleanly within the pod's grace period; restart after `down`.
    Term { worker: usize, down: Duration },
    /// SIGKILL the broker and start it again after `down`.
    Broker { down: Duration },
}

/// `profile.kills` SIGKILLs (one of them with a wipe), one SIGTERM and one
/// broker restart, at random moments of the production period.
pub fn schedule(rng: &mut StdRng, profile: &Profile, workers: usize) -> Vec<(Duration, Fault)> {
    let span = profile.seconds.saturating_sub(4).max(1) as f64;
    let at = |rng: &mut StdRng| Duration::from_secs_f64(2.0 + rng.random::<f64>() * span);
    let wipe_at = rng.random_range(0..profile.kills.max(1));
    let mut faults: Vec<(Duration, Fault)> = (0..profile.kills)
        .map(|i| {
            let fault = Fault::Kill {
                worker: rng.random_range(0..workers),
                down: Duration::from_millis(rng.random_range(0..5_000)),
                wipe: i == wipe_at,
            };
            (at(rng), fault)
        })
        .collect();
    let term = Fault::Term {
        worker: rng.random_range(0..workers),
        down: Duration::from_millis(rng.random_range(0..2_000)),
    };
    faults.push((at(rng), term));
    let broker = Fault::Broker {
        down: Duration::from_millis(rng.random_range(1_000..5_000)),
    };
    faults.push((at(rng), broker));
    faults.sort_by_key(|(t, _)| *t);
    faults
}

#[derive(Debug, Default)]
pub struct Report {
    pub kills: usize,
    pub wipes: usize,
    pub terms: usize,
    pub broker_restarts: usize,
    /// Seconds from SIGTERM to exit.
    pub term_exits: Vec<f64>,
}

/// How long a worker may take to exit after SIGTERM: the pods' default grace period.
const GRACE: Duration = Duration::from_secs(60);

/// Carries out the schedule, in order, each fault at its moment or as soon as the previous one is done.
pub fn run(schedule: &[(Duration, Fault)], workers: &mut [WorkerProcess], app: &TestApp) -> Report {
    let started = Instant::now();
    let mut report = Report::default();
    for (at, fault) in schedule {
        if let Some(wait) = at.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let t = started.elapsed().as_secs_f64();
        match *fault {
            Fault::Kill { worker, down, wipe } => {
                let w = &mut workers[worker];
                println!(
                    "chaos {t:6.1}s: SIGKILL {}{}",
                    w.instance_id,
                    if wipe { " and delete its data" } else { "" }
                );
                w.kill();
                if wipe {
                    remove_dir(&w.data_dir);
                    report.wipes += 1;
                }
                std::thread::sleep(down);
                w.start();
                report.kills += 1;
            }
            Fault::Term { worker, down } => {
                let w = &mut workers[worker];
                // A process that has not reached main yet has no handlers:
                // SIGTERM is meant for a running worker (its HTTP server is up).
                let up_by = Instant::now() + Duration::from_secs(30);
                while w.get_text("/healthz").is_none() && Instant::now() < up_by {
                    std::thread::sleep(Duration::from_millis(20));
                }
                println!("chaos {t:6.1}s: SIGTERM {}", w.instance_id);
                let sent = Instant::now();
                let status = w.terminate(GRACE);
                report.term_exits.push(sent.elapsed().as_secs_f64());
                assert!(
                    status.success(),
                    "{} exited with {status} after SIGTERM\n{}",
                    w.instance_id,
                    w.log_tail(40)
                );
                std::thread::sleep(down);
                w.start();
                report.terms += 1;
            }
            Fault::Broker { down } => {
                println!("chaos {t:6.1}s: SIGKILL the broker, start it {down:?} later");
                run_env_script(&["kafka-stop", "--kill"]);
                std::thread::sleep(down);
                run_env_script(&["kafka-start"]);
                report.broker_restarts += 1;
            }
        }
    }
    let _ = app;
    report
}
