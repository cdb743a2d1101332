//! The controller loop: which changes trigger a reconcile of which
//! VideoCounter (the resource itself, the children it owns, and its pods),
//! and the reconcile it runs ([`crate::reconcile`]).

use crate::crd::VideoCounter;
use crate::reconcile::build::{INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGER};
use crate::reconcile::{Context, error_policy, reconcile};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Runs the controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let (vcs, sts, cms, svcs, pdbs, pods) = match &ctx.namespace {
        Some(ns) => (
            Api::<VideoCounter>::namespaced(client.clone(), ns),
            Api::<StatefulSet>::namespaced(client.clone(), ns),
            Api::<ConfigMap>::namespaced(client.clone(), ns),
            Api::<Service>::namespaced(client.clone(), ns),
            Api::<PodDisruptionBudget>::namespaced(client.clone(), ns),
            Api::<Pod>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    // Watch only what this operator manages.
    let ours = || watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}"));
    Controller::new(vcs, watcher::Config::default())
        .with_config(ControllerConfig::default().debounce(Duration::from_millis(50)))
        .owns(sts, ours())
        .owns(cms, ours())
        .owns(svcs, ours())
        .owns(pdbs, ours())
        // Pods belong to the StatefulSet, not to the VideoCounter: map them by label.
        .watches(pods, ours(), |pod: Pod| {
            let instance = pod.labels().get(INSTANCE_LABEL)?.clone();
            Some(ObjectRef::<VideoCounter>::new(&instance).within(&pod.namespace()?))
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile loop");
            }
        })
        .await;
}
