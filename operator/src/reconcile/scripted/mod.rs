//! The reconcile's conversation with the API server, checked request by
//! request against a scripted API server ([`api_server`]: a mock service in
//! place of the HTTP connection, as kube-rs's controller-rs does in its
//! `fixtures.rs`): which calls a blocked VideoCounter makes and, above all,
//! which it does not (no StatefulSet change, no pod deleted), and the calls
//! of a rollout step. These run in milliseconds; the tests in
//! `operator/tests/` run the same paths against a real kube-apiserver.

mod api_server;

use super::build::fixtures::{defaults, example, valid};
use super::{Context, apply, build, reconcile, roll};
use crate::crd::VideoCounter;
use crate::metrics::Metrics;
use api_server::{ApiServer, Exchange, apply_echo, echo, exchange, list, not_found};
use http::{Method, StatusCode};
use kube::Client;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

fn context(client: Client) -> Arc<Context> {
    Arc::new(Context::new(
        client,
        Some("media".into()),
        defaults(),
        Metrics::default(),
    ))
}

/// Runs `call` with a client whose requests `script` answers; fails on any
/// request the script does not expect, or one it expects that never comes.
async fn scripted<T, F, S>(call: impl FnOnce(Arc<Context>) -> F, script: impl FnOnce(ApiServer) -> S) -> T
where
    F: Future<Output = T>,
    S: Future<Output = ApiServer> + Send + 'static,
{
    let (service, handle) = api_server::pair();
    let ctx = context(Client::new(service, "media"));
    let server = tokio::spawn(script(ApiServer {
        handle,
        served: Vec::new(),
    }));
    let result = tokio::time::timeout(Duration::from_secs(10), call(ctx))
        .await
        .expect("the call finished");
    let mut server = server.await.expect("the script ran to its end");
    if let Ok(Some((request, _))) =
        tokio::time::timeout(Duration::from_millis(20), server.handle.next_request()).await
    {
        panic!(
            "unexpected request after the script: {} {}",
            request.method(),
            request.uri()
        );
    }
    result
}

const NS: &str = "/api/v1/namespaces/media";
const APPS: &str = "/apis/apps/v1/namespaces/media";
const POLICY: &str = "/apis/policy/v1/namespaces/media";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/media/events";
const VCS: &str = "/apis/videocounter.io/v1alpha1/namespaces/media/videocounters";
/// The start of every label selector the reconcile lists its objects by.
const SELECTOR: &str = "labelSelector=app.kubernetes.io%2Finstance%3Dlikes";

fn event_check(kind: &'static str, reason: &'static str, note: &'static str) -> impl Fn(&Value) + Send {
    move |body| {
        assert_eq!(body["type"], kind, "{body}");
        assert_eq!(body["reason"], reason, "{body}");
        let text = body["note"].as_str().unwrap_or_default();
        assert!(text.contains(note), "event note {text:?} lacks {note:?}");
    }
}

fn condition<'a>(body: &'a Value, type_: &str) -> &'a Value {
    body["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {body}"))
}

fn vc_answer(vc: &VideoCounter) -> Value {
    serde_json::to_value(vc).unwrap()
}

fn stateful_set(generation: i64, observed: i64, update: &str, current: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "likes", "namespace": "media", "generation": generation},
        "spec": {"replicas": 2, "serviceName": "likes-headless",
                 "selector": {"matchLabels": {"app.kubernetes.io/instance": "likes"}},
                 "template": {"metadata": {}, "spec": {"containers": []}}},
        "status": {"replicas": 2, "observedGeneration": observed, "updateRevision": update, "currentRevision": current}
    })
}

fn pod(ordinal: u32, revision: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("likes-{ordinal}"), "namespace": "media", "uid": format!("uid-pod-{ordinal}"),
                     "labels": {"app.kubernetes.io/instance": "likes", "controller-revision-hash": revision}},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

/// The StatefulSet as the roll stage reads it.
fn get_stateful_set(answer: Value) -> Exchange {
    exchange(
        Method::GET,
        format!("{APPS}/statefulsets/likes"),
        StatusCode::OK,
        answer,
    )
}

