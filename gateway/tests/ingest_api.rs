//! The ingest API against the real broker: what lands in the input topic
//! for valid requests, nothing for invalid ones, and a prompt 503 when
//! Kafka cannot be reached.

mod common;

use common::{Gateway, free_port, http, json, raw_records, records};
use rdkafka::Message;
use std::collections::BTreeSet;
use videocounter_e2e::kafka;
use videocounter_e2e::unique_name;

async fn gateway_for(topic: &str, format: &str, extra: &[&str]) -> Gateway {
    let bootstrap = kafka::bootstrap();
    let mut args = vec![
        "--bootstrap-servers",
        bootstrap.as_str(),
        "--input-topic",
        topic,
        "--input-format",
        format,
        "--output-topics",
        "gateway-test-unused-output",
    ];
    args.extend_from_slice(extra);
    Gateway::start(&args).await
}

#[tokio::test]
async fn raw_likes_are_one_record_each_keyed_and_valued_by_the_video_id() {
    let topic = unique_name("gw-ingest-raw");
    kafka::create_topic(&topic, 3, &[]).await;
    let gw = gateway_for(&topic, "raw", &[]).await;
    let client = http();

    let (status, body) = json(
        client
            .post(gw.url("/videos/cat-video/likes"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"video_id": "cat-video", "count": 1, "records": 1})
    );

    let (status, body) = json(
        client
            .post(gw.url("/videos/cat-video/likes"))
            .body(r#"{"count": 3}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["records"], 3);

    // A percent-encoded id is decoded: the record carries the id itself.
    let (status, _) = json(
        client
            .post(gw.url("/videos/vid%C3%A9o%201/likes"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202);

    let messages = raw_records(&topic);
    let got: Vec<(String, String)> = records(&topic);
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(
        got.iter()
            .filter(|(k, v)| k == "cat-video" && v == "cat-video")
            .count(),
        4
    );
    assert_eq!(
        got.iter()
            .filter(|(k, v)| k == "vidéo 1" && v == "vidéo 1")
            .count(),
        1
    );
    // One video, one partition (keyed), so its likes stay in order for the worker.
    let partitions: BTreeSet<i32> = messages
        .iter()
        .filter(|m| m.key() == Some(b"cat-video".as_slice()))
        .map(|m| m.partition())
        .collect();
    assert_eq!(partitions.len(), 1);
}

#[tokio::test]
async fn json_likes_are_like_events_and_batches_write_every_item() {
    let topic = unique_name("gw-ingest-json");
    kafka::create_topic(&topic, 2, &[]).await;
    let gw = gateway_for(&topic, "json", &[]).await;
    let client = http();

    let (status, body) = json(
        client
            .post(gw.url("/videos/v1/likes"))
            .body(r#"{"count": 5, "ts": 1700000000123}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = json(
        client
            .post(gw.url("/likes"))
            .body(r#"[{"video_id": "v2", "count": 2}, {"video_id": "v3"}]"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, serde_json::json!({"items": 2, "likes": 3, "records": 2}));

    let messages = raw_records(&topic);
    assert_eq!(messages.len(), 3);
    let mut events: Vec<serde_json::Value> = Vec::new();
    for m in &messages {
        let value: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        assert_eq!(m.key().unwrap(), value["video_id"].as_str().unwrap().as_bytes());
        // The record timestamp is the like's time.
        assert_eq!(m.timestamp().to_millis(), value["ts"].as_i64());
        events.push(value);
    }
    events.sort_by_key(|e| e["video_id"].as_str().unwrap().to_owned());
    assert_eq!(
        events[0],
        serde_json::json!({"video_id": "v1", "count": 5, "ts": 1_700_000_000_123_i64})
    );
    assert_eq!(events[1]["video_id"], "v2");
    assert_eq!(events[1]["count"], 2);
    assert_eq!(events[2]["video_id"], "v3");
    assert_eq!(events[2]["count"], 1);
}

#[tokio::test]
async fn invalid_requests_get_json_errors_and_write_nothing() {
    let topic = unique_name("gw-ingest-invalid");
    kafka::create_topic(&topic, 1, &[]).await;
    let gw = gateway_for(&topic, "raw", &["--max-body-bytes", "1024"]).await;
    let client = http();
    let long_id = "x".repeat(300);
    let cases: Vec<(String, String, u16, &str)> = vec![
        (
            format!("/videos/{long_id}/likes"),
            String::new(),
            400,
            "invalid_video_id",
        ),
        (
            "/videos/a%07b/likes".into(),
            String::new(),
            400,
            "invalid_video_id",
        ),
        ("/videos/v/likes".into(), "{".into(), 400, "invalid_body"),
        (
            "/videos/v/likes".into(),
            r#"{"count": 0}"#.into(),
            400,
            "invalid_body",
        ),
        (
            "/videos/v/likes".into(),
            r#"{"count": 1001}"#.into(),
            400,
            "invalid_body",
        ),
        (
            "/videos/v/likes".into(),
            r#"{"cnt": 1}"#.into(),
            400,
            "invalid_body",
        ),
        (
            "/videos/v/likes".into(),
            format!(r#"{{"count": 1, "pad": "{}"}}"#, "p".repeat(2000)),
            413,
            "body_too_large",
        ),
        ("/likes".into(), "[]".into(), 400, "invalid_body"),
        (
            "/likes".into(),
            r#"[{"video_id": "ok"}, {"video_id": ""}]"#.into(),
            400,
            "invalid_video_id",
        ),
        (
            "/likes".into(),
            format!("[{}]", vec![r#"{"video_id":"v"}"#; 200].join(",")),
            413,
            "body_too_large",
        ),
    ];
    for (path, body, want_status, want_code) in cases {
        let (status, value) = json(client.post(gw.url(&path)).body(body).send().await.unwrap()).await;
        let shown = &path[..path.len().min(40)];
        assert_eq!(status, want_status, "{shown}: {value}");
        assert_eq!(value["code"], want_code, "{shown}: {value}");
        assert!(
            value["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{shown}: {value}"
        );
    }
    let (status, value) = json(client.get(gw.url("/no/such/route")).send().await.unwrap()).await;
    assert_eq!((status, value["code"].as_str()), (404, Some("not_found")));

    // Ids the error quotes as they were sent, naming what is wrong.
    for (path, error) in [
        (
            "/videos/%20/likes",
            "invalid video id \" \": video id is blank (only whitespace)",
        ),
        (
            "/videos/cat%20/likes",
            "invalid video id \"cat \": video id starts or ends with whitespace",
        ),
        (
            "/videos/%FF/likes",
            "invalid video id \"%FF\": it is not UTF-8 once percent-decoded",
        ),
        (
            "/videos/%FF/counts",
            "invalid video id \"%FF\": it is not UTF-8 once percent-decoded",
        ),
    ] {
        let request = if path.ends_with("/likes") {
            client.post(gw.url(path))
        } else {
            client.get(gw.url(path))
        };
        let (status, value) = json(request.send().await.unwrap()).await;
        assert_eq!(
            (status, value["code"].as_str()),
            (400, Some("invalid_video_id")),
            "{path}: {value}"
        );
        assert_eq!(value["error"], error, "{path}");
    }

    // The wrong method on a known path: JSON too, saying which method to use.
    let response = client.get(gw.url("/videos/v/likes")).send().await.unwrap();
    let allow = response
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, value) = json(response).await;
    assert_eq!(
        (status, value["code"].as_str()),
        (405, Some("method_not_allowed")),
        "{value}"
    );
    assert_eq!(value["error"], "GET is not allowed on /videos/v/likes; use POST");
    assert_eq!(allow.as_deref(), Some("POST"));

    // A valid like afterwards is the only record in the topic.
    let (status, _) = json(client.post(gw.url("/videos/v/likes")).send().await.unwrap()).await;
    assert_eq!(status, 202);
    assert_eq!(records(&topic), [("v".to_owned(), "v".to_owned())]);
}

#[tokio::test]
async fn unreachable_kafka_gives_503_with_a_clear_message() {
    // Nothing listens on this port: the broker is "down" for this gateway only.
    let dead = format!("127.0.0.1:{}", free_port());
    let gw = Gateway::start(&[
        "--bootstrap-servers",
        &dead,
        "--input-topic",
        "unreachable-test",
        "--delivery-timeout",
        "2s",
    ])
    .await;
    let client = http();
    let (status, body) = json(client.post(gw.url("/videos/v/likes")).send().await.unwrap()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "kafka_unavailable");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("did not acknowledge") && error.contains(&dead) && error.contains("0 of 1 records"),
        "{error}"
    );
    let (status, body) = json(
        client
            .post(gw.url("/likes"))
            .body(r#"[{"video_id": "a"}, {"video_id": "b"}]"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503, "{body}");

    // The status strip and the readiness probe say so too.
    let status = videocounter_e2e::kube::eventually(
        "status to report Kafka unreachable",
        std::time::Duration::from_secs(20),
        || {
            let client = client.clone();
            let url = gw.url("/status");
            async move {
                let (_, s) = json(client.get(url).send().await.ok()?).await;
                (s["kafka_reachable"] == false).then_some(s)
            }
        },
    )
    .await;
    assert!(status["kafka_error"].as_str().is_some());
    let ready = client.get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
}

#[tokio::test]
async fn a_missing_input_topic_gives_503() {
    let topic = unique_name("gw-ingest-missing"); // never created; the broker does not auto-create
    let gw = gateway_for(&topic, "raw", &["--delivery-timeout", "2s"]).await;
    let (status, body) = json(http().post(gw.url("/videos/v/likes")).send().await.unwrap()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "kafka_unavailable");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("the input topic {topic:?} does not exist")),
        "{error}"
    );
}
