//! The videocounter operator: turns `VideoCounter` resources into a running
//! fleet of workers (StatefulSet, Services, ConfigMap, PDB, Kafka topics) and
//! rolls changes through it at most `maxUnavailable` pods at a time.
//!
//! Pure parts (unit-tested without an API server): [`crd`], [`render`],
//! [`builders`], [`rollout`], [`pod_health`], [`status`], [`startup`] and
//! [`topics::check_topics`].
//! I/O shells: [`controller`], [`apply`], [`topics::TopicAdmin`], [`leader`], [`http`].
//!
//! # RBAC
//! Exactly the calls the operator makes (a namespaced Role when run with
//! `--namespace`, else a ClusterRole; the Lease rule in the lease namespace):
//! - `videocounter.io` `videocounters`: list, watch; `videocounters/status`: patch
//!   (server-side apply of the status)
//! - `apps` `statefulsets`: get, list, watch, create, patch (server-side apply creates too);
//!   `statefulsets/status`: patch (`currentRevision` once a rollout is complete)
//! - `""` `configmaps`: list, watch, create, patch
//! - `""` `services`, `policy` `poddisruptionbudgets`: list, watch, create, patch, delete
//!   (children removed from the spec are deleted)
//! - `""` `pods`: list, watch, delete (rolling restarts)
//! - `""` `secrets`: get (Kafka TLS/SASL credentials for topic administration; never list)
//! - `events.k8s.io` `events`: create, patch
//! - `coordination.k8s.io` `leases`: get, create, patch (leader election)

pub mod apply;
pub mod builders;
pub mod controller;
pub mod crd;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod pod_health;
pub mod render;
pub mod rollout;
pub mod startup;
pub mod status;
pub mod topics;
