//! Helpers for tests that run against the real test ground started by
//! `e2e/env up` (Apache Kafka and a Kubernetes control plane on loopback).
//! The scripts export where the services are; `make test` sources that file.

pub mod cli;
pub mod kafka;
pub mod kube;
pub mod nodes;
pub mod objects;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Reads an environment variable the test-ground scripts export, or fails
/// the test with what to run.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the real test ground. Run `make test`, \
             or `e2e/env up && source ~/.cache/videocounter/state/env.sh` before cargo test."
        )
    })
}

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique_name(prefix: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{:x}-{}",
        std::process::id(),
        nanos & 0xffff_ffff,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether `name` contains a name made by [`unique_name`] (`<prefix>-<pid>-<hex>-<seq>`,
/// perhaps with a suffix such as `-repartition` or `.likes-repartition`, as the
/// operator names topics after the namespace): something a test run created.
pub fn is_unique_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split(['-', '.']).collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hex = |s: &str| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit());
    parts
        .windows(4)
        .any(|w| !w[0].is_empty() && digits(w[1]) && hex(w[2]) && digits(w[3]))
}

/// Runs `e2e/env <args>` (for example to stop and start the broker mid-test).
pub fn run_env_script(args: &[&str]) {
    let script = PathBuf::from(required_env("VIDEOCOUNTER_E2E_ENV"));
    let status = Command::new(&script)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        status.success(),
        "{} {} failed: {status}",
        script.display(),
        args.join(" ")
    );
}

/// Path of a binary the test ground built (kubectl, helm), from `VIDEOCOUNTER_BIN_DIR`.
pub fn ground_binary(name: &str) -> PathBuf {
    PathBuf::from(required_env("VIDEOCOUNTER_BIN_DIR")).join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_recognised_with_or_without_a_suffix() {
        let name = unique_name("eos-kill");
        assert!(is_unique_name(&name), "{name}");
        assert!(is_unique_name(&format!("{name}-counts-changelog")));
        assert!(is_unique_name("bench-12345-9f3a07c-0-repartition"));
        assert!(is_unique_name("op-kill-14979-8a21f424-2.likes-counts-changelog"));
    }

    #[test]
    fn other_names_are_not() {
        for name in [
            "video_clicks_ingestion",
            "video_aggregations_1",
            "likes-repartition",
            "__consumer_offsets",
            "a-1-2",
            "-1-ff-2",
        ] {
            assert!(!is_unique_name(name), "{name}");
        }
    }
}
