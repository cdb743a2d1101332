//! The dashboard's generator controls against the real broker: what the
//! generator reports as sent is exactly what is in the input topic.

mod common;

use common::{Gateway, http, json, records};
use std::collections::BTreeMap;
use std::time::Duration;
use videocounter_e2e::kafka;
use videocounter_e2e::kube::eventually;
use videocounter_e2e::unique_name;

#[tokio::test]
async fn generator_sends_what_it_reports_at_the_set_rates() {
    let topic = unique_name("gw-generator");
    kafka::create_topic(&topic, 3, &[]).await;
    let bootstrap = kafka::bootstrap();
    let gw = Gateway::start(&[
        "--bootstrap-servers",
        &bootstrap,
        "--input-topic",
        &topic,
        "--output-topics",
        "gateway-generator-test-unused",
        // The same sequence of picks every run: the split below does not depend on luck.
        "--generate-seed",
        "7",
    ])
    .await;
    let client = http();

    let (status, body) = json(client.get(gw.url("/generator")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["running"], false);

    // 600 and 1200 likes per minute: 10 and 20 per second.
    let spec = serde_json::json!({"mode": "per_video", "rates": {"g1": 600, "g2": 1200}});
    let (status, body) = json(client.put(gw.url("/generator")).json(&spec).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total_per_minute"], 1800.0);
    let (_, body) = json(client.post(gw.url("/generator/start")).send().await.unwrap()).await;
    assert_eq!(body["running"], true);

    eventually("300 generated likes", Duration::from_secs(60), || {
        let (client, url) = (client.clone(), gw.url("/generator"));
        async move {
            let (_, s) = json(client.get(url).send().await.ok()?).await;
            (s["sent"].as_u64()? >= 300).then_some(())
        }
    })
    .await;
    let (_, body) = json(client.post(gw.url("/generator/stop")).send().await.unwrap()).await;
    assert_eq!(body["running"], false);
    // Stopped: once the last acknowledgements are in, the tally stops moving.
    let final_status = eventually("the tally to settle", Duration::from_secs(30), || {
        let (client, url) = (client.clone(), gw.url("/generator"));
        async move {
            let (_, a) = json(client.get(url.clone()).send().await.ok()?).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let (_, b) = json(client.get(url).send().await.ok()?).await;
            (a["sent"] == b["sent"]).then_some(b)
        }
    })
    .await;
    assert_eq!(final_status["failed"], 0, "{final_status}");
    let sent = final_status["sent"].as_u64().unwrap();

    let got = records(&topic);
    assert_eq!(
        got.len() as u64,
        sent,
        "the topic holds exactly the likes reported as sent"
    );
    let mut per_video: BTreeMap<String, u64> = BTreeMap::new();
    for (key, value) in &got {
        assert_eq!(key, value, "raw format: key and value are the id");
        *per_video.entry(key.clone()).or_default() += 1;
    }
    assert_eq!(per_video.keys().collect::<Vec<_>>(), ["g1", "g2"]);
    // Twice the rate, about twice the likes (Poisson noise on a few hundred draws).
    let ratio = per_video["g2"] as f64 / per_video["g1"] as f64;
    assert!((1.3..3.0).contains(&ratio), "g2/g1 = {ratio} ({per_video:?})");
}

#[tokio::test]
async fn invalid_generator_specs_are_rejected_and_change_nothing() {
    let bootstrap = kafka::bootstrap();
    let gw = Gateway::start(&[
        "--bootstrap-servers",
        &bootstrap,
        "--input-topic",
        "gateway-generator-invalid-unused",
        "--generate-videos",
        "keep-me",
        "--generate-rate-per-minute",
        "5",
    ])
    .await;
    let client = http();
    for spec in [
        r#"{"mode": "per_video", "rates": {"a": -1}}"#,
        r#"{"mode": "spread", "videos": 0, "rate_per_minute": 1}"#,
        r#"{"mode": "spread", "videos": 10, "rate_per_minute": 1, "distribution": "zipf", "zipf_s": 0}"#,
        r#"{"mode": "sometimes"}"#,
        "not json",
    ] {
        let (status, body) = json(client.put(gw.url("/generator")).body(spec).send().await.unwrap()).await;
        assert_eq!(status, 400, "{spec}: {body}");
        assert_eq!(body["code"], "invalid_traffic", "{spec}: {body}");
    }
    let (_, body) = json(client.get(gw.url("/generator")).send().await.unwrap()).await;
    assert_eq!(
        body["spec"],
        serde_json::json!({"mode": "per_video", "rates": {"keep-me": 5.0}})
    );
    assert_eq!(body["running"], false);
}
