//! Bad specs are rejected by the API server at `kubectl apply` time (schema
//! and CEL rules from the CRD); problems only visible at runtime become a
//! Degraded condition and an Event; `kubectl explain` documents every field.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use std::time::Duration;
use videocounter_e2e::kube::eventually;
use videocounter_e2e::{kafka, unique_name};
use videocounter_operator::crd::ConditionStatus;

const TIMEOUT: Duration = Duration::from_secs(60);

fn valid(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "videocounter.io/v1alpha1",
        "kind": "VideoCounter",
        "metadata": {"name": name},
        "spec": {
            "kafka": {"bootstrapServers": "kafka:9092"},
            "windows": [{"size": "1m"}, {"size": "5m"}]
        }
    })
}

fn with(name: &str, path: &[&str], value: serde_json::Value) -> serde_json::Value {
    let mut doc = valid(name);
    let mut at = &mut doc["spec"];
    for key in path {
        at = &mut at[*key];
    }
    *at = value;
    doc
}

/// `kubectl apply` of `doc`: Ok(stdout) or Err(stderr).
fn kubectl_apply(ns: &str, doc: &serde_json::Value) -> Result<String, String> {
    let out = kubectl(ns, &["apply", "-f", "-"], Some(&doc.to_string()));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The API server's answer to a rejected apply: one line per error.
fn error_lines(stderr: &str) -> Vec<String> {
    let text = stderr.trim();
    match text.split_once("is invalid: ") {
        Some((_, rest)) if rest.starts_with('\n') || rest.is_empty() => rest
            .lines()
            .filter_map(|l| l.trim().strip_prefix("* ").map(String::from))
            .collect(),
        Some((_, rest)) => vec![rest.to_string()],
        None => vec![text.to_string()],
    }
}

/// Rejected with exactly the `expected` messages.
fn assert_messages(ns: &str, doc: &serde_json::Value, expected: &[&str]) {
    let name = doc["metadata"]["name"].as_str().unwrap();
    match kubectl_apply(ns, doc) {
        Ok(out) => panic!("VideoCounter {name} was accepted ({out}); expected {expected:?}"),
        Err(stderr) => {
            let lines = error_lines(&stderr);
            assert_eq!(lines, expected, "{name}: got:\n{stderr}");
        }
    }
}

/// Rejected, with exactly one message, and that message is `expected`.
fn assert_one_message(ns: &str, doc: &serde_json::Value, expected: &str) {
    assert_messages(ns, doc, &[expected]);
}

/// What the API server adds after a missing field, an unknown enum value or
/// a value too long, whenever a CRD has CEL rules (they are skipped then): a
/// note of its own, not a second mistake, and no CRD setting removes it.
const RULES_SKIPPED: &str = "<nil>: Invalid value: null: some validation rules were not checked because \
                             the object was invalid; correct the existing errors to complete validation";

#[tokio::test]
async fn bad_specs_are_rejected_at_apply_time_with_clear_messages() {
    let ns = TestNamespace::new("op-invalid").await;
    let n = &ns.name;
    let pattern = "'^([0-9]+(ms|s|m|h))+$'";
    let cases = [
        (
            with("a", &["windows"], serde_json::json!([])),
            "spec.windows: Invalid value: 0: spec.windows in body should have at least 1 items".to_string(),
        ),
        (
            with(
                "b",
                &["windows"],
                serde_json::json!([{"size": "1m"}, {"size": "5m"}, {"size": "60s"}]),
            ),
            "spec.windows: Forbidden: window sizes must be distinct (\"1m\" and \"60s\" are the same size)".into(),
        ),
        (
            with("c", &["windows"], serde_json::json!([{"size": "0s"}])),
            "spec.windows[0].size: Forbidden: window size \"0s\" must be a positive duration, such as 100ms, 10s or 1m"
                .into(),
        ),
        (
            // Not a duration: the pattern says so, and no rule adds a conversion error.
            with("d", &["windows"], serde_json::json!([{"size": "1 minute"}, {"size": "5m"}])),
            format!(
                "spec.windows[0].size: Invalid value: \"1 minute\": spec.windows[0].size in body should match {pattern}"
            ),
        ),
        (
            with("d2", &["commitInterval"], "fast".into()),
            format!("spec.commitInterval: Invalid value: \"fast\": spec.commitInterval in body should match {pattern}"),
        ),
        (
            with("d3", &["commitInterval"], "0ms".into()),
            "spec.commitInterval: Forbidden: commitInterval \"0ms\" must be a positive duration, such as 100ms, 10s or 1m"
                .into(),
        ),
        (
            with("e", &["replicas"], (-1).into()),
            ".spec.replicas: Invalid value: -1: should be a non-negative integer".into(),
        ),
        (
            with("f", &["rollout"], serde_json::json!({"maxUnavailable": 0})),
            "spec.rollout.maxUnavailable: Forbidden: rollout.maxUnavailable 0 is not allowed: use a pod count of \
             at least 1 or a percentage from 1% to 100%"
                .into(),
        ),
        (
            with("g", &["rollout"], serde_json::json!({"maxUnavailable": "0%"})),
            "spec.rollout.maxUnavailable: Forbidden: rollout.maxUnavailable \"0%\" is not allowed: use a pod count \
             of at least 1 or a percentage from 1% to 100%"
                .into(),
        ),
        (
            with("g2", &["rollout"], serde_json::json!({"maxUnavailable": "150%"})),
            "spec.rollout.maxUnavailable: Forbidden: rollout.maxUnavailable \"150%\" is not allowed: use a pod \
             count of at least 1 or a percentage from 1% to 100%"
                .into(),
        ),
        (
            with(
                "h",
                &["kafka"],
                serde_json::json!({"bootstrapServers": "k:9093", "securityProtocol": "SASL_SSL"}),
            ),
            "spec.kafka.sasl: Required value: kafka.securityProtocol SASL_SSL needs kafka.sasl (the mechanism and \
             the Secrets holding the user name and password)"
                .into(),
        ),
        (
            with(
                "h2",
                &["kafka"],
                serde_json::json!({"bootstrapServers": "k:9093", "securityProtocol": "SSL",
                    "tls": {"cert": {"name": "client", "key": "tls.crt"}}}),
            ),
            "spec.kafka.tls: Required value: kafka.tls.cert is set without kafka.tls.key: a client certificate \
             needs its key"
                .into(),
        ),
        (
            with("i", &["topics"], serde_json::json!({"partitions": 0})),
            "spec.topics.partitions: Invalid value: 0: spec.topics.partitions in body should be greater than or \
             equal to 1"
                .into(),
        ),
    ];
    for (doc, expected) in &cases {
        assert_one_message(n, doc, expected);
    }
    assert_messages(
        n,
        &with("j", &["kafka"], serde_json::json!({})),
        &["spec.kafka.bootstrapServers: Required value", RULES_SKIPPED],
    );

    // The partition count and the volumes are fixed once created.
    kubectl_apply(n, &valid("fixed")).expect("a valid spec is accepted");
    assert_one_message(
        n,
        &with("fixed", &["topics"], serde_json::json!({"partitions": 12})),
        "spec.topics.partitions: Forbidden: topics.partitions cannot change: it decides which partition (and \
         store) every video id belongs to; create a new VideoCounter with another applicationId instead",
    );
    assert_one_message(
        n,
        &with("fixed", &["storage"], serde_json::json!({"size": "5Gi"})),
        "spec.storage: Forbidden: storage.size and storage.storageClassName cannot change: a StatefulSet's \
         volume claims are immutable",
    );
    kubectl_apply(n, &with("fixed", &["replicas"], 5.into())).expect("replicas may change");

    // An explicit null is pruned and defaulted, never stored (it would not deserialize).
    let nulls = with("nulls", &["rollout"], serde_json::json!({"maxUnavailable": null}));
    let out = kubectl(n, &["create", "-f", "-"], Some(&nulls.to_string()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vc = ns.vcs().get("nulls").await.unwrap();
    assert_eq!(
        vc.spec.rollout.max_unavailable,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("50%".into())
    );

    // Defaults are filled in by the API server.
    let vc = ns.vcs().get("fixed").await.unwrap();
    assert_eq!(vc.spec.topics.partitions, 6);
    assert_eq!(vc.spec.topics.input, "video_clicks_ingestion");
    assert_eq!(vc.spec.grace, "10s");
    assert_eq!(
        vc.spec.rollout.max_unavailable,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("50%".into())
    );
}

#[tokio::test]
async fn kubectl_explain_documents_the_fields() {
    let ns = TestNamespace::new("op-explain").await;
    let out = kubectl_ok(&ns.name, &["explain", "vc.spec.rollout.maxUnavailable"]);
    assert!(out.contains("Most pods unavailable at once"), "{out}");
    let out = kubectl_ok(&ns.name, &["explain", "videocounter.spec.windows"]);
    assert!(out.contains("Tumbling windows to count likes in"), "{out}");
    assert!(out.contains("outputTopic"), "{out}");
    let out = kubectl_ok(&ns.name, &["explain", "vc.spec.kafka.sasl.mechanism"]);
    assert!(out.contains("SCRAM-SHA-512"), "{out}");
}

async fn wait_degraded(ns: &TestNamespace, name: &str) -> (String, String) {
    let vcs = ns.vcs();
    eventually(&format!("{name} Degraded"), TIMEOUT, || async {
        let vc = vcs.get(name).await.ok()?;
        let (status, reason, message) = condition(&vc, "Degraded")?;
        (status == ConditionStatus::True).then_some((reason, message))
    })
    .await
}

async fn event_reasons(ns: &TestNamespace, name: &str) -> Vec<(String, String)> {
    let events: Api<Event> = ns.api();
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn runtime_problems_degrade_the_resource_with_an_event() {
    let ns = TestNamespace::new("op-degraded").await;
    let _operator = Operator::start(&ns.name, "a");

    // An existing changelog with 3 partitions, where 6 are planned.
    let app = unique_name("mismatch");
    kafka::create_topic(
        &format!("{app}-counts-changelog"),
        3,
        &[("cleanup.policy", "compact")],
    )
    .await;
    let mut doc = valid("mismatch");
    doc["spec"]["applicationId"] = app.clone().into();
    doc["spec"]["kafka"]["bootstrapServers"] = kafka::bootstrap().into();
    doc["spec"]["topics"] = serde_json::json!({"input": format!("{app}-in"), "partitions": 6});
    doc["spec"]["windows"] = serde_json::json!([{"size": "1m", "outputTopic": format!("{app}-out")}]);
    kubectl_apply(&ns.name, &doc).unwrap();
    let (reason, message) = wait_degraded(&ns, "mismatch").await;
    assert_eq!(reason, "TopicPartitionMismatch");
    assert!(
        message.contains(&format!(
            "topic {app}-counts-changelog has 3 partitions, 6 are needed"
        )),
        "{message}"
    );
    // Workers never start against wrong topics.
    let sts: Api<StatefulSet> = ns.api();
    assert!(sts.get_opt("mismatch").await.unwrap().is_none());
    let vc = ns.vcs().get("mismatch").await.unwrap();
    assert_eq!(condition(&vc, "Ready").map(|c| c.0), Some(ConditionStatus::False));
    eventually("a TopicPartitionMismatch event", TIMEOUT, || async {
        let events = event_reasons(&ns, "mismatch").await;
        events
            .iter()
            .any(|(r, note)| r == "TopicPartitionMismatch" && note.contains("has 3 partitions"))
            .then_some(())
    })
    .await;

    // Kafka unreachable.
    let mut doc = valid("nobroker");
    doc["spec"]["kafka"]["bootstrapServers"] = "127.0.0.1:1".into();
    kubectl_apply(&ns.name, &doc).unwrap();
    let (reason, message) = wait_degraded(&ns, "nobroker").await;
    assert_eq!(reason, "KafkaUnavailable");
    assert!(
        message.contains("Kafka at 127.0.0.1:1 is unreachable"),
        "{message}"
    );
    // Nothing is created while degraded, and Progressing does not claim otherwise.
    let vc = ns.vcs().get("nobroker").await.unwrap();
    let (status, reason, message) = condition(&vc, "Progressing").unwrap();
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, "Blocked"),
        "{message}"
    );
    assert!(message.contains("KafkaUnavailable"), "{message}");
    assert_eq!(
        condition(&vc, "Ready").map(|c| (c.0, c.1)),
        Some((ConditionStatus::False, "KafkaUnavailable".into()))
    );

    // A Secret that does not exist.
    let mut doc = valid("nosecret");
    doc["spec"]["kafka"] = serde_json::json!({
        "bootstrapServers": kafka::bootstrap(), "securityProtocol": "SASL_PLAINTEXT",
        "sasl": {"mechanism": "PLAIN", "username": {"name": "kafka-user", "key": "user"},
                 "password": {"name": "kafka-user", "key": "password"}}
    });
    kubectl_apply(&ns.name, &doc).unwrap();
    let (reason, message) = wait_degraded(&ns, "nosecret").await;
    assert_eq!(reason, "SecretNotFound");
    assert!(
        message.contains("spec.kafka.sasl.username refers to Secret \"kafka-user\""),
        "{message}"
    );

    // Fixing the cause clears the condition: the mismatched topic is deleted.
    delete_topics(&[format!("{app}-counts-changelog")]).await;
    eventually("mismatch no longer Degraded", Duration::from_secs(90), || async {
        let vc = ns.vcs().get("mismatch").await.ok()?;
        (condition(&vc, "Degraded")?.0 == ConditionStatus::False).then_some(())
    })
    .await;
    delete_topics(&[
        format!("{app}-in"),
        format!("{app}-out"),
        format!("{app}-repartition"),
        format!("{app}-counts-changelog"),
        format!("{app}-dead-letter"),
    ])
    .await;
}
