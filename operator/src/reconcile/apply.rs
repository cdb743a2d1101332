//! Stage 5, apply: every wanted child with server-side apply (field manager
//! `videocounter-operator`, taking over fields others changed: the spec is
//! the source of truth), and the optional children no longer wanted deleted.

use crate::error::Result;
use crate::reconcile::build::{Children, MANAGER, managed_children_selector, names};
use crate::reconcile::context::Context;
use crate::reconcile::validate::ValidCounter;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Applies the wanted children and deletes the unwanted ones. The StatefulSet
/// is applied only when `workers_may_start` (the topics are ready): workers
/// never start (or restart) against missing or wrong topics.
pub async fn children(
    ctx: &Context,
    counter: &ValidCounter,
    namespace: &str,
    children: &Children,
    workers_may_start: bool,
) -> Result<()> {
    let name = &counter.name;
    // The ConfigMap, Services and PDB are independent: apply them at once.
    // (The ConfigMap and StatefulSet always exist under fixed names, so only
    // the optional children need pruning.)
    let config_maps: Api<ConfigMap> = ctx.api(namespace);
    let config_map = async { apply(&config_maps, &children.config_map).await.map(drop) };
    let services = async {
        let services: Api<Service> = ctx.api(namespace);
        apply(&services, &children.headless_service).await?;
        let mut keep = vec![names::headless_service(name)];
        if let Some(service) = &children.api_service {
            apply(&services, service).await?;
            keep.push(names::api_service(name));
        }
        log_pruned(name, "Service", prune(&services, counter, &keep).await?);
        Ok(())
    };
    let pdb = async {
        let pdbs: Api<PodDisruptionBudget> = ctx.api(namespace);
        let mut keep = Vec::new();
        if let Some(pdb) = &children.pod_disruption_budget {
            apply(&pdbs, pdb).await?;
            keep.push(names::pod_disruption_budget(name));
        }
        log_pruned(name, "PodDisruptionBudget", prune(&pdbs, counter, &keep).await?);
        Ok(())
    };
    futures::try_join!(config_map, services, pdb)?;

    // After the ConfigMap: pods of a new revision must find the new configuration.
    if workers_may_start {
        let stateful_sets: Api<StatefulSet> = ctx.api(namespace);
        apply(&stateful_sets, &children.stateful_set).await?;
    }
    Ok(())
}

fn log_pruned(vc: &str, kind: &str, deleted: Vec<String>) {
    for child in deleted {
        tracing::info!(videocounter = %vc, kind, child, "deleted a child no longer in the spec");
    }
}

/// Applies `obj` with server-side apply as the operator's field manager.
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let params = PatchParams::apply(MANAGER).force();
    Ok(api.patch(&obj.name_any(), &params, &Patch::Apply(obj)).await?)
}

/// Deletes the children of `counter` of one kind that are not in `keep`:
/// labelled as ours and controlled by this VideoCounter. Returns the names deleted.
pub async fn prune<K>(api: &Api<K>, counter: &ValidCounter, keep: &[String]) -> Result<Vec<String>>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    let uid = counter.owner.as_ref().map(|o| o.uid.as_str()).unwrap_or_default();
    let list = api
        .list(&ListParams::default().labels(&managed_children_selector(&counter.name)))
        .await?;
    let mut deleted = Vec::new();
    for child in list.items {
        let controlled = child
            .owner_references()
            .iter()
            .any(|r| r.controller == Some(true) && r.uid == uid);
        let name = child.name_any();
        if controlled && !keep.contains(&name) && child.meta().deletion_timestamp.is_none() {
            ignore_gone(api.delete(&name, &DeleteParams::background()).await.map(|_| ()))?;
            deleted.push(name);
        }
    }
    Ok(deleted)
}

/// Not found (already gone) and conflict (already replaced) are success for a delete.
pub fn ignore_gone(result: kube::Result<()>) -> Result<()> {
    match result {
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        other => Ok(other?),
    }
}
