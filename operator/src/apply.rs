//! Thin I/O helpers over the API server: server-side apply, pruning of
//! children no longer wanted, reading Kafka credentials from Secrets, and
//! deleting pods for a rollout.

use crate::builders::{MANAGER, managed_children_selector};
use crate::crd::{KafkaSpec, SecretKeyRef, VideoCounter};
use crate::error::Result;
use crate::status::Problem;
use crate::topics::KafkaCredentials;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Applies `obj` with server-side apply as the operator's field manager,
/// taking over fields others changed (the spec is the source of truth).
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let params = PatchParams::apply(MANAGER).force();
    Ok(api.patch(&obj.name_any(), &params, &Patch::Apply(obj)).await?)
}

/// Deletes the children of `vc` of one kind that are not in `keep`: labelled
/// as ours and controlled by this VideoCounter. Returns the names deleted.
pub async fn prune<K>(api: &Api<K>, vc: &VideoCounter, keep: &[String]) -> Result<Vec<String>>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    let uid = vc.uid().unwrap_or_default();
    let list = api
        .list(&ListParams::default().labels(&managed_children_selector(&vc.name_any())))
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

/// Deletes a pod, but only the incarnation observed (its uid): a pod already
/// replaced under the same name is left alone.
pub async fn delete_pod(api: &Api<Pod>, pod: &Pod) -> Result<()> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    ignore_gone(api.delete(&pod.name_any(), &params).await.map(|_| ()))
}

/// Not found (already gone) and conflict (already replaced) are success for a delete.
fn ignore_gone(result: kube::Result<()>) -> Result<()> {
    match result {
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        other => Ok(other?),
    }
}

/// Reads the Secret keys the Kafka connection refers to. A missing Secret or
/// key is a problem with the VideoCounter (reported in its status), not an
/// operator error.
pub async fn read_credentials(
    secrets: &Api<Secret>,
    kafka: &KafkaSpec,
) -> Result<Result<KafkaCredentials, Problem>> {
    let mut creds = KafkaCredentials::default();
    let mut slots: Vec<(&str, &SecretKeyRef, &mut Option<String>)> = Vec::new();
    if let Some(tls) = &kafka.tls {
        if let Some(r) = &tls.ca {
            slots.push(("kafka.tls.ca", r, &mut creds.ca_pem));
        }
        if let Some(r) = &tls.cert {
            slots.push(("kafka.tls.cert", r, &mut creds.cert_pem));
        }
        if let Some(r) = &tls.key {
            slots.push(("kafka.tls.key", r, &mut creds.key_pem));
        }
    }
    if let Some(sasl) = &kafka.sasl {
        slots.push(("kafka.sasl.username", &sasl.username, &mut creds.sasl_username));
        slots.push(("kafka.sasl.password", &sasl.password, &mut creds.sasl_password));
    }
    for (field, reference, slot) in slots {
        let Some(secret) = secrets.get_opt(&reference.name).await? else {
            return Ok(Err(Problem::new(
                "SecretNotFound",
                format!(
                    "spec.{field} refers to Secret {:?}, which does not exist",
                    reference.name
                ),
            )));
        };
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&reference.key))
            .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(&reference.key).cloned())
            });
        match value {
            Some(v) => *slot = Some(v),
            None => {
                return Ok(Err(Problem::new(
                    "SecretKeyNotFound",
                    format!(
                        "spec.{field} refers to key {:?} of Secret {:?}, which has no such key",
                        reference.key, reference.name
                    ),
                )));
            }
        }
    }
    Ok(Ok(creds))
}
