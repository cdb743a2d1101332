//! `videocounter-loadgen` against the real broker: the report matches the
//! topic exactly, Zipf skews toward low ranks, replays send every event.

mod common;

use common::{LOADGEN, raw_records, records};
use rdkafka::Message;
use std::collections::BTreeMap;
use std::process::Command;
use videocounter_e2e::kafka;
use videocounter_e2e::unique_name;

fn loadgen(args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(LOADGEN)
        .args(args)
        .output()
        .expect("running videocounter-loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (out.status.success(), report, stderr)
}

#[tokio::test]
async fn generate_writes_exactly_what_it_reports_with_a_zipf_skew() {
    let topic = unique_name("gw-loadgen-zipf");
    kafka::create_topic(&topic, 3, &[]).await;
    let bootstrap = kafka::bootstrap();
    let (ok, report, stderr) = loadgen(&[
        "generate",
        "--bootstrap-servers",
        &bootstrap,
        "--topic",
        &topic,
        "--videos",
        "50",
        "--rate-per-minute",
        "600",
        "--distribution",
        "zipf",
        "--zipf-s",
        "1.1",
        "--duration",
        "3s",
        "--seed",
        "42",
    ]);
    assert!(ok, "{stderr}");
    let acknowledged = report["acknowledged"].as_u64().unwrap();
    assert_eq!(report["failed"], 0, "{report}");
    assert!(
        acknowledged > 500,
        "500 per second for 3 s sent only {acknowledged}: {report}"
    );

    let got = records(&topic);
    assert_eq!(got.len() as u64, acknowledged, "nothing lost, nothing doubled");
    let mut per_video: BTreeMap<String, u64> = BTreeMap::new();
    for (key, value) in &got {
        assert_eq!(key, value);
        let rank: u32 = key.strip_prefix("video-").unwrap().parse().unwrap();
        assert!((1..=50).contains(&rank), "{key}");
        *per_video.entry(key.clone()).or_default() += 1;
    }
    let n = |k: &str| per_video.get(k).copied().unwrap_or(0);
    assert!(
        n("video-1") > n("video-2") && n("video-2") > n("video-10"),
        "rank 1 > rank 2 > rank 10 expected: {per_video:?}"
    );
}

#[tokio::test]
async fn replay_of_csv_sends_every_event_with_its_timestamp() {
    let topic = unique_name("gw-loadgen-csv");
    kafka::create_topic(&topic, 2, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.csv");
    let mut csv = String::from("ts,video_id,count\n");
    for i in 0..20 {
        csv.push_str(&format!(
            "{},r{},{}\n",
            1_700_000_000_000_i64 + i,
            i % 4,
            1 + i % 2
        ));
    }
    std::fs::write(&file, csv).unwrap();
    let bootstrap = kafka::bootstrap();
    let (ok, report, stderr) = loadgen(&[
        "replay",
        "--bootstrap-servers",
        &bootstrap,
        "--topic",
        &topic,
        "--input-format",
        "json",
        "--file",
        file.to_str().unwrap(),
        "--rate",
        "200",
        "--keep-timestamps",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(report["acknowledged"], 20, "{report}");

    let mut events: Vec<(i64, String, i64, Option<i64>)> = raw_records(&topic)
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            (
                v["ts"].as_i64().unwrap(),
                v["video_id"].as_str().unwrap().to_owned(),
                v["count"].as_i64().unwrap(),
                m.timestamp().to_millis(),
            )
        })
        .collect();
    events.sort();
    let want: Vec<(i64, String, i64, Option<i64>)> = (0..20)
        .map(|i| {
            let ts = 1_700_000_000_000_i64 + i;
            (ts, format!("r{}", i % 4), 1 + i % 2, Some(ts))
        })
        .collect();
    assert_eq!(events, want);
}

#[tokio::test]
async fn replay_of_json_lines_stops_at_the_first_invalid_line_and_names_it() {
    let topic = unique_name("gw-loadgen-jsonl");
    kafka::create_topic(&topic, 1, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    std::fs::write(
        &file,
        "{\"video_id\":\"j1\"}\n{\"video_id\":\"j2\",\"count\":2}\n{\"video_id\":\"\"}\n{\"video_id\":\"j3\"}\n",
    )
    .unwrap();
    let bootstrap = kafka::bootstrap();
    let base = [
        "replay",
        "--bootstrap-servers",
        bootstrap.as_str(),
        "--topic",
        topic.as_str(),
        "--file",
        file.to_str().unwrap(),
        "--rate",
        "1000",
    ];
    let (ok, _, stderr) = loadgen(&base);
    assert!(!ok);
    assert!(
        stderr.contains("events.jsonl: line 3: invalid video id"),
        "{stderr}"
    );
    // Raw format: j1 once, j2 twice, then the replay stopped.
    let mut got: Vec<String> = records(&topic).into_iter().map(|(_, v)| v).collect();
    got.sort();
    assert_eq!(got, ["j1", "j2", "j2"]);

    let mut skipping = base.to_vec();
    skipping.push("--skip-invalid");
    let (ok, report, stderr) = loadgen(&skipping);
    assert!(ok, "{stderr}");
    assert_eq!(report["acknowledged"], 4, "{report}");
    assert_eq!(report["skipped"], 1, "{report}");
}
