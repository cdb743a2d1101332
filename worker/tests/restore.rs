//! State survives the loss of a worker's disk: the stores are rebuilt from
//! the changelog topic and counting continues exactly.

mod common;

use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn deleted_data_directory_is_rebuilt_from_the_changelog() {
    let app = TestApp::new("restore-wipe");
    app.create_input(2).await;
    let events = events(40_000, 30, 20 * 60_000, 3);
    let truth = ground_truth(&app, &events);
    let (first, second) = events.split_at(events.len() / 2);

    let mut w = app.ready_worker("worker-a");
    produce_raw(&app.input, first);
    wait_caught_up(&app, Duration::from_secs(90), &[&w]);

    // SIGTERM is a warm shutdown: it exits cleanly and promptly.
    let status = w.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}\n{}", w.log_tail(30));
    assert!(w.log_text().contains("shutdown requested"));

    assert!(w.data_dir.exists());
    remove_dir(&w.data_dir);
    w.start();
    w.wait_ready(Duration::from_secs(90));

    // Every partition was restored from the changelog, not from local files.
    let (_, parts) = w.get("/v1/partitions").unwrap();
    let restored: u64 = parts["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["restored_records"].as_u64().unwrap())
        .sum();
    assert!(restored > 0, "nothing restored: {parts}");
    assert!(w.log_text().contains("partition restored"));

    produce_raw(&app.input, second);
    wait_caught_up(&app, Duration::from_secs(90), &[&w]);
    assert_counts_equal(&final_counts(&read_outputs(&app)), &truth);

    // The queryable store holds the same counts.
    let video = "video-3";
    let (code, body) = w.get(&format!("/v1/counts/{video}")).unwrap();
    assert_eq!(code, 200, "{body}");
    for win in body["windows"].as_array().unwrap() {
        let key = (
            win["type"].as_str().unwrap().to_string(),
            video.to_string(),
            win["window_start"].as_i64().unwrap(),
        );
        assert_eq!(win["count"].as_u64(), truth.get(&key).copied(), "{key:?}");
    }
    let listed = body["windows"].as_array().unwrap().len();
    let expected = truth.keys().filter(|(_, v, _)| v == video).count();
    assert_eq!(listed, expected, "{body}");
    app.cleanup();
}

/// A hung worker (SIGSTOP) still holds its RocksDB stores when its
/// replacement, with the same data directory and instance id, takes its
/// partitions over: the replacement waits for the locks instead of crashing
/// (the Faust LOCK errors), the hung one is fenced when it wakes up, and the
/// counts stay exact.
#[tokio::test(flavor = "multi_thread")]
async fn a_replacement_waits_for_the_stores_a_hung_worker_still_holds() {
    let app = TestApp::new("restore-lock");
    app.create_input(1).await;
    let events = events(4_000, 5, 60_000, 4);
    let truth = ground_truth(&app, &events);

    let mut first = app.ready_worker("worker-a");
    produce_raw(&app.input, &events[..2_000]);
    wait_caught_up(&app, Duration::from_secs(60), &[&first]);

    first.signal("STOP");
    let mut second = app.worker("worker-a");
    second.data_dir = first.data_dir.clone();
    second.log = app.dir.join("worker-a-replacement.log");
    second.start();
    // The replacement is assigned the partitions (at once under the classic
    // protocol, once the broker expires the hung member under KIP-848) and
    // finds their stores locked.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !second.log_text().contains("store is still locked") {
        assert!(std::time::Instant::now() < deadline, "{}", second.log_tail(30));
        assert!(
            second.is_running(),
            "the replacement crashed\n{}",
            second.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(second.get("/readyz").unwrap().0, 503);
    produce_raw(&app.input, &events[2_000..3_000]);

    // The hung worker wakes up: fenced, it gives up its stores and stops
    // (taking its instance id back would fence the replacement in turn).
    first.signal("CONT");
    second.wait_ready(Duration::from_secs(90));
    assert!(second.is_running());
    // (Under KIP-848 the broker refuses its rejoin instead: it stays, idle.)
    let classic = std::env::var("VIDEOCOUNTER_TEST_GROUP_PROTOCOL").map_or(true, |p| p == "classic");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while classic && first.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the fenced worker keeps running\n{}",
            first.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !classic
            || first
                .log_text()
                .contains("another process joined the group with this instance id"),
        "{}",
        first.log_tail(20)
    );
    produce_raw(&app.input, &events[3_000..]);
    wait_caught_up(&app, Duration::from_secs(60), &[&second, &first]);
    assert_counts_equal(&final_counts(&read_outputs(&app)), &truth);
    first.kill();
    app.cleanup();
}
