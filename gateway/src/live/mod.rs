//! The live side: window counts read from the output topics (`consumer`),
//! kept in a bounded in-memory store (`store`) and broadcast to subscribers.

pub mod consumer;
pub mod store;

use std::sync::{Arc, RwLock, RwLockReadGuard};
use store::{CountStore, StoreLimits};
use tokio::sync::broadcast;
use videocounter_protocol::WindowCountRecord;

/// The store and its change notifications, shared by the consumer (writer)
/// and the HTTP handlers (readers).
#[derive(Clone)]
pub struct LiveFeed {
    store: Arc<RwLock<CountStore>>,
    updates: broadcast::Sender<Arc<WindowCountRecord>>,
}

impl LiveFeed {
    /// `buffer`: updates a slow subscriber may fall behind before it is told to resync.
    pub fn new(limits: StoreLimits, buffer: usize) -> Self {
        Self {
            store: Arc::new(RwLock::new(CountStore::new(limits))),
            updates: broadcast::channel(buffer.max(1)).0,
        }
    }

    pub fn apply(&self, record: WindowCountRecord) {
        let changed = self
            .store
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .apply(&record);
        if changed {
            // No subscriber is fine: nobody is watching.
            let _ = self.updates.send(Arc::new(record));
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WindowCountRecord>> {
        self.updates.subscribe()
    }

    pub fn store(&self) -> RwLockReadGuard<'_, CountStore> {
        self.store.read().unwrap_or_else(|p| p.into_inner())
    }
}
