//! Packaging checks against the test ground: the Helm chart lints, renders
//! objects the real API server accepts (restricted Pod Security included),
//! installs, and its RBAC is enough for the real operator and no more; the
//! manifests `make deploy` applies pass server-side dry-run; the README's
//! configuration reference matches the CRD.

mod deploy_check;
mod docs;
mod gateway;
mod images;
mod install;
mod lint;
mod manifests;
mod metrics;
mod operations;
mod process;
mod promql;
mod rbac;
mod support;
