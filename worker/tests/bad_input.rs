//! Bad records and bad environments: dead letters with the error in a
//! header, good records around them counted; a broken topic layout or an
//! unreachable broker gives a clear not-ready state, never a crash.

mod common;

use common::*;
use rdkafka::Message;
use rdkafka::message::Headers;
use rdkafka::producer::BaseRecord;
use std::time::Duration;
use videocounter_e2e::kafka::{self, Isolation};

#[tokio::test(flavor = "multi_thread")]
async fn malformed_records_go_to_the_dead_letter_topic_and_good_ones_are_counted() {
    let mut app = TestApp::new("bad-json");
    app.input_format = "json";
    app.create_input(2).await;

    let good: Vec<Event> = events(3_000, 10, 10 * 60_000, 5);
    let mut truth = ground_truth(&app, &good);
    let long_id = "x".repeat(300);
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "invalid_json"),
        (br#"{"video_id":"v","count":-3}"#.to_vec(), "negative_count"),
        (br#"{"video_id":""}"#.to_vec(), "empty_id"),
        (
            format!(r#"{{"video_id":"{long_id}"}}"#).into_bytes(),
            "id_too_long",
        ),
        (vec![0xff, 0xfe, b'{'], "invalid_utf8"),
        (br#"{"count":2}"#.to_vec(), "invalid_json"),
        (br#"{"video_id":"v","ts":-5}"#.to_vec(), "timestamp_out_of_range"),
    ];

    let p = producer();
    // Interleave: every good event, with a bad record after every 400th.
    let mut bad_iter = bad.iter();
    for (i, e) in good.iter().enumerate() {
        let value = if i % 3 == 0 {
            // Some events carry count and ts explicitly; the record time is then ignored.
            format!(r#"{{"video_id":"{}","count":1,"ts":{}}}"#, e.video_id, e.ts)
        } else {
            format!(r#"{{"video_id":"{}"}}"#, e.video_id)
        };
        let record_ts = if i % 3 == 0 { 0 } else { e.ts };
        send(
            &p,
            BaseRecord::<(), [u8]>::to(&app.input)
                .payload(value.as_bytes())
                .timestamp(record_ts),
        );
        if i % 400 == 200
            && let Some((b, _)) = bad_iter.next()
        {
            send(
                &p,
                BaseRecord::<(), [u8]>::to(&app.input)
                    .payload(&b[..])
                    .timestamp(e.ts),
            );
        }
    }
    // A record with a count of 5 counts five likes.
    let base = *BASE_TS;
    let five = format!(r#"{{"video_id":"video-0","count":5,"ts":{base}}}"#);
    send(
        &p,
        BaseRecord::<(), [u8]>::to(&app.input)
            .payload(five.as_bytes())
            .timestamp(base),
    );
    for w in &app.windows {
        *truth
            .entry((w.label.to_string(), "video-0".into(), base - base % w.size_ms))
            .or_default() += 5;
    }
    rdkafka::producer::Producer::flush(&p, Duration::from_secs(30)).unwrap();
    assert!(bad_iter.next().is_none(), "every bad record was sent");

    let mut w = app.ready_worker("worker-a");
    wait_caught_up(&app, Duration::from_secs(90), &[&w]);
    assert_counts_equal(&final_counts(&read_outputs(&app)), &truth);

    let dead = kafka::read_to_end(
        &app.dead_letter_topic(),
        Isolation::ReadCommitted,
        Duration::from_secs(30),
    );
    let mut got: Vec<(Vec<u8>, String)> = dead
        .iter()
        .map(|m| {
            let headers = m.headers().expect("dead letters carry headers");
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_else(|| panic!("header {name} missing"))
            };
            assert!(!header("videocounter.error").is_empty());
            assert_eq!(header("videocounter.source.topic"), app.input);
            (m.payload().unwrap().to_vec(), header("videocounter.error.kind"))
        })
        .collect();
    got.sort();
    let mut want: Vec<(Vec<u8>, String)> = bad.iter().map(|(b, k)| (b.clone(), k.to_string())).collect();
    want.sort();
    assert_eq!(got, want);

    let metrics = w.get_text("/metrics").unwrap().1;
    assert!(
        metrics.contains("videocounter_dead_letter_records_total{reason=\"invalid_json\"} 2"),
        "{metrics}"
    );
    assert!(w.is_running());
    app.cleanup();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changelog_with_the_wrong_partition_count_keeps_the_worker_alive_and_not_ready() {
    let app = TestApp::new("bad-layout");
    app.create_input(2).await;
    kafka::create_topic(&app.changelog_topic(), 3, &[("cleanup.policy", "compact")]).await;
    let mut w = app.worker("worker-a");
    w.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let reason = loop {
        if let Some((503, body)) = w.get("/readyz") {
            let reason = body["reason"].as_str().unwrap_or_default().to_string();
            if reason.contains("partitions") {
                break reason;
            }
        }
        assert!(std::time::Instant::now() < deadline, "{}", w.log_tail(20));
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        reason.contains(&format!(
            "topic {} has 3 partitions, 4 are needed",
            app.changelog_topic()
        )),
        "{reason}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(w.is_running(), "{}", w.log_tail(20));
    assert_eq!(w.get("/healthz").unwrap().0, 200);
    assert_eq!(w.get("/readyz").unwrap().0, 503);
    assert!(w.log_text().contains("has 3 partitions"));
    app.cleanup();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_broker_keeps_the_worker_alive_and_not_ready() {
    let mut app = TestApp::new("bad-broker");
    let dead_port = free_port();
    let mut w = app.worker("worker-a");
    app.input = "unused".into();
    let yaml = app
        .config_yaml()
        .replace(&kafka::bootstrap(), &format!("127.0.0.1:{dead_port}"));
    std::fs::write(&w.config, yaml).unwrap();
    w.start();
    std::thread::sleep(Duration::from_secs(5));
    assert!(w.is_running(), "{}", w.log_tail(20));
    assert_eq!(w.get("/healthz").unwrap().0, 200);
    let (code, body) = w.get("/readyz").unwrap();
    assert_eq!(code, 503, "{body}");
    assert_eq!(w.terminate(Duration::from_secs(15)).code(), Some(0));
    app.cleanup();
}

#[test]
fn invalid_configuration_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "kafka:\n  bootstrapServers: k:9092\nwindows: []\nbogusField: 1\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_videocounter-worker"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("bogusField"),
        "{stderr}"
    );
}
