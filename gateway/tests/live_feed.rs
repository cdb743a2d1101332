//! The live side against the real broker: window counts produced to the
//! output topics (as the worker does) show up in `/videos`, the counts
//! endpoints and the Server-Sent Events streams.

mod common;

use common::{Gateway, http, json};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;
use videocounter_e2e::kafka;
use videocounter_e2e::kube::eventually;
use videocounter_e2e::unique_name;
use videocounter_protocol::WindowCountRecord;

struct Outputs {
    one: String,
    five: String,
    producer: FutureProducer,
}

impl Outputs {
    async fn create() -> Self {
        let one = unique_name("gw-out-1");
        let five = unique_name("gw-out-5");
        kafka::create_topic(&one, 2, &[]).await;
        kafka::create_topic(&five, 2, &[]).await;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", kafka::bootstrap())
            .create()
            .unwrap();
        Self { one, five, producer }
    }

    fn topics_arg(&self) -> String {
        format!("{},{}", self.one, self.five)
    }

    async fn send(&self, record: &WindowCountRecord) {
        let topic = if record.window_type == "1min" {
            &self.one
        } else {
            &self.five
        };
        let payload = serde_json::to_vec(record).unwrap();
        self.send_raw(topic, &record.video_uid, &payload).await;
    }

    async fn send_raw(&self, topic: &str, key: &str, payload: &[u8]) {
        self.producer
            .send(
                FutureRecord::to(topic).key(key).payload(payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("producing an output record");
    }
}

fn record(video: &str, window_type: &str, start: i64, count: u64) -> WindowCountRecord {
    let size = if window_type == "1min" { 60_000 } else { 300_000 };
    WindowCountRecord {
        window_type: window_type.into(),
        video_uid: video.into(),
        count,
        window_start: start,
        window_end: start + size,
    }
}

async fn gateway(outputs: &Outputs) -> Gateway {
    let bootstrap = kafka::bootstrap();
    Gateway::start(&[
        "--bootstrap-servers",
        &bootstrap,
        "--output-topics",
        &outputs.topics_arg(),
        "--input-topic",
        "gateway-live-test-unused-input",
    ])
    .await
}

/// Reads Server-Sent Events from a streaming response.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(url: String) -> Self {
        let response = http().get(url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next (event name, data) pair, skipping keep-alive comments.
    async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !data.is_empty() {
                    return (name, data);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.response.chunk())
                .await
                .expect("no event within 30 s")
                .unwrap()
                .expect("the event stream ended");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    async fn next_count(&mut self) -> WindowCountRecord {
        let (name, data) = self.next().await;
        assert_eq!(name, "count", "{data}");
        serde_json::from_str(&data).unwrap()
    }
}

#[tokio::test]
async fn counts_are_served_per_video_and_window() {
    let out = Outputs::create().await;
    // Written before the gateway starts: it reads recent history at start.
    out.send(&record("a", "1min", 60_000 * 1000, 3)).await;
    out.send(&record("a", "1min", 60_000 * 1000, 5)).await;
    let gw = gateway(&out).await;
    out.send(&record("a", "1min", 60_000 * 1001, 2)).await;
    out.send(&record("a", "5min", 60_000 * 1000, 7)).await;
    out.send(&record("b", "1min", 60_000 * 1001, 1)).await;
    out.send_raw(&out.one, "junk", b"not a count").await;

    let client = http();
    let counts = eventually("a's counts", Duration::from_secs(30), || {
        let (client, url) = (client.clone(), gw.url("/videos/a/counts"));
        async move {
            let (status, body) = json(client.get(url).send().await.ok()?).await;
            (status == 200 && body["counts"]["5min"]["count"] == 7 && body["counts"]["1min"]["count"] == 2)
                .then_some(body)
        }
    })
    .await;
    assert_eq!(
        counts["counts"]["1min"],
        serde_json::json!({"count": 2, "window_start": 60_060_000, "window_end": 60_120_000})
    );

    let (status, windows) = json(client.get(gw.url("/videos/a/windows")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let one: Vec<u64> = windows["windows"]["1min"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["count"].as_u64().unwrap())
        .collect();
    assert_eq!(
        one,
        [5, 2],
        "the newest record of a window wins, oldest window first"
    );

    let list = eventually("both videos listed", Duration::from_secs(30), || {
        let (client, url) = (client.clone(), gw.url("/videos"));
        async move {
            let (_, body) = json(client.get(url).send().await.ok()?).await;
            (body["total"] == 2).then_some(body)
        }
    })
    .await;
    let mut ids: Vec<&str> = list["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["video_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);

    let (status, body) = json(client.get(gw.url("/videos/nobody/counts")).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    // Five window counts read, and the junk record skipped (not stored, not fatal).
    eventually(
        "the junk record to be counted as undecodable",
        Duration::from_secs(30),
        || {
            let (client, url) = (client.clone(), gw.url("/metrics"));
            async move {
                let text = client.get(url).send().await.ok()?.text().await.ok()?;
                (text.contains("videocounter_gateway_undecodable_records_total 1")
                    && text.contains("videocounter_gateway_count_updates_total 5"))
                .then_some(())
            }
        },
    )
    .await;
    assert!(
        json(client.get(gw.url("/videos/junk/counts")).send().await.unwrap())
            .await
            .0
            == 404
    );
}

#[tokio::test]
async fn event_streams_send_the_snapshot_then_changes_of_their_videos() {
    let out = Outputs::create().await;
    let gw = gateway(&out).await;
    out.send(&record("x", "1min", 0, 1)).await;
    let client = http();
    eventually("x known", Duration::from_secs(30), || {
        let (client, url) = (client.clone(), gw.url("/videos/x/counts"));
        async move { (client.get(url).send().await.ok()?.status() == 200).then_some(()) }
    })
    .await;

    let mut x_stream = Events::open(gw.url("/videos/x/events")).await;
    assert_eq!(
        x_stream.next_count().await,
        record("x", "1min", 0, 1),
        "snapshot first"
    );
    let mut firehose = Events::open(gw.url("/events")).await;
    let mut pair = Events::open(gw.url("/events?videos=y,x")).await;
    assert_eq!(
        pair.next_count().await,
        record("x", "1min", 0, 1),
        "snapshot of listed videos"
    );

    out.send(&record("y", "1min", 0, 4)).await;
    out.send(&record("x", "5min", 0, 9)).await;

    // The firehose sees both (in either order: they may be on different partitions).
    let mut seen = vec![firehose.next_count().await, firehose.next_count().await];
    seen.sort_by(|a, b| a.video_uid.cmp(&b.video_uid));
    assert_eq!(seen, [record("x", "5min", 0, 9), record("y", "1min", 0, 4)]);
    let mut seen = vec![pair.next_count().await, pair.next_count().await];
    seen.sort_by(|a, b| a.video_uid.cmp(&b.video_uid));
    assert_eq!(seen, [record("x", "5min", 0, 9), record("y", "1min", 0, 4)]);
    // x's own stream gets x's change and never y's.
    assert_eq!(x_stream.next_count().await, record("x", "5min", 0, 9));
    out.send(&record("x", "1min", 0, 2)).await;
    assert_eq!(x_stream.next_count().await, record("x", "1min", 0, 2));

    let metrics = client
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("videocounter_gateway_feed_subscribers 3"),
        "{metrics}"
    );
}

/// `recent=N`: the stream carries the N most recently counted videos as
/// `event: recent` (what `GET /videos?limit=N` lists), again whenever a count
/// changes them; without `videos`, no count events at all.
#[tokio::test]
async fn the_recent_list_comes_on_the_stream_and_follows_the_counts() {
    let out = Outputs::create().await;
    let gw = gateway(&out).await;
    out.send(&record("a", "1min", 0, 1)).await;
    out.send(&record("b", "1min", 0, 1)).await;
    let client = http();
    eventually("a and b known", Duration::from_secs(30), || {
        let (client, url) = (client.clone(), gw.url("/videos"));
        async move {
            let (_, body) = json(client.get(url).send().await.ok()?).await;
            (body["total"] == 2).then_some(())
        }
    })
    .await;

    let mut recent = Events::open(gw.url("/events?recent=1")).await;
    let (name, data) = recent.next().await;
    assert_eq!(name, "recent", "{data}");
    let first: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(first["total"], 2, "{first}");
    assert_eq!(first["videos"].as_array().unwrap().len(), 1, "{first}");
    let (_, listed) = json(client.get(gw.url("/videos?limit=1")).send().await.unwrap()).await;
    assert_eq!(
        first["videos"], listed["videos"],
        "the stream lists what GET /videos lists"
    );

    // A new count for `a` puts it first with its new count.
    out.send(&record("a", "1min", 0, 7)).await;
    let next = loop {
        let (name, data) = recent.next().await;
        assert_eq!(name, "recent", "a count event on a recent-only stream: {data}");
        let value: serde_json::Value = serde_json::from_str(&data).unwrap();
        if value["videos"][0]["latest"]["1min"]["count"] == 7 {
            break value;
        }
    };
    assert_eq!(next["videos"][0]["video_id"], "a", "{next}");

    // With videos, both kinds of events arrive on one stream.
    let mut both = Events::open(gw.url("/events?videos=b&recent=5")).await;
    let mut names = Vec::new();
    while names.len() < 2 {
        names.push(both.next().await.0);
    }
    names.sort();
    assert_eq!(names, ["count", "recent"]);
}
