//! Emit-on-close and retention against the real broker: each window is
//! emitted exactly once when stream time passes its end plus grace, also
//! across a SIGKILL; expired windows leave the store and are tombstoned in
//! the changelog.

mod common;

use common::*;
use rdkafka::Message;
use std::collections::BTreeMap;
use std::time::Duration;
use videocounter_e2e::kafka::{self, Isolation};
use videocounter_worker::count::changelog::for_each_restored;
use videocounter_worker::count::partitioner::partition_for;

fn small_windows(app: &mut TestApp) {
    app.windows = [("10s", 10_000, "10s"), ("30s", 30_000, "30s")]
        .into_iter()
        .map(|(size, size_ms, label)| TestWindow {
            size,
            size_ms,
            label,
            output_topic: format!("{}-out-{size}", app.app),
        })
        .collect();
    app.grace = "5s";
    app.retention = "1m";
}

/// One video id per counting partition, to move every partition's stream time.
fn closer_ids(partitions: u32) -> Vec<String> {
    (0..partitions as i32)
        .map(|p| {
            (0..)
                .map(|i| format!("closer-{i}"))
                .find(|id| partition_for(id.as_bytes(), partitions) == p)
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn on_window_close_emits_every_window_once_and_expired_windows_are_deleted() {
    let mut app = TestApp::new("win-close");
    small_windows(&mut app);
    app.emit = "onWindowClose";
    // One input partition: event time order is kept, so with 5s of grace no event is late.
    app.create_input(1).await;
    let events = events(20_000, 20, 5 * 60_000, 6);
    let truth = ground_truth(&app, &events);
    let (first, second) = events.split_at(events.len() / 2);

    let mut w = app.ready_worker("worker-a");
    produce_raw(&app.input, first);
    wait_caught_up(&app, Duration::from_secs(60), &[&w]);
    let emitted_before_kill = read_outputs(&app).len();
    assert!(
        emitted_before_kill > 0,
        "windows closed during the first half were emitted"
    );

    w.kill();
    w.start();
    w.wait_ready(Duration::from_secs(60));
    produce_raw(&app.input, second);
    // Far-future events in every partition close (and expire) every event window.
    let last_ts = events.last().unwrap().ts;
    let closers: Vec<Event> = closer_ids(app.partitions)
        .into_iter()
        .map(|video_id| Event {
            video_id,
            ts: last_ts + 3_600_000,
        })
        .collect();
    produce_raw(&app.input, &closers);
    wait_caught_up(&app, Duration::from_secs(60), &[&w]);

    let outputs = read_outputs(&app);
    let mut seen: BTreeMap<(String, String, i64), u64> = BTreeMap::new();
    for v in &outputs {
        let key = (
            v["type"].as_str().unwrap().to_string(),
            v["video_uid"].as_str().unwrap().to_string(),
            v["window_start"].as_i64().unwrap(),
        );
        let size = if key.0 == "10s" { 10_000 } else { 30_000 };
        assert_eq!(v["window_end"].as_i64().unwrap(), key.2 + size);
        let previous = seen.insert(key.clone(), v["count"].as_u64().unwrap());
        assert!(previous.is_none(), "window {key:?} emitted twice");
    }
    assert_counts_equal(&seen, &truth);

    // The one worker counts every partition: what it read once ready was
    // counted in the transaction that read it, without the repartition topic.
    let metrics = w.get_text("/metrics").unwrap().1;
    let counted_locally = metrics
        .lines()
        .find_map(|l| l.strip_prefix("videocounter_combined_records_counted_locally_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(counted_locally.is_some_and(|n| n > 0.0), "{metrics}");

    // Every event window expired (retention 1m): tombstoned in the changelog
    // and gone from the store; only the closers' windows remain. The
    // changelog is read as a restore reads it (batches become their windows).
    let mut latest: BTreeMap<Vec<u8>, bool> = BTreeMap::new();
    for m in kafka::read_to_end(
        &app.changelog_topic(),
        Isolation::ReadCommitted,
        Duration::from_secs(60),
    ) {
        for_each_restored(m.key().unwrap(), m.payload(), |k, v| {
            latest.insert(k.to_vec(), v.is_some());
        });
    }
    let live_windows: Vec<String> = latest
        .iter()
        .filter(|(k, live)| **live && k.starts_with(b"w"))
        .map(|(k, _)| String::from_utf8_lossy(&k[17..]).into_owned())
        .collect();
    assert!(!live_windows.is_empty());
    assert!(
        live_windows.iter().all(|id| id.starts_with("closer-")),
        "expired windows still live in the changelog: {live_windows:?}"
    );
    let (code, body) = w.get("/v1/counts/video-1").unwrap();
    if code == 200 {
        assert_eq!(body["windows"].as_array().unwrap().len(), 0, "{body}");
    }
    app.cleanup();
}
