//! Two operator replicas: only the Lease holder reconciles; when it dies the
//! standby takes over. Both serve health, readiness and metrics.

mod common;

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use std::time::Duration;
use videocounter_e2e::kube::eventually;

const TIMEOUT: Duration = Duration::from_secs(90);

async fn holder(ns: &TestNamespace) -> Option<String> {
    let leases: kube::Api<Lease> = ns.api();
    leases
        .get_opt("videocounter-operator")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_dies() {
    let ns = TestNamespace::new("op-ha").await;
    let mut a = Operator::start(&ns.name, "a");
    eventually("a holds the lease", TIMEOUT, || async {
        (holder(&ns).await.as_deref() == Some("a")).then_some(())
    })
    .await;
    let b = Operator::start(&ns.name, "b");
    for op in [&a, &b] {
        eventually("HTTP endpoints up", TIMEOUT, || async {
            let health = op.get("/healthz").await?;
            let ready = op.get("/readyz").await?;
            (health.0 == 200 && ready.0 == 200).then_some(())
        })
        .await;
    }
    assert_eq!(a.metric("videocounter_operator_leader").await, Some(1.0));
    assert_eq!(b.metric("videocounter_operator_leader").await, Some(0.0));

    let topics = TestTopics::new(&ns.name);
    apply_vc(&ns, &example_counter(&topics, 2)).await;
    wait_ready(&ns, "likes", 2, TIMEOUT).await;
    assert!(a.metric("videocounter_operator_reconciles_total").await.unwrap() >= 1.0);
    assert_eq!(
        b.metric("videocounter_operator_reconciles_total").await,
        Some(0.0)
    );
    let metrics = a.get("/metrics").await.unwrap().1;
    assert!(
        metrics.contains("videocounter_operator_reconcile_duration_seconds_bucket"),
        "{metrics}"
    );

    a.kill();
    eventually("b holds the lease", TIMEOUT, || async {
        (holder(&ns).await.as_deref() == Some("b")).then_some(())
    })
    .await;
    kubectl_ok(&ns.name, &["scale", "vc/likes", "--replicas=3"]);
    wait_ready(&ns, "likes", 3, TIMEOUT).await;
    assert_eq!(b.metric("videocounter_operator_leader").await, Some(1.0));
    assert!(b.metric("videocounter_operator_reconciles_total").await.unwrap() >= 1.0);

    // A graceful stop releases the lease at once.
    let mut b = b;
    assert!(b.terminate().success(), "operator b did not exit cleanly");
    let released = holder(&ns).await;
    assert!(
        released.as_deref() != Some("b"),
        "lease still held by b after SIGTERM: {released:?}"
    );
    delete_topics(&example_topic_names(&ns.name, &topics)).await;
}
