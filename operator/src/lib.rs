//! The videocounter operator: turns `VideoCounter` resources into a running
//! fleet of workers (StatefulSet, Services, ConfigMap, PDB, Kafka topics) and
//! rolls changes through it at most `maxUnavailable` pods at a time.
//!
//! Pure parts (unit-tested without an API server): [`crd`], [`render`],
//! [`builders`], [`rollout`], [`status`], and [`topics::check_topics`].
//! I/O shells: [`controller`], [`apply`], [`topics::TopicAdmin`], [`leader`], [`http`].
//!
//! # RBAC
//! What the operator's ServiceAccount needs (namespaced Role when run with
//! `--namespace`, else ClusterRole):
//! - `videocounter.io` `videocounters`: get, list, watch;
//!   `videocounters/status`: get, patch, update; (`videocounters/scale` is for users and HPAs)
//! - `apps` `statefulsets`: get, list, watch, create, patch, delete
//! - `""` `services`, `configmaps`: get, list, watch, create, patch, delete
//! - `policy` `poddisruptionbudgets`: get, list, watch, create, patch, delete
//! - `""` `pods`: get, list, watch, delete
//! - `""` `secrets`: get (Kafka TLS/SASL credentials for topic administration)
//! - `events.k8s.io` `events`: create, patch
//! - `coordination.k8s.io` `leases`: get, create, patch, update (leader election, in the lease namespace)

pub mod apply;
pub mod builders;
pub mod controller;
pub mod crd;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod render;
pub mod rollout;
pub mod status;
pub mod topics;
