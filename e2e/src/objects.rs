//! Reading Kubernetes objects as JSON from blocking test code, through one
//! kube client (polling with kubectl would cost a process start each time:
//! too much CPU on two cores while pods start).

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;

/// An object kind by its API group version, kind and plural.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

pub const POD: Kind = Kind {
    api_version: "v1",
    kind: "Pod",
    plural: "pods",
};
pub const PVC: Kind = Kind {
    api_version: "v1",
    kind: "PersistentVolumeClaim",
    plural: "persistentvolumeclaims",
};
pub const VIDEOCOUNTER: Kind = Kind {
    api_version: "videocounter.io/v1alpha1",
    kind: "VideoCounter",
    plural: "videocounters",
};

fn resource(k: Kind) -> ApiResource {
    let (group, version) = k.api_version.split_once('/').unwrap_or(("", k.api_version));
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: k.api_version.into(),
        kind: k.kind.into(),
        plural: k.plural.into(),
    }
}

/// A blocking reader of namespaced objects.
pub struct Objects {
    rt: tokio::runtime::Runtime,
    client: kube::Client,
}

impl Default for Objects {
    fn default() -> Self {
        Self::new()
    }
}

impl Objects {
    pub fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(crate::kube::client());
        Self { rt, client }
    }

    fn api(&self, kind: Kind, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &resource(kind))
    }

    /// One object, or `None` when it does not exist (or cannot be read now).
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        let object = self.rt.block_on(self.api(kind, namespace).get_opt(name)).ok()??;
        serde_json::to_value(object).ok()
    }

    /// The objects with `labels` (a label selector).
    pub fn list(&self, kind: Kind, namespace: &str, labels: &str) -> Vec<Value> {
        let list = self
            .rt
            .block_on(
                self.api(kind, namespace)
                    .list(&ListParams::default().labels(labels)),
            )
            .unwrap_or_else(|e| panic!("listing {} in {namespace}: {e}", kind.plural));
        list.items
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect()
    }
}
