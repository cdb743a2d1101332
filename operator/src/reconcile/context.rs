//! What every stage of a reconcile shares: the API client, the operator's
//! defaults and metrics, Event publishing, and a cache of Kafka admin clients.

use crate::crd::VideoCounter;
use crate::metrics::Metrics;
use crate::reconcile::build::MANAGER;
use crate::reconcile::outcome::Problem;
use crate::reconcile::validate::Defaults;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};
use std::collections::HashMap;
use std::sync::Mutex;
use videocounter_protocol::config::KafkaConnection;
use videocounter_shell::kafka::{Credentials, KafkaCredentials, TopicAdmin, client_config};

/// Admin clients kept at most (each holds broker connections).
const MAX_ADMINS: usize = 32;

/// Everything a reconcile needs.
pub struct Context {
    pub client: Client,
    /// Namespace to manage, or all when `None`.
    pub namespace: Option<String>,
    pub defaults: Defaults,
    pub reporter: Reporter,
    pub metrics: Metrics,
    /// Admin clients by connection and credentials.
    admins: Mutex<HashMap<String, TopicAdmin>>,
}

impl Context {
    pub fn new(client: Client, namespace: Option<String>, defaults: Defaults, metrics: Metrics) -> Self {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            reporter,
            client,
            namespace,
            defaults,
            metrics,
            admins: Mutex::new(HashMap::new()),
        }
    }

    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// The admin client for a connection, made on first use.
    pub fn admin_for(&self, conn: &KafkaConnection, creds: &KafkaCredentials) -> Result<TopicAdmin, Problem> {
        let key = format!("{conn:?}|{creds:?}");
        let mut admins = self.admins.lock().expect("admin cache lock");
        if let Some(admin) = admins.get(&key) {
            return Ok(admin.clone());
        }
        let problem = |reason: &str, message: String| Problem::new(reason, message);
        let config = client_config(conn, MANAGER, Credentials::Values(creds))
            .map_err(|e| problem("KafkaUnavailable", e.to_string()))?;
        let admin = TopicAdmin::new(&config).map_err(|e| problem(e.reason(), e.to_string()))?;
        if admins.len() >= MAX_ADMINS {
            admins.clear();
        }
        admins.insert(key, admin.clone());
        Ok(admin)
    }

    /// Publishes an Event about `vc`; a failure is logged, not fatal.
    pub async fn publish(&self, vc: &VideoCounter, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(within_note_limit(note)),
            action: "Reconcile".into(),
            secondary: None,
        };
        // A recorder per event: kube's Recorder folds events of the same reason
        // into one series that keeps the first note, which would hide which
        // pods later rollout batches replaced. Each call here is a new fact
        // (callers publish on changes only), so each gets its own Event.
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(e) = recorder.publish(&event, &vc.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "publishing an event failed");
        }
    }
}

/// The API server refuses Event notes over 1 kB: cut longer ones, marked.
fn within_note_limit(mut note: String) -> String {
    const LIMIT: usize = 1000;
    if note.len() > LIMIT {
        let mut end = LIMIT - '…'.len_utf8();
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push('…');
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_notes_fit_the_api_limit() {
        assert_eq!(within_note_limit("short".into()), "short");
        let long = within_note_limit("é".repeat(800));
        assert!(long.len() <= 1000 && long.ends_with('…'), "{}", long.len());
    }
}
