//! Synthetic likes: Poisson arrivals (seed 003) over per-video rates (the
//! seed UI's "likes per minute per video") or a uniform / Zipf spread over
//! many ids for load tests, and replays of recorded events (seed 004).
//!
//! - `sampler`: exponential gaps, Zipf weights, weighted picks (pure).
//! - `traffic`: the user's spec and the plan it resolves to (pure).
//! - `schedule`: the seeded arrival clock (pure).
//! - `replay`: reading events from JSON lines or CSV, and pacing (pure).
//! - `runner`: the in-process generator the dashboard controls.
//! - `load`: the loops of the `videocounter-loadgen` CLI.

pub mod load;
pub mod replay;
pub mod runner;
pub mod sampler;
pub mod schedule;
pub mod traffic;
