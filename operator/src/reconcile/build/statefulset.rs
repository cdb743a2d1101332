//! The StatefulSet of workers. `updateStrategy: OnDelete` leaves pod
//! replacement to the operator's rollout (batches of `maxUnavailable`);
//! `podManagementPolicy: Parallel` starts and stops pods without waiting for
//! their predecessors, which a Kafka consumer group does not need.
//! (Over 400 lines: the pod template is one long literal, and half the file is its tests.)

use super::{child_meta, content_hash, labels, names, selector_labels};
use crate::crd::RESTART_ANNOTATION;
use crate::reconcile::pod_layout::{CONFIG_DIR, CONFIG_FILE, DATA_DIR, HTTP_PORT, SECRETS_DIR};
use crate::reconcile::validate::ValidCounter;
use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::PodAntiAffinity;
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, LocalObjectReference, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodAffinityTerm, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
    VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Pod-template annotation holding a hash of the worker configuration, so a
/// configuration change makes a new revision and rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "videocounter.io/config-hash";
/// The non-root user (and group) the worker runs as (distroless `nonroot`).
pub const WORKER_UID: i64 = 65532;
const DATA_VOLUME: &str = "data";
const CONFIG_VOLUME: &str = "config";
const TMP_VOLUME: &str = "tmp";

pub fn stateful_set(counter: &ValidCounter, config_map: &ConfigMap) -> StatefulSet {
    let name = &counter.name;
    let storage = &counter.storage;
    let config_text = config_map
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_FILE))
        .map(String::as_str)
        .unwrap_or_default();
    StatefulSet {
        metadata: child_meta(counter, names::stateful_set(name)),
        spec: Some(StatefulSetSpec {
            replicas: Some(counter.replicas),
            service_name: Some(names::headless_service(name)),
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                rolling_update: None,
            }),
            selector: LabelSelector {
                match_labels: Some(selector_labels(name)),
                ..LabelSelector::default()
            },
            template: pod_template(counter, config_text),
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(DATA_VOLUME.into()),
                    labels: Some(labels(name)),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    storage_class_name: storage.storage_class_name.clone(),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".into(),
                            Quantity(storage.size.clone()),
                        )])),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                ..PersistentVolumeClaim::default()
            }]),
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some(storage.retention_policy.when_deleted.as_str().into()),
                when_scaled: Some(storage.retention_policy.when_scaled.as_str().into()),
            }),
            revision_history_limit: Some(10),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn pod_template(counter: &ValidCounter, config_text: &str) -> PodTemplateSpec {
    let worker = &counter.worker;
    // User labels first, so they can never override the selector labels.
    let mut pod_labels = worker.pod_labels.clone();
    pod_labels.extend(labels(&counter.name));
    let mut annotations = worker.pod_annotations.clone();
    annotations.extend([
        (CONFIG_HASH_ANNOTATION.to_string(), content_hash(config_text)),
        ("prometheus.io/scrape".into(), "true".into()),
        ("prometheus.io/port".into(), HTTP_PORT.to_string()),
        ("prometheus.io/path".into(), "/metrics".into()),
    ]);
    if let Some(restarted_at) = &counter.restarted_at {
        annotations.insert(RESTART_ANNOTATION.into(), restarted_at.clone());
    }
    let secrets = &counter.secrets;
    let mut volumes = vec![
        Volume {
            name: CONFIG_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names::config_map(&counter.name),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: TMP_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity("64Mi".into())),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    volumes.extend(secrets.iter().enumerate().map(|(i, secret)| Volume {
        name: format!("secret-{i}"),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.clone()),
            default_mode: Some(0o440),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }));
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![worker_container(counter)],
            volumes: Some(volumes),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(WORKER_UID),
                run_as_group: Some(WORKER_UID),
                fs_group: Some(WORKER_UID),
                fs_group_change_policy: Some("OnRootMismatch".into()),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            termination_grace_period_seconds: Some(worker.termination_grace_period_seconds),
            service_account_name: worker.service_account_name.clone(),
            // Workers never call the Kubernetes API.
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            priority_class_name: worker.priority_class_name.clone(),
            node_selector: (!worker.node_selector.is_empty()).then(|| worker.node_selector.clone()),
            image_pull_secrets: (!worker.image_pull_secrets.is_empty()).then(|| {
                worker
                    .image_pull_secrets
                    .iter()
                    .map(|name| LocalObjectReference { name: name.clone() })
                    .collect()
            }),
            affinity: Some(spread_over_nodes(&counter.name)),
            ..PodSpec::default()
        }),
    }
}

/// Whole CPUs of the CPU limit, else of the request; at least one.
fn worker_threads(resources: &crate::crd::ResourcesSpec) -> u16 {
    let cpu = resources
        .limits
        .get("cpu")
        .or_else(|| resources.requests.get("cpu"));
    let cores = cpu.and_then(|q| match q.0.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => q.0.parse::<f64>().ok(),
    });
    cores.map_or(1, |c| (c.floor() as u16).clamp(1, 64))
}

