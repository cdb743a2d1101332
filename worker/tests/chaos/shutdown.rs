//! SIGTERM is a warm shutdown that ends: within the shutdown timeout (below
//! the pod's grace period) even while the broker is away or a partition is
//! still restoring, and without losing or doubling a like.

use crate::BROKER;
use crate::common::*;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::time::{Duration, Instant};
use videocounter_e2e::{kafka, run_env_script, unique_name};

const SHUTDOWN_TIMEOUT: &str = "20s";

fn worker(app: &TestApp, instance: &str) -> WorkerProcess {
    let mut w = app.worker(instance);
    w.extra_args
        .extend(["--shutdown-timeout".into(), SHUTDOWN_TIMEOUT.into()]);
    w
}

/// SIGTERM, then the seconds until the process exited (it must exit 0).
fn terminate_timed(w: &mut WorkerProcess, limit: Duration) -> f64 {
    let sent = Instant::now();
    let status = w.terminate(limit);
    let secs = sent.elapsed().as_secs_f64();
    assert!(
        status.success(),
        "{} exited with {status}\n{}",
        w.instance_id,
        w.log_tail(40)
    );
    secs
}

#[test]
fn sigterm_while_the_broker_is_away_ends_in_time_and_loses_nothing() {
    let _broker = BROKER.lock().unwrap_or_else(|e| e.into_inner());
    let app = TestApp::new("term-broker");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(app.create_input(2));
    let first = events(20_000, 30, 20 * 60_000, 11);
    let second = events(20_000, 30, 20 * 60_000, 12);
    let mut truth = ground_truth(&app, &first);
    for (k, v) in ground_truth(&app, &second) {
        *truth.entry(k).or_default() += v;
    }

    let mut w = worker(&app, "worker-a");
    w.start();
    w.wait_ready(Duration::from_secs(60));
    produce_raw(&app.input, &first);
    // Some of it is still uncommitted when the broker goes away.
    std::thread::sleep(Duration::from_millis(150));
    run_env_script(&["kafka-stop", "--kill"]);
    let took = terminate_timed(&mut w, Duration::from_secs(25));
    println!("SIGTERM with the broker away: exited after {took:.2}s");
    run_env_script(&["kafka-start"]);

    w.start();
    w.wait_ready(Duration::from_secs(120));
    produce_raw(&app.input, &second);
    wait_caught_up(&app, Duration::from_secs(120), &[&w]);
    assert_counts_equal(&final_counts(&read_outputs(&app)), &truth);
    app.cleanup();
}

#[test]
fn sigterm_while_restoring_ends_promptly() {
    let _broker = BROKER.lock().unwrap_or_else(|e| e.into_inner());
    let mut app = TestApp::new("term-restore");
    app.partitions = 2;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(app.create_input(2));
    let evs = events(5_000, 20, 10 * 60_000, 13);
    let truth = ground_truth(&app, &evs);
    let mut w = worker(&app, "worker-a");
    w.start();
    w.wait_ready(Duration::from_secs(60));
    produce_raw(&app.input, &evs);
    wait_caught_up(&app, Duration::from_secs(60), &[&w]);
    terminate_timed(&mut w, Duration::from_secs(25));

    // Another producer's transaction stays open on the changelog: a restore
    // cannot finish until it ends (as after a crashed owner).
    let blocker: ThreadedProducer<DefaultProducerContext> = kafka::client_config()
        .set("transactional.id", unique_name("term-restore-blocker"))
        .set("transaction.timeout.ms", "120000")
        .create()
        .expect("producer");
    blocker.init_transactions(Duration::from_secs(30)).unwrap();
    blocker.begin_transaction().unwrap();
    for p in 0..2 {
        blocker
            .send(
                BaseRecord::<[u8], [u8]>::to(&app.changelog_topic())
                    .partition(p)
                    .key(b"x:blocker")
                    .payload(b"open"),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    blocker.flush(Duration::from_secs(30)).unwrap();

    w.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let restoring = w.get("/v1/partitions").is_some_and(|(_, body)| {
            body["partitions"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["state"] == "restoring"))
        });
        if restoring {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no partition started restoring\n{}",
            w.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let took = terminate_timed(&mut w, Duration::from_secs(25));
    println!("SIGTERM while restoring: exited after {took:.2}s");
    assert!(
        !w.log_text().contains("warm shutdown did not finish in time"),
        "the restore was not cancelled: the watchdog ended the process\n{}",
        w.log_tail(30)
    );

    blocker.abort_transaction(Duration::from_secs(30)).unwrap();
    w.start();
    w.wait_ready(Duration::from_secs(60));
    assert_counts_equal(&final_counts(&read_outputs(&app)), &truth);
    app.cleanup();
}
