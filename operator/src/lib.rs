//! The videocounter operator: turns `VideoCounter` resources into a running
//! fleet of workers (StatefulSet, Services, ConfigMap, PDB, Kafka topics) and
//! rolls changes through it at most `maxUnavailable` pods at a time.
//!
//! - [`crd`]: the resource (spec, status, schema and CEL rules).
//! - [`reconcile`]: what one reconcile does, a module per stage in the
//!   order they run (dereference, validate, topics, build, apply, roll,
//!   status); the pure ones and the pure cores of the others (rollout plan
//!   and budget, pod health, status, requeue and Event decisions) are
//!   unit-tested without an API server.
//! - [`controller`]: which changes trigger a reconcile.
//! - [`leader`], [`http`], [`metrics`], [`startup`]: the process around it.
//!
//! Kafka client settings and topic administration, logs and the `/metrics`
//! answer come from `videocounter-shell`, shared with the worker and the gateway.
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

pub mod controller;
pub mod crd;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod startup;