/// The fresh list of the VideoCounter's pods the roll stage plans from.
fn list_pods(pods: Vec<Value>) -> Exchange {
    exchange(
        Method::GET,
        format!("{NS}/pods"),
        StatusCode::OK,
        list("PodList", pods),
    )
    .query(SELECTOR)
}

/// The roll stage's two reads: the StatefulSet (its generation and the one
/// its controller observed; update revision `likes-new`) and its two pods,
/// Ready on `pods_on`.
async fn serve_observation(server: &mut ApiServer, generation: i64, observed: i64, pods_on: &str) {
    let sts = stateful_set(generation, observed, "likes-new", "likes-old");
    server.serve(get_stateful_set(sts)).await;
    server
        .serve(list_pods(vec![pod(0, pods_on, true), pod(1, pods_on, true)]))
        .await;
}

/// An Event the reconcile publishes.
fn event(kind: &'static str, reason: &'static str, note: &'static str) -> Exchange {
    exchange(Method::POST, EVENTS, StatusCode::CREATED, echo()).check(event_check(kind, reason, note))
}

/// The status written with server-side apply.
fn status_patch(vc: &VideoCounter, check: impl Fn(&Value) + Send + 'static) -> Exchange {
    exchange(
        Method::PATCH,
        format!("{VCS}/likes/status"),
        StatusCode::OK,
        vc_answer(vc),
    )
    .query("fieldManager=videocounter-operator")
    .check(check)
}

/// The ConfigMap, both Services and the PDB applied at once, with the
/// listings that prune what is no longer wanted (nothing here).
fn apply_group(config_check: impl Fn(&Value) + Send + 'static) -> Vec<Exchange> {
    vec![
        apply_echo(Method::PATCH, format!("{NS}/configmaps/likes-config")).check(config_check),
        apply_echo(Method::PATCH, format!("{NS}/services/likes-headless")),
        apply_echo(Method::PATCH, format!("{NS}/services/likes")),
        exchange(
            Method::GET,
            format!("{NS}/services"),
            StatusCode::OK,
            list("ServiceList", vec![]),
        )
        .query(SELECTOR),
        apply_echo(Method::PATCH, format!("{POLICY}/poddisruptionbudgets/likes")),
        exchange(
            Method::GET,
            format!("{POLICY}/poddisruptionbudgets"),
            StatusCode::OK,
            list("PodDisruptionBudgetList", vec![]),
        )
        .query(SELECTOR),
    ]
}

/// A spec only the operator can reject stops before anything is applied:
/// one look for the StatefulSet, a Warning Event, the Degraded status.
#[tokio::test]
async fn an_invalid_spec_applies_nothing_and_reports_why() {
    let mut vc = example();
    vc.spec.windows[1].output_topic = Some("video_aggregations_1".into());
    let status = status_patch(&vc, |body| {
        let degraded = condition(body, "Degraded");
        assert_eq!(degraded["status"], "True");
        assert_eq!(degraded["reason"], "InvalidSpec");
        assert_eq!(condition(body, "Progressing")["reason"], "Blocked");
        assert_eq!(body["status"]["phase"], "Degraded");
    });
    let action = scripted(
        |ctx| reconcile(Arc::new(vc), ctx),
        |mut server| async move {
            let absent = not_found("statefulsets \"likes\"");
            let sts = exchange(
                Method::GET,
                format!("{APPS}/statefulsets/likes"),
                StatusCode::NOT_FOUND,
                absent,
            );
            server.serve(sts).await;
            server
                .serve(event("Warning", "InvalidSpec", "is used by another window"))
                .await;
            server.serve(status).await;
            server
        },
    )
    .await
    .expect("a problem of the VideoCounter is not a failed reconcile");
    assert_eq!(action, Action::requeue(Duration::from_secs(15)));
}

