//! `make deploy` checks every tool it needs before it builds anything and
//! names each missing one with what to install, all at once. The real
//! `make deploy` runs with a docker and a kind that do not exist (nothing is
//! ever built or deployed here); the script's other answers are checked with
//! stand-ins for docker and kind that answer as the real ones do when the
//! engine is down, buildx is missing, or everything is in place.

use crate::support::{repo_root, try_run};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use videocounter_e2e::ground_binary;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A stand-in command: a shell script answering `<subcommand> ...` with the
/// given output and exit code, anything else with exit 1.
fn stand_in(dir: &Path, name: &str, answers: &[(&str, &str, i32)]) -> PathBuf {
    let mut script = String::from("#!/bin/sh\ncase \"$1\" in\n");
    for (subcommand, output, code) in answers {
        script.push_str(&format!(
            "  {subcommand}) printf '%s\\n' '{output}'; exit {code} ;;\n"
        ));
    }
    script.push_str("  *) exit 1 ;;\nesac\n");
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    path
}

fn check(docker: &Path, kind: &Path, helm: &Path) -> Output {
    try_run(
        Command::new(repo_root().join("scripts/deploy-check.sh"))
            .arg("deploy")
            .env("DOCKER", docker)
            .env("KIND", kind)
            .env("KUBECTL", ground_binary("kubectl"))
            .env("HELM", helm),
    )
}

#[test]
fn make_deploy_stops_before_building_and_names_every_missing_tool() {
    let started = Instant::now();
    let out = try_run(Command::new("make").args([
        "deploy",
        "DOCKER=/nonexistent/docker",
        "KIND=/nonexistent/kind",
        &format!("KUBECTL={}", ground_binary("kubectl").display()),
        &format!("HELM={}", ground_binary("helm").display()),
    ]));
    let output = text(&out);
    assert!(!out.status.success(), "{output}");
    assert!(started.elapsed() < Duration::from_secs(20), "{output}");
    assert!(
        output.contains("[deploy-check] make deploy cannot run on this machine yet:"),
        "{output}"
    );
    let problems: Vec<&str> = output.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(problems.len(), 2, "{output}");
    assert!(
        problems[0].starts_with(
            "  - docker: not found. Install Docker Engine (https://docs.docker.com/engine/install/)"
        ),
        "{output}"
    );
    assert!(
        problems[1]
            .starts_with("  - kind: not found. Install kind 0.30+: go install sigs.k8s.io/kind@v0.30.0"),
        "{output}"
    );
    for never in ["docker build", "DEPRECATED", "kind create", "helm upgrade"] {
        assert!(!output.contains(never), "{never:?} ran:\n{output}");
    }
}

#[test]
fn an_engine_that_is_down_no_buildx_an_old_kind_and_helm_2_are_each_named() {
    let dir = tempfile::tempdir().unwrap();
    let docker = stand_in(
        dir.path(),
        "docker",
        &[
            (
                "info",
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
                1,
            ),
            ("buildx", "docker: unknown command: docker buildx", 1),
        ],
    );
    let kind = stand_in(
        dir.path(),
        "kind",
        &[("version", "kind v0.20.0 go1.20.4 linux/amd64", 0)],
    );
    let helm = stand_in(dir.path(), "helm", &[("version", "v2.17.0", 0)]);
    let out = check(&docker, &kind, &helm);
    let output = text(&out);
    assert_eq!(out.status.code(), Some(1), "{output}");
    let problems: Vec<&str> = output.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(problems.len(), 4, "{output}");
    assert!(
        problems[0].starts_with(
            "  - docker: the Docker engine is not running or not reachable (Cannot connect to the Docker daemon"
        ),
        "{output}"
    );
    assert!(
        problems[1].starts_with("  - docker buildx: not available (docker: unknown command: docker buildx)."),
        "{output}"
    );
    assert!(problems[1].contains("RUN --mount"), "{output}");
    assert!(
        problems[2].starts_with("  - kind: 'kind v0.20.0 go1.20.4 linux/amd64' is too old"),
        "{output}"
    );
    assert!(
        problems[3].starts_with(&format!("  - helm: '{}' is v2.17.0", helm.display())),
        "{output}"
    );
}

#[test]
fn everything_in_place_passes_and_the_containerd_image_store_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    // Answers `info --format '{{json .DriverStatus}}'` as Docker does with the
    // containerd image store, and `info --format '{{.ServerVersion}}'`.
    let docker = dir.path().join("docker");
    std::fs::write(
        &docker,
        "#!/bin/sh\ncase \"$1 $3\" in\n\
         \x20 'info {{json .DriverStatus}}') echo '[[\"driver-type\",\"io.containerd.snapshotter.v1\"]]' ;;\n\
         \x20 info*) echo 29.1.0 ;;\n\
         \x20 buildx*) echo 'github.com/docker/buildx v0.30.1' ;;\n\
         \x20 *) exit 1 ;;\nesac\n",
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&docker).status().unwrap();
    let kind = stand_in(
        dir.path(),
        "kind",
        &[("version", "kind v0.30.0 go1.24.6 linux/amd64", 0)],
    );
    let out = check(&docker, &kind, &ground_binary("helm"));
    let output = text(&out);
    assert!(out.status.success(), "{output}");
    assert!(
        output.contains("[deploy-check] note: docker uses the containerd image store"),
        "{output}"
    );
    let ok = output
        .lines()
        .find(|l| l.starts_with("[deploy-check] ok: "))
        .unwrap_or_else(|| panic!("{output}"));
    assert!(
        ok.starts_with("[deploy-check] ok: docker 29.1.0 with buildx, kind v0.30.0"),
        "{ok}"
    );
    assert!(ok.contains("kubectl v1.") && ok.contains("helm v3."), "{ok}");
}
