//! Figures for the closing note, not assertions of speed (ignored by default):
//! time from applying a VideoCounter to all its pods Ready (2 and 10
//! replicas), a 10-pod rolling restart, the operator's reconcile durations and
//! its memory. Run with
//! `cargo test --release -p videocounter-operator --test figures -- --ignored --nocapture`.

mod common;

use common::*;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(180);

/// Seconds from `kubectl apply` to the VideoCounter Ready with `replicas` pods.
async fn time_to_ready(ns: &TestNamespace, doc: serde_json::Value, replicas: i32) -> f64 {
    let start = Instant::now();
    let out = kubectl(&ns.name, &["apply", "-f", "-"], Some(&doc.to_string()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_ready_fast(ns, "likes", replicas).await;
    start.elapsed().as_secs_f64()
}

/// Like `wait_ready`, polling every 20 ms for a finer figure.
async fn wait_ready_fast(ns: &TestNamespace, name: &str, replicas: i32) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(vc) = ns.vcs().get(name).await
            && let Some(s) = &vc.status
            && s.observed_generation == vc.metadata.generation
            && s.ready_replicas == replicas
            && s.updated_replicas == replicas
            && condition(&vc, "Ready")
                .is_some_and(|c| c.0 == videocounter_operator::crd::ConditionStatus::True)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} not Ready with {replicas} pods in {TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
#[ignore = "figures, not a test: run with --ignored --nocapture"]
async fn operator_figures() {
    let mut lines = Vec::new();
    let mut rss = Vec::new();
    for replicas in [2, 10] {
        let ns = TestNamespace::new("op-figures").await;
        let operator = Operator::start(&ns.name, "a");
        // Let it take the lease before the clock starts.
        videocounter_e2e::kube::eventually("operator leading", TIMEOUT, || async {
            (operator.metric("videocounter_operator_leader").await? == 1.0).then_some(())
        })
        .await;
        let topics = TestTopics::new(&ns.name);
        let seconds = time_to_ready(&ns, example_counter(&topics, replicas), replicas).await;
        lines.push(format!(
            "kubectl apply -> all {replicas} pods Ready (topics created, children applied): {seconds:.2} s"
        ));
        if replicas == 10 {
            let start = Instant::now();
            merge_patch_vc(
                &ns,
                "likes",
                serde_json::json!({"spec": {"worker": {"image": "example.invalid/videocounter-worker:v2"}}}),
            )
            .await;
            wait_ready_fast(&ns, "likes", replicas).await;
            lines.push(format!(
                "rolling restart of 10 pods at 50% (2 batches): {:.2} s",
                start.elapsed().as_secs_f64()
            ));
        }
        // Each reconcile logs its duration (debug level, on in tests).
        let log = std::fs::read_to_string(&operator.log).unwrap();
        let mut ms: Vec<u64> = log
            .lines()
            .filter_map(|l| {
                l.split("elapsed_ms=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        let first = ms.remove(0);
        ms.sort_unstable();
        lines.push(format!(
            "reconcile durations ({replicas} replicas): first (creates 7 topics) {first} ms; \
             the {} others: median {} ms, max {} ms",
            ms.len(),
            ms[ms.len() / 2],
            ms[ms.len() - 1]
        ));
        rss.push(operator.rss_kib());
        delete_topics(&example_topic_names(&ns.name, &topics)).await;
    }
    lines.push(format!(
        "operator memory after each run (RSS, peak RSS): {rss:?} KiB"
    ));
    println!("\n{}", lines.join("\n"));
}