/// A missing Secret blocks the workers: the ConfigMap, Services and PDB are
/// applied, but the StatefulSet is not, and the outdated pods of a pending
/// rollout are left alone.
#[tokio::test]
async fn a_missing_secret_changes_no_worker() {
    let mut vc = example();
    vc.spec.kafka = serde_json::from_value(json!({
        "bootstrapServers": "kafka:9093", "securityProtocol": "SASL_PLAINTEXT",
        "sasl": {"mechanism": "PLAIN", "username": {"name": "kafka-user", "key": "username"},
                 "password": {"name": "kafka-user", "key": "password"}}
    }))
    .unwrap();
    let status = status_patch(&vc, |body| {
        assert_eq!(condition(body, "Degraded")["reason"], "SecretNotFound");
        assert_eq!(body["status"]["updatedReplicas"], 0);
    });
    let action = scripted(
        |ctx| reconcile(Arc::new(vc), ctx),
        move |mut server| async move {
            let absent = not_found("secrets \"kafka-user\"");
            let secret = exchange(
                Method::GET,
                format!("{NS}/secrets/kafka-user"),
                StatusCode::NOT_FOUND,
                absent,
            );
            server.serve(secret).await;
            server
                .serve_any_order(apply_group(|body| {
                    let text = body["data"]["config.yaml"].as_str().unwrap_or_default();
                    assert!(text.contains("SASL_PLAINTEXT"), "{text}");
                }))
                .await;
            serve_observation(&mut server, 2, 2, "likes-old").await;
            server
                .serve(event("Warning", "SecretNotFound", "kafka.sasl.username"))
                .await;
            server.serve(status).await;
            server
        },
    )
    .await
    .unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(15)));
}

/// Once nothing blocks, the StatefulSet is applied after the ConfigMap.
#[tokio::test]
async fn the_stateful_set_follows_the_config_map() {
    let counter = valid(&example());
    let children = build::children(&counter);
    scripted(
        |ctx| async move { apply::children(&ctx, &counter, "media", &children, true).await },
        move |mut server| async move {
            server.serve_any_order(apply_group(|_| {})).await;
            let sts = apply_echo(Method::PATCH, format!("{APPS}/statefulsets/likes")).check(|body| {
                assert_eq!(body["spec"]["updateStrategy"]["type"], "OnDelete");
                assert_eq!(body["spec"]["replicas"], 2);
            });
            server.serve(sts).await;
            server
        },
    )
    .await
    .unwrap();
}

/// A rollout step: the highest outdated pod is deleted (that incarnation
/// only: a uid precondition), and the batch is announced in one Event.
#[tokio::test]
async fn a_rollout_step_deletes_one_pod_by_uid() {
    let vc = example();
    let observed = scripted(
        |ctx| async move { roll::roll(&ctx, &vc, "media", 1, true).await },
        |mut server| async move {
            serve_observation(&mut server, 3, 3, "likes-old").await;
            let delete = exchange(
                Method::DELETE,
                format!("{NS}/pods/likes-1"),
                StatusCode::OK,
                pod(1, "likes-old", true),
            )
            .check(|body| assert_eq!(body["preconditions"]["uid"], "uid-pod-1", "{body}"));
            server.serve(delete).await;
            server
                .serve(event("Normal", "RollingRestart", "replacing likes-1"))
                .await;
            server
        },
    )
    .await
    .unwrap();
    assert_eq!(observed.plan.unwrap().delete, ["likes-1"]);
    assert!(observed.revision_current);
}

/// While the StatefulSet controller has not seen the new template, nothing is
/// deleted; once every pod runs the revision, it becomes the current one.
#[tokio::test]
async fn a_finished_rollout_is_recorded_and_an_unobserved_template_is_not_rolled() {
    let vc = example();
    let unobserved = scripted(
        |ctx| async move { roll::roll(&ctx, &vc, "media", 1, true).await },
        |mut server| async move {
            serve_observation(&mut server, 4, 3, "likes-old").await;
            server
        },
    )
    .await
    .unwrap();
    assert!(!unobserved.revision_current);

    let vc = example();
    let settled = scripted(
        |ctx| async move { roll::roll(&ctx, &vc, "media", 1, true).await },
        |mut server| async move {
            serve_observation(&mut server, 3, 3, "likes-new").await;
            let done = stateful_set(3, 3, "likes-new", "likes-new");
            let record = exchange(
                Method::PATCH,
                format!("{APPS}/statefulsets/likes/status"),
                StatusCode::OK,
                done,
            )
            .check(|body| assert_eq!(body, &json!({"status": {"currentRevision": "likes-new"}})));
            server.serve(record).await;
            server
        },
    )
    .await
    .unwrap();
    assert!(settled.plan.unwrap().is_settled());
}
