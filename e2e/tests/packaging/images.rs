//! docker/Dockerfile, checked without a Docker engine: BuildKit's Dockerfile
//! frontend (docker/lint, a small Go program) converts each image target to
//! its build graph with every lint rule on.

use crate::support::{stderr, stdout, try_run};
use std::process::Command;

#[test]
fn dockerfile_converts_for_every_image_with_no_lint_warning() {
    let out = try_run(Command::new("go").args([
        "-C",
        "docker/lint",
        "run",
        ".",
        "../Dockerfile",
        "worker",
        "operator",
        "gateway",
    ]));
    assert!(
        out.status.success(),
        "docker/Dockerfile does not convert cleanly (go run ./docker/lint):\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "worker: ok\noperator: ok\ngateway: ok\n");
}
