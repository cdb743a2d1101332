//! Exactly-once counting against the real broker: two workers share the
//! work, and workers SIGKILLed at random moments mid-stream lose nothing and
//! double nothing.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_count_100k_events_exactly() {
    let app = TestApp::new("eos-two");
    app.create_input(3).await;
    let events = events(100_000, 50, 30 * 60_000, 1);
    let truth = ground_truth(&app, &events);

    let mut a = app.worker("worker-a");
    let mut b = app.worker("worker-b");
    a.start();
    b.start();
    a.wait_ready(Duration::from_secs(60));
    b.wait_ready(Duration::from_secs(60));
    produce_raw(&app.input, &events);
    wait_caught_up(&app, Duration::from_secs(120), &[&a, &b]);

    let outputs = read_outputs(&app);
    assert_counts_equal(&final_counts(&outputs), &truth);

    // The work is shared, and every counting partition is owned and active exactly once.
    let mut counting = Vec::new();
    for w in [&a, &b] {
        let (code, body) = w.get("/v1/partitions").expect("partitions");
        assert_eq!(code, 200);
        let owned = body["partitions"].as_array().unwrap();
        let inputs = body["input_partitions"].as_array().unwrap();
        assert!(
            !owned.is_empty() || !inputs.is_empty(),
            "{} owns nothing: {body}",
            w.instance_id
        );
        assert!(owned.iter().all(|p| p["state"] == "active"), "{body}");
        counting.extend(owned.iter().map(|p| p["partition"].as_i64().unwrap()));
    }
    counting.sort();
    assert_eq!(counting, [0, 1, 2, 3]);

    // Queries: the owner answers with the exact counts; the other names the owner.
    let video = "video-7";
    let want: Vec<(String, i64, u64)> = truth
        .iter()
        .filter(|((_, v, _), _)| v == video)
        .map(|((t, _, s), c)| (t.clone(), *s, *c))
        .collect();
    let (ra, rb) = (
        a.get(&format!("/v1/counts/{video}")).unwrap(),
        b.get(&format!("/v1/counts/{video}")).unwrap(),
    );
    let ((owner_code, owner_body), (other_code, other_body), owner) =
        if ra.0 == 200 { (ra, rb, &a) } else { (rb, ra, &b) };
    assert_eq!(owner_code, 200, "{owner_body}");
    let mut got: Vec<(String, i64, u64)> = owner_body["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["type"].as_str().unwrap().to_string(),
                w["window_start"].as_i64().unwrap(),
                w["count"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let mut want = want;
    want.sort();
    assert_eq!(got, want, "counts of {video} from {}", owner.instance_id);
    assert_eq!(other_code, 421, "{other_body}");
    assert_eq!(other_body["owner"], owner.instance_id.as_str(), "{other_body}");
    assert_eq!(other_body["partition"], owner_body["partition"]);

    let metrics = a.get_text("/metrics").unwrap().1 + &b.get_text("/metrics").unwrap().1;
    assert!(metrics.contains("videocounter_events_counted_total{window=\"1min\"}"));
    assert_eq!(a.get("/healthz").unwrap().0, 200);
    app.cleanup();
}

/// The exactly-once proof: while events stream in, workers are SIGKILLed at
/// random moments (in the middle of transactions, restores and rebalances),
/// restarted at once or only after their partitions moved away; the final
/// count of every window still equals the number of its events.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_keeps_counts_exact() {
    let app = TestApp::new("eos-kill");
    app.create_input(3).await;
    let events = events(100_000, 50, 30 * 60_000, 2);
    let truth = ground_truth(&app, &events);

    let mut workers = [app.worker("worker-a"), app.worker("worker-b")];
    for w in &mut workers {
        w.start();
    }
    for w in &workers {
        w.wait_ready(Duration::from_secs(60));
    }

    // Produce in small batches over ~25 seconds.
    let topic = app.input.clone();
    let to_send = events.clone();
    let producing = std::thread::spawn(move || {
        for chunk in to_send.chunks(2_000) {
            produce_raw(&topic, chunk);
            std::thread::sleep(Duration::from_millis(500));
        }
    });

    // A new kill schedule on every run; the seed is printed to replay one.
    let seed: u64 = std::env::var("VIDEOCOUNTER_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("kill schedule seed: VIDEOCOUNTER_KILL_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut kills = 0;
    let started = Instant::now();
    while !producing.is_finished() || kills < 5 {
        std::thread::sleep(Duration::from_millis(rng.random_range(700..3_000)));
        let victim = rng.random_range(0..workers.len());
        workers[victim].kill();
        kills += 1;
        // Mostly restart at once (static membership keeps the partitions);
        // sometimes stay dead past the 6s session timeout so the partitions move.
        let down = if kills % 3 == 0 {
            Duration::from_secs(8)
        } else {
            Duration::from_millis(rng.random_range(0..1_500))
        };
        std::thread::sleep(down);
        workers[victim].start();
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "kill loop runs too long"
        );
    }
    producing.join().unwrap();
    assert!(kills >= 5);

    let refs: Vec<&WorkerProcess> = workers.iter().collect();
    wait_caught_up(&app, Duration::from_secs(150), &refs);
    let outputs = read_outputs(&app);
    assert_counts_equal(&final_counts(&outputs), &truth);
    assert!(
        videocounter_e2e::kafka::read_to_end(
            &app.dead_letter_topic(),
            videocounter_e2e::kafka::Isolation::ReadCommitted,
            Duration::from_secs(30)
        )
        .is_empty(),
        "no record may be dead-lettered"
    );
    app.cleanup();
}

