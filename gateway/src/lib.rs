//! videocounter's gateway: the HTTP front of a deployment.
//!
//! - `ingest`: likes in (`POST /videos/{id}/likes`), validated and produced
//!   to the input topic with an idempotent producer.
//! - `live`: window counts out of the output topics, kept in memory and
//!   pushed to browsers over Server-Sent Events.
//! - `generator`: synthetic and replayed traffic, for the dashboard and
//!   the `videocounter-loadgen` CLI.
//! - `status`: worker readiness and lag for the dashboard's status strip.
//! - `http`: the router and the embedded dashboard; `server` wires it all.
//!
//! Kafka client settings, logs and the `/metrics` answer come from
//! `videocounter-shell`, shared with the worker and the operator.

pub mod clock;
pub mod config;
pub mod error;
pub mod generator;
pub mod http;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod server;
pub mod status;

pub use error::GatewayError;