/// Most of the grace period, leaving a margin for the process to exit.
fn shutdown_timeout(grace_seconds: i64) -> String {
    let seconds = (grace_seconds - (grace_seconds / 6).max(2)).max(1);
    format!("{seconds}s")
}

fn worker_container(counter: &ValidCounter) -> Container {
    let worker = &counter.worker;
    let secrets = &counter.secrets;
    let mut env = vec![EnvVar {
        // The pod name is stable across restarts: the worker's static group
        // member id, so a restarted pod gets its partitions back without a rebalance.
        name: "VIDEOCOUNTER_INSTANCE_ID".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.name".into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }];
    env.push(EnvVar {
        // One consumer session per whole CPU the pod may use.
        name: "VIDEOCOUNTER_THREADS".into(),
        value: Some(worker_threads(&worker.resources).to_string()),
        ..EnvVar::default()
    });
    env.push(EnvVar {
        // The warm shutdown ends before the kubelet's SIGKILL.
        name: "VIDEOCOUNTER_SHUTDOWN_TIMEOUT".into(),
        value: Some(shutdown_timeout(worker.termination_grace_period_seconds)),
        ..EnvVar::default()
    });
    env.extend(worker.env.iter().map(|e| EnvVar {
        name: e.name.clone(),
        value: Some(e.value.clone()),
        ..EnvVar::default()
    }));
    let mut mounts = vec![
        VolumeMount {
            name: DATA_VOLUME.into(),
            mount_path: DATA_DIR.into(),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: CONFIG_VOLUME.into(),
            mount_path: CONFIG_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: TMP_VOLUME.into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        },
    ];
    mounts.extend(secrets.iter().enumerate().map(|(i, secret)| VolumeMount {
        name: format!("secret-{i}"),
        mount_path: format!("{SECRETS_DIR}/{secret}"),
        read_only: Some(true),
        ..VolumeMount::default()
    }));
    let probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    let quantities = |m: &BTreeMap<String, crate::crd::Quantity>| {
        (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.to_k8s())).collect())
    };
    Container {
        name: "worker".into(),
        image: Some(counter.image.clone()),
        image_pull_policy: worker.image_pull_policy.map(|p| p.as_str().into()),
        args: Some(vec![
            "--config".into(),
            format!("{CONFIG_DIR}/{CONFIG_FILE}"),
            "--data-dir".into(),
            DATA_DIR.into(),
        ]),
        env: Some(env),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: HTTP_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        // Ready means the partition stores are restored; a restoring worker
        // stays alive (healthz) but gets no traffic and blocks the next batch.
        readiness_probe: Some(probe("/readyz", 5, 3)),
        liveness_probe: Some(probe("/healthz", 10, 6)),
        resources: Some(ResourceRequirements {
            requests: quantities(&worker.resources.requests),
            limits: quantities(&worker.resources.limits),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(WORKER_UID),
            run_as_group: Some(WORKER_UID),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

/// Prefer one worker per node, so losing a node loses few partitions' owners.
fn spread_over_nodes(vc_name: &str) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                weight: 100,
                pod_affinity_term: PodAffinityTerm {
                    topology_key: "kubernetes.io/hostname".into(),
                    label_selector: Some(LabelSelector {
                        match_labels: Some(selector_labels(vc_name)),
                        ..LabelSelector::default()
                    }),
                    ..PodAffinityTerm::default()
                },
            }]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::VideoCounter;
    use crate::reconcile::build::config_map;
    use crate::reconcile::build::fixtures::{example, valid};
    use kube::ResourceExt;

    fn build(vc: &VideoCounter) -> StatefulSet {
        let counter = valid(vc);
        stateful_set(&counter, &config_map(&counter))
    }

    fn template_annotations(sts: &StatefulSet) -> BTreeMap<String, String> {
        sts.spec
            .clone()
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap()
    }

    #[test]
    fn workers_are_replaced_only_by_the_operator() {
        let spec = build(&example()).spec.unwrap();
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        assert_eq!(spec.update_strategy.unwrap().type_.as_deref(), Some("OnDelete"));
        assert_eq!(spec.service_name.as_deref(), Some("likes-headless"));
        let policy = spec.persistent_volume_claim_retention_policy.unwrap();
        assert_eq!(policy.when_deleted.as_deref(), Some("Delete"));
        assert_eq!(policy.when_scaled.as_deref(), Some("Retain"));
    }

    #[test]
    fn a_pod_with_more_cpus_runs_more_sessions() {
        use crate::crd::Quantity;
        use crate::crd::ResourcesSpec;
        let with = |key: &str, cpu: &str| {
            let mut r = ResourcesSpec::default();
            let map = if key == "limits" {
                &mut r.limits
            } else {
                &mut r.requests
            };
            map.insert("cpu".into(), Quantity::new(cpu));
            worker_threads(&r)
        };
        assert_eq!(worker_threads(&ResourcesSpec::default()), 1);
        assert_eq!(with("requests", "250m"), 1);
        assert_eq!(with("limits", "4"), 4);
        assert_eq!(with("limits", "2500m"), 2);
        assert_eq!(with("requests", "1.5"), 1);
        assert_eq!(with("limits", "bogus"), 1);
    }

    #[test]
    fn the_warm_shutdown_ends_within_the_grace_period() {
        assert_eq!(shutdown_timeout(60), "50s");
        assert_eq!(shutdown_timeout(30), "25s");
        assert_eq!(shutdown_timeout(5), "3s");
        assert_eq!(shutdown_timeout(1), "1s");
        let pod = build(&example()).spec.unwrap().template.spec.unwrap();
        let env = pod.containers[0].env.as_ref().unwrap();
        let timeout = env
            .iter()
            .find(|e| e.name == "VIDEOCOUNTER_SHUTDOWN_TIMEOUT")
            .unwrap();
        assert_eq!(timeout.value.as_deref(), Some("50s"));
    }

    #[test]
    fn the_pod_name_is_the_static_member_id() {
        let pod = build(&example()).spec.unwrap().template.spec.unwrap();
        let c = &pod.containers[0];
        let id = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "VIDEOCOUNTER_INSTANCE_ID")
            .unwrap();
        assert_eq!(
            id.value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "metadata.name"
        );
        assert_eq!(
            c.args.as_ref().unwrap(),
            &[
                "--config",
                "/etc/videocounter/config.yaml",
                "--data-dir",
                "/var/lib/videocounter"
            ]
        );
        assert_eq!(c.image.as_deref(), Some("ghcr.io/videocounter/worker:0.1.0"));
        let readiness = c.readiness_probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(readiness.path.as_deref(), Some("/readyz"));
        let liveness = c.liveness_probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(liveness.path.as_deref(), Some("/healthz"));
    }

    #[test]
    fn the_pod_is_hardened() {
        let pod = build(&example()).spec.unwrap().template.spec.unwrap();
        let psc = pod.security_context.unwrap();
        assert_eq!(
            (psc.run_as_non_root, psc.fs_group),
            (Some(true), Some(WORKER_UID))
        );
        let sc = pod.containers[0].security_context.clone().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
        assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let mounts: Vec<_> = pod.containers[0]
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(mounts, ["/var/lib/videocounter", "/etc/videocounter", "/tmp"]);
        assert_eq!(pod.automount_service_account_token, Some(false));
    }

    #[test]
    fn a_configuration_change_changes_the_template() {
        let vc = example();
        let mut changed = example();
        changed.spec.commit_interval = "1s".into();
        assert_ne!(
            template_annotations(&build(&vc))[CONFIG_HASH_ANNOTATION],
            template_annotations(&build(&changed))[CONFIG_HASH_ANNOTATION]
        );
        let mut scaled = example();
        scaled.spec.replicas = 7;
        assert_eq!(
            build(&vc).spec.unwrap().template,
            build(&scaled).spec.unwrap().template,
            "scaling must not restart pods"
        );
    }

    #[test]
    fn a_restart_annotation_reaches_the_template() {
        let mut vc = example();
        vc.annotations_mut()
            .insert(RESTART_ANNOTATION.into(), "2025-01-01T00:00:00Z".into());
        assert_eq!(
            template_annotations(&build(&vc))[RESTART_ANNOTATION],
            "2025-01-01T00:00:00Z"
        );
    }

    #[test]
    fn user_labels_cannot_override_the_selector() {
        let mut vc = example();
        vc.spec
            .worker
            .pod_labels
            .insert("app.kubernetes.io/instance".into(), "other".into());
        vc.spec.worker.pod_labels.insert("team".into(), "media".into());
        let labels = build(&vc)
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .labels
            .unwrap();
        assert_eq!(labels["app.kubernetes.io/instance"], "likes");
        assert_eq!(labels["team"], "media");
    }

    #[test]
    fn secrets_are_mounted_read_only() {
        let mut vc = example();
        vc.spec.kafka = serde_json::from_value(serde_json::json!({
            "bootstrapServers": "k:9093", "securityProtocol": "SASL_PLAINTEXT",
            "sasl": {"mechanism": "PLAIN", "username": {"name": "creds", "key": "user"},
                     "password": {"name": "creds", "key": "pass"}}
        }))
        .unwrap();
        let pod = build(&vc).spec.unwrap().template.spec.unwrap();
        let volume = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "secret-0")
            .unwrap();
        assert_eq!(volume.secret.unwrap().secret_name.as_deref(), Some("creds"));
        let mount = pod.containers[0]
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "secret-0")
            .cloned()
            .unwrap();
        assert_eq!(mount.mount_path, "/var/run/secrets/videocounter/creds");
        assert_eq!(mount.read_only, Some(true));
    }

    #[test]
    fn storage_follows_the_spec() {
        let mut vc = example();
        vc.spec.storage.size = "5Gi".into();
        vc.spec.storage.storage_class_name = Some("fast".into());
        let claim = &build(&vc).spec.unwrap().volume_claim_templates.unwrap()[0];
        let spec = claim.spec.as_ref().unwrap();
        assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(
            spec.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"],
            Quantity("5Gi".into())
        );
    }
}