/// A crashed owner's transaction holds an offset commit for the input
/// partitions (KIP-447): the next owners wait until it ends and start at the
/// group's committed offsets, never from the beginning, even while the
/// assignment changes during the wait (which made librdkafka 2.12 start
/// such partitions from `auto.offset.reset`).
#[tokio::test(flavor = "multi_thread")]
async fn partitions_held_by_an_open_transaction_start_at_their_committed_offsets() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use rdkafka::{Offset, TopicPartitionList};
    use videocounter_e2e::{kafka, unique_name};

    let app = TestApp::new("eos-unstable");
    app.create_input(6).await;
    let first = events(10_000, 40, 20 * 60_000, 21);
    let second = events(10_000, 40, 20 * 60_000, 22);
    let mut truth = ground_truth(&app, &first);
    for (k, v) in ground_truth(&app, &second) {
        *truth.entry(k).or_default() += v;
    }

    let mut a = app.ready_worker("worker-a");
    produce_raw(&app.input, &first);
    wait_caught_up(&app, Duration::from_secs(60), &[&a]);
    assert!(a.terminate(Duration::from_secs(30)).success());

    // The "crashed owner": a transaction that commits offsets 3 for every input
    // partition, left open.
    let outsider: BaseConsumer = kafka::client_config()
        .set("group.id", &app.app)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = outsider.group_metadata().expect("group metadata");
    let open: ThreadedProducer<DefaultProducerContext> = kafka::client_config()
        .set("transactional.id", unique_name("eos-unstable-owner"))
        .set("transaction.timeout.ms", "60000")
        .create()
        .unwrap();
    open.init_transactions(Duration::from_secs(30)).unwrap();
    open.begin_transaction().unwrap();
    open.send(BaseRecord::<(), [u8]>::to(&app.dead_letter_topic()).payload(b"from the crashed owner"))
        .map_err(|(e, _)| e)
        .unwrap();
    let mut held = TopicPartitionList::new();
    for p in 0..6 {
        held.add_partition_offset(&app.input, p, Offset::Offset(3))
            .unwrap();
    }
    open.send_offsets_to_transaction(&held, &metadata, Duration::from_secs(30))
        .expect("the open transaction holds offset commits");

    // A new owner gets the partitions (once the group lets worker-a's static
    // membership go) and waits for the transaction; meanwhile another worker
    // joins, so the assignment changes during the wait.
    let mut b = app.worker("worker-b");
    let mut c = app.worker("worker-c");
    b.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // ("partitions assigned": versions that read no offsets themselves)
    while !["assignment received", "partitions assigned"]
        .iter()
        .any(|line| b.log_text().contains(line))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "worker-b got no partitions\n{}",
            b.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.start();
    std::thread::sleep(Duration::from_secs(5));
    open.abort_transaction(Duration::from_secs(30)).unwrap();
    b.wait_ready(Duration::from_secs(90));
    c.wait_ready(Duration::from_secs(90));

    produce_raw(&app.input, &second);
    wait_caught_up(&app, Duration::from_secs(120), &[&b, &c]);
    assert_counts_equal(&final_counts(&read_outputs(&app)), &truth);
    app.cleanup();
}
