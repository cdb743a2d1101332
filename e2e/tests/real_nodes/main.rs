//! The user's path on the test ground's real nodes (`e2e/env up node`:
//! kubelet + containerd + runc, so pods run): the operator chart installed
//! with the images `make node-images` built from the release binaries,
//! examples/counter.yaml applied against the ground's Kafka, and likes
//! counted exactly through restarts, kills, scaling and a lost volume. The
//! other tests use kwok's fake nodes, where pods are Ready at once and run
//! nothing.
//!
//! The scenarios run one at a time (`support::Deployment` holds a lock):
//! the machine has two cores. `figures` (ignored by default) prints the
//! figures of the README:
//! `cargo test --release -p videocounter-e2e --test real_nodes -- --ignored --nocapture`.

mod bad_rollout;
mod figures;
mod gateway;
mod ground;
mod images;
mod kill;
mod load;
mod lost_volume;
mod restart;
mod scaling;
mod support;
mod user_path;
mod watch;
