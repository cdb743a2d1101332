//! The images `make node-images` built without Docker (docker/local-images.sh)
//! against docker/Dockerfile, so the two cannot drift: each image's runtime
//! config (user, environment, entrypoint, ports, working directory) equals
//! what BuildKit's Dockerfile frontend computes for that target; its
//! /usr/local/bin holds exactly the binaries the target's build stage
//! stages, byte for byte the release binaries as docker/stage-binary.sh
//! strips them; the file system is the distroless base's (non-root user,
//! no shell); and every node has the image.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use videocounter_e2e::cli::{get_json, read_repo_file, run, stdout};
use videocounter_e2e::nodes::RealNodes;

const TARGETS: [&str; 3] = ["worker", "operator", "gateway"];

/// BuildKit's image config per target (`go run ./docker/lint -image-config`).
fn dockerfile_configs() -> BTreeMap<String, Value> {
    let out = run(Command::new("go")
        .args(["-C", "docker/lint", "run", ".", "-image-config", "../Dockerfile"])
        .args(TARGETS));
    stdout(&out)
        .lines()
        .map(|l| {
            let (target, json) = l.split_once(' ').unwrap();
            (target.to_string(), serde_json::from_str(json).unwrap())
        })
        .collect()
}

/// The binaries the Dockerfile's `build-<target>` stage stages.
fn dockerfile_binaries(dockerfile: &str, target: &str) -> (String, BTreeSet<String>) {
    let stage = format!("AS build-{target}");
    let from = dockerfile
        .find(&stage)
        .unwrap_or_else(|| panic!("docker/Dockerfile has no {stage}"));
    let line = dockerfile[from..]
        .lines()
        .find_map(|l| l.trim().strip_prefix("docker/stage-binary.sh "))
        .expect("the stage runs docker/stage-binary.sh");
    let mut words = line.split_whitespace();
    let package = words.next().unwrap().to_string();
    (package, words.map(String::from).collect())
}

fn tar_file(archive: &Path, member: &str) -> Vec<u8> {
    run(Command::new("tar").arg("-xOf").arg(archive).arg(member)).stdout
}

/// `(mode, owner, path)` of every entry of the image's one layer, and the layer itself.
fn layer_entries(archive: &Path, layer: &str, dir: &Path) -> Vec<(String, String, String)> {
    let layer_tar = dir.join("layer.tar");
    std::fs::write(&layer_tar, tar_file(archive, layer)).unwrap();
    let out = run(Command::new("tar")
        .args(["-tvf"])
        .arg(&layer_tar)
        .arg("--numeric-owner"));
    stdout(&out)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[5].trim_start_matches("./").to_string(),
            )
        })
        .collect()
}

#[test]
fn the_node_images_are_what_docker_build_makes_of_the_release_binaries() {
    let nodes = RealNodes::from_env();
    let dockerfile = read_repo_file("docker/Dockerfile");
    assert!(
        dockerfile.contains("ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot"),
        "docker/runtime-rootfs.sh and docker/runtime-base.json rebuild gcr.io/distroless/cc-debian12:nonroot; \
         the Dockerfile's runtime base changed"
    );
    let configs = dockerfile_configs();
    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| videocounter_e2e::cli::repo_root().join("target"));
    let scratch = tempfile::tempdir().unwrap();
    let node_images: Vec<String> = nodes
        .names
        .iter()
        .map(|n| get_json(&["node", n]).unwrap()["status"]["images"].to_string())
        .collect();
    for target in TARGETS {
        let archive = nodes.images_dir.join(format!("{target}.tar"));
        assert!(
            archive.exists(),
            "{} is missing: run `make node-images`",
            archive.display()
        );
        let manifest: Value = serde_json::from_slice(&tar_file(&archive, "manifest.json")).unwrap();
        let reference = nodes.image(target);
        assert_eq!(manifest[0]["RepoTags"], serde_json::json!([reference]));
        let config: Value =
            serde_json::from_slice(&tar_file(&archive, manifest[0]["Config"].as_str().unwrap())).unwrap();
        assert_eq!(
            (config["os"].as_str(), config["architecture"].as_str()),
            (Some("linux"), Some("amd64"))
        );
        assert_eq!(
            config["config"], configs[target],
            "{target}: the image config differs from docker/Dockerfile's"
        );

        let layers = manifest[0]["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{target}: one layer");
        let entries = layer_entries(&archive, layers[0].as_str().unwrap(), scratch.path());
        let by_path: BTreeMap<&str, (&str, &str)> = entries
            .iter()
            .map(|(m, o, p)| (p.trim_end_matches('/'), (m.as_str(), o.as_str())))
            .collect();
        let (package, binaries) = dockerfile_binaries(&dockerfile, target);
        let staged: BTreeSet<String> = entries
            .iter()
            .filter_map(|(_, _, p)| {
                p.strip_prefix("usr/local/bin/")
                    .filter(|b| !b.is_empty())
                    .map(String::from)
            })
            .collect();
        assert_eq!(
            staged, binaries,
            "{target}: /usr/local/bin holds what stage {package} of docker/Dockerfile stages"
        );
        for binary in &binaries {
            let in_image = tar_file(
                &scratch.path().join("layer.tar"),
                &format!("./usr/local/bin/{binary}"),
            );
            let stripped = scratch.path().join(format!("{binary}.stripped"));
            run(Command::new("objcopy")
                .arg("--strip-debug")
                .arg(target_dir.join("release").join(binary))
                .arg(&stripped));
            assert!(
                in_image == std::fs::read(&stripped).unwrap(),
                "{target}: /usr/local/bin/{binary} is not this build's release binary: run `make node-images`"
            );
        }
        assert!(
            entries
                .iter()
                .any(|(_, _, p)| p.starts_with("usr/local/lib/videocounter/lib")),
            "{target}: the libraries the binaries link beyond the C runtime are staged"
        );
        // The distroless base: its non-root user with a home, a sticky /tmp, no shell.
        let passwd = String::from_utf8(tar_file(&scratch.path().join("layer.tar"), "./etc/passwd")).unwrap();
        assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
        assert_eq!(
            by_path.get("home/nonroot").map(|e| e.1),
            Some("65532/65532"),
            "{target}: /home/nonroot"
        );
        assert_eq!(
            by_path.get("tmp").map(|e| e.0),
            Some("drwxrwxrwt"),
            "{target}: /tmp"
        );
        for shell in ["usr/bin/sh", "usr/bin/bash", "usr/bin/dash", "bin/sh"] {
            assert!(
                !by_path.contains_key(shell),
                "{target}: the image has a shell ({shell})"
            );
        }
        for (node, images) in nodes.names.iter().zip(&node_images) {
            assert!(
                images.contains(&reference),
                "{node} does not have {reference}: run `make node-images`"
            );
        }
    }
}
