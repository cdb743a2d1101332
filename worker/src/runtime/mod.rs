//! The process around the stages: consumer sessions and their supervisor
//! ([`session`]), what the sessions share with the HTTP server ([`state`]),
//! the HTTP API ([`http`]), metrics ([`metrics`]), signals ([`signals`]) and
//! the owner lookup for queries ([`owners`]).

pub mod http;
pub mod metrics;
pub mod owners;
pub mod session;
pub mod signals;
pub mod state;
