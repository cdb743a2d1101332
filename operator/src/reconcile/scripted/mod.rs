//! The reconcile's conversation with the API server, checked request by
//! request against a scripted API server ([`api_server`]: a mock service in
//! place of the HTTP connection, as kube-rs's controller-rs does in its
//! `fixtures.rs`): which calls a blocked VideoCounter makes and, above all,
//! which it does not (no StatefulSet change, no pod deleted), and the calls
//! of a rollout step. These run in milliseconds; the tests in
//! `operator/tests/` run the same paths against a real kube-apiserver.
//! (Over 400 lines: each scenario spells out every request it expects.)

mod api_server;

use super::build::fixtures::{defaults, example, valid};
use super::{Context, apply, build, reconcile, roll};
use crate::crd::VideoCounter;
use crate::metrics::Metrics;
use api_server::{ApiServer, apply_echo, echo, exchange, list, not_found};
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

/// A spec only the operator can reject stops before anything is applied:
/// one look for the StatefulSet, a Warning Event, the Degraded status.
#[tokio::test]
async fn an_invalid_spec_applies_nothing_and_reports_why() {
    let mut vc = example();
    vc.spec.windows[1].output_topic = Some("video_aggregations_1".into());
    let answer = vc_answer(&vc);
    let action = scripted(
        |ctx| reconcile(Arc::new(vc), ctx),
        |mut server| async move {
            server
                .serve(exchange(
                    Method::GET,
                    format!("{APPS}/statefulsets/likes"),
                    StatusCode::NOT_FOUND,
                    not_found("statefulsets \"likes\""),
                ))
                .await;
            server
                .serve(
                    exchange(Method::POST, EVENTS, StatusCode::CREATED, echo()).check(event_check(
                        "Warning",
                        "InvalidSpec",
                        "is used by another window",
                    )),
                )
                .await;
            server
                .serve(
                    exchange(
                        Method::PATCH,
                        format!("{VCS}/likes/status"),
                        StatusCode::OK,
                        answer,
                    )
                    .query("fieldManager=videocounter-operator")
                    .check(|body| {
                        let degraded = condition(body, "Degraded");
                        assert_eq!(
                            (&degraded["status"], &degraded["reason"]),
                            (&json!("True"), &json!("InvalidSpec"))
                        );
                        assert_eq!(condition(body, "Progressing")["reason"], "Blocked");
                        assert_eq!(body["status"]["phase"], "Degraded");
                    }),
                )
                .await;
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
    let answer = vc_answer(&vc);
    let selector = "labelSelector=app.kubernetes.io%2Finstance%3Dlikes";
    let action = scripted(
        |ctx| reconcile(Arc::new(vc), ctx),
        move |mut server| async move {
            server
                .serve(exchange(
                    Method::GET,
                    format!("{NS}/secrets/kafka-user"),
                    StatusCode::NOT_FOUND,
                    not_found("secrets \"kafka-user\""),
                ))
                .await;
            server
                .serve_any_order(vec![
                    apply_echo(Method::PATCH, format!("{NS}/configmaps/likes-config")).check(|body| {
                        let text = body["data"]["config.yaml"].as_str().unwrap_or_default();
                        assert!(text.contains("SASL_PLAINTEXT"), "{text}");
                    }),
                    apply_echo(Method::PATCH, format!("{NS}/services/likes-headless")),
                    apply_echo(Method::PATCH, format!("{NS}/services/likes")),
                    exchange(
                        Method::GET,
                        format!("{NS}/services"),
                        StatusCode::OK,
                        list("ServiceList", vec![]),
                    )
                    .query(selector),
                    apply_echo(Method::PATCH, format!("{POLICY}/poddisruptionbudgets/likes")),
                    exchange(
                        Method::GET,
                        format!("{POLICY}/poddisruptionbudgets"),
                        StatusCode::OK,
                        list("PodDisruptionBudgetList", vec![]),
                    )
                    .query(selector),
                ])
                .await;
            server
                .serve(exchange(
                    Method::GET,
                    format!("{APPS}/statefulsets/likes"),
                    StatusCode::OK,
                    stateful_set(2, 2, "likes-new", "likes-old"),
                ))
                .await;
            server
                .serve(
                    exchange(
                        Method::GET,
                        format!("{NS}/pods"),
                        StatusCode::OK,
                        list(
                            "PodList",
                            vec![pod(0, "likes-old", true), pod(1, "likes-old", true)],
                        ),
                    )
                    .query("labelSelector="),
                )
                .await;
            server
                .serve(
                    exchange(Method::POST, EVENTS, StatusCode::CREATED, echo()).check(event_check(
                        "Warning",
                        "SecretNotFound",
                        "kafka.sasl.username",
                    )),
                )
                .await;
            server
                .serve(
                    exchange(
                        Method::PATCH,
                        format!("{VCS}/likes/status"),
                        StatusCode::OK,
                        answer,
                    )
                    .check(|body| {
                        assert_eq!(condition(body, "Degraded")["reason"], "SecretNotFound");
                        assert_eq!(body["status"]["updatedReplicas"], 0);
                    }),
                )
                .await;
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
    let vc = example();
    let counter = valid(&vc);
    let children = build::children(&counter);
    let selector = "labelSelector=app.kubernetes.io%2Finstance%3Dlikes";
    scripted(
        |ctx| async move { apply::children(&ctx, &counter, "media", &children, true).await },
        move |mut server| async move {
            server
                .serve_any_order(vec![
                    apply_echo(Method::PATCH, format!("{NS}/configmaps/likes-config")),
                    apply_echo(Method::PATCH, format!("{NS}/services/likes-headless")),
                    apply_echo(Method::PATCH, format!("{NS}/services/likes")),
                    exchange(
                        Method::GET,
                        format!("{NS}/services"),
                        StatusCode::OK,
                        list("ServiceList", vec![]),
                    )
                    .query(selector),
                    apply_echo(Method::PATCH, format!("{POLICY}/poddisruptionbudgets/likes")),
                    exchange(
                        Method::GET,
                        format!("{POLICY}/poddisruptionbudgets"),
                        StatusCode::OK,
                        list("PodDisruptionBudgetList", vec![]),
                    )
                    .query(selector),
                ])
                .await;
            server
                .serve(
                    apply_echo(Method::PATCH, format!("{APPS}/statefulsets/likes")).check(|body| {
                        assert_eq!(body["spec"]["updateStrategy"]["type"], "OnDelete");
                        assert_eq!(body["spec"]["replicas"], 2);
                    }),
                )
                .await;
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
            server
                .serve(exchange(
                    Method::GET,
                    format!("{APPS}/statefulsets/likes"),
                    StatusCode::OK,
                    stateful_set(3, 3, "likes-new", "likes-old"),
                ))
                .await;
            server
                .serve(exchange(
                    Method::GET,
                    format!("{NS}/pods"),
                    StatusCode::OK,
                    list(
                        "PodList",
                        vec![pod(0, "likes-old", true), pod(1, "likes-old", true)],
                    ),
                ))
                .await;
            server
                .serve(
                    exchange(
                        Method::DELETE,
                        format!("{NS}/pods/likes-1"),
                        StatusCode::OK,
                        pod(1, "likes-old", true),
                    )
                    .check(|body| assert_eq!(body["preconditions"]["uid"], "uid-pod-1", "{body}")),
                )
                .await;
            server
                .serve(
                    exchange(Method::POST, EVENTS, StatusCode::CREATED, echo()).check(event_check(
                        "Normal",
                        "RollingRestart",
                        "replacing likes-1",
                    )),
                )
                .await;
            server
        },
    )
    .await
    .unwrap();
    let plan = observed.plan.unwrap();
    assert_eq!(plan.delete, ["likes-1"]);
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
            server
                .serve(exchange(
                    Method::GET,
                    format!("{APPS}/statefulsets/likes"),
                    StatusCode::OK,
                    stateful_set(4, 3, "likes-new", "likes-old"),
                ))
                .await;
            server
                .serve(exchange(
                    Method::GET,
                    format!("{NS}/pods"),
                    StatusCode::OK,
                    list(
                        "PodList",
                        vec![pod(0, "likes-old", true), pod(1, "likes-old", true)],
                    ),
                ))
                .await;
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
            server
                .serve(exchange(
                    Method::GET,
                    format!("{APPS}/statefulsets/likes"),
                    StatusCode::OK,
                    stateful_set(3, 3, "likes-new", "likes-old"),
                ))
                .await;
            server
                .serve(exchange(
                    Method::GET,
                    format!("{NS}/pods"),
                    StatusCode::OK,
                    list(
                        "PodList",
                        vec![pod(0, "likes-new", true), pod(1, "likes-new", true)],
                    ),
                ))
                .await;
            server
                .serve(
                    exchange(
                        Method::PATCH,
                        format!("{APPS}/statefulsets/likes/status"),
                        StatusCode::OK,
                        stateful_set(3, 3, "likes-new", "likes-new"),
                    )
                    .check(|body| assert_eq!(body, &json!({"status": {"currentRevision": "likes-new"}}))),
                )
                .await;
            server
        },
    )
    .await
    .unwrap();
    assert!(settled.plan.unwrap().is_settled());
}
