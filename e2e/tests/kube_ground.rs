//! The test ground's control plane runs real controllers: a StatefulSet gets
//! pods that become Running and Ready on kwok's fake nodes, its
//! volumeClaimTemplate gets Bound PVCs, deleted pods come back, scale-down works.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use std::time::Duration;
use videocounter_e2e::kube::{client, eventually};
use videocounter_e2e::unique_name;

fn statefulset(name: &str, replicas: i32) -> StatefulSet {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/none:1",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
            }]
        }
    }))
    .unwrap()
}

fn is_running_ready(p: &Pod) -> bool {
    let status = p.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        && p.metadata.deletion_timestamp.is_none()
}

async fn ready_pod_names(pods: &Api<Pod>, app: &str) -> Vec<String> {
    let list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap();
    let mut names: Vec<String> = list
        .items
        .iter()
        .filter(|p| is_running_ready(p))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn statefulset_pods_volumes_recreation_and_scale_down() {
    let client = client().await;
    let ns_name = unique_name("smoke-sts");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns_name}})).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();

    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns_name);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns_name);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns_name);
    sts_api
        .create(&PostParams::default(), &statefulset("web", 3))
        .await
        .unwrap();

    let want = vec!["web-0".to_string(), "web-1".into(), "web-2".into()];
    eventually("3 Running+Ready pods", Duration::from_secs(90), || async {
        let names = ready_pod_names(&pods, "web").await;
        (names == want).then_some(())
    })
    .await;
    let bound_claims = || async {
        let list = pvcs.list(&ListParams::default()).await.unwrap();
        let mut bound: Vec<(String, String)> = list
            .items
            .iter()
            .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
            .map(|c| {
                (
                    c.metadata.name.clone().unwrap(),
                    c.spec.as_ref().unwrap().volume_name.clone().unwrap(),
                )
            })
            .collect();
        bound.sort();
        bound
    };
    let claims = eventually("3 Bound PVCs", Duration::from_secs(60), || async {
        let b = bound_claims().await;
        (b.len() == 3).then_some(b)
    })
    .await;
    assert_eq!(
        claims.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["data-web-0", "data-web-1", "data-web-2"]
    );

    // A deleted pod comes back with the same name, on the same claim and volume.
    let old_uid = pods.get("web-1").await.unwrap().metadata.uid.unwrap();
    pods.delete("web-1", &DeleteParams::default()).await.unwrap();
    eventually("web-1 recreated and Ready", Duration::from_secs(90), || async {
        let p = pods.get_opt("web-1").await.unwrap()?;
        (p.metadata.uid.as_deref() != Some(old_uid.as_str()) && is_running_ready(&p)).then_some(())
    })
    .await;
    let p = pods.get("web-1").await.unwrap();
    let claim = p
        .spec
        .unwrap()
        .volumes
        .unwrap()
        .into_iter()
        .find_map(|v| v.persistent_volume_claim)
        .unwrap();
    assert_eq!(claim.claim_name, "data-web-1");
    assert_eq!(
        bound_claims().await,
        claims,
        "claims or their volumes changed after the pod was recreated"
    );

    // Scaling to 1 removes web-2 and web-1, keeps web-0.
    sts_api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    eventually("only web-0 left", Duration::from_secs(90), || async {
        let list = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
        let names: Vec<_> = list
            .items
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        (names == ["web-0"] && is_running_ready(&list.items[0])).then_some(())
    })
    .await;

    namespaces
        .delete(&ns_name, &DeleteParams::default())
        .await
        .unwrap();
}
