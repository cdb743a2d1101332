//! Settings of one worker process: the YAML file the operator mounts
//! (`videocounter_protocol::WorkerConfig`), overridden by flags with
//! environment fallbacks, validated once at start.

use crate::count::counts::MAX_WINDOWS;
use crate::count::window::{CountWindow, combine_bucket_ms};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use videocounter_protocol::records::MAX_VIDEO_ID_BYTES;
use videocounter_protocol::{HumanDuration, WorkerConfig, topics};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "videocounter-worker",
    version,
    about = "Exactly-once windowed like counter on Kafka"
)]
pub struct Cli {
    /// Worker configuration file (YAML, camelCase keys). Without it every default applies.
    #[arg(long, env = "VIDEOCOUNTER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers; overrides `kafka.bootstrapServers`.
    #[arg(long, env = "VIDEOCOUNTER_KAFKA_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// This worker's stable name (the pod name): static group membership and transactional id.
    #[arg(long, env = "VIDEOCOUNTER_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Where the partition stores live; overrides `dataDir`.
    #[arg(long, env = "VIDEOCOUNTER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address; overrides `httpListen`.
    #[arg(long, env = "VIDEOCOUNTER_HTTP_LISTEN")]
    pub http_listen: Option<String>,
    /// Overrides `applicationId` (consumer group, transactional ids, internal topics).
    #[arg(long, env = "VIDEOCOUNTER_APPLICATION_ID")]
    pub application_id: Option<String>,
    #[arg(long, env = "VIDEOCOUNTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Consumer group protocol: `classic` (cooperative-sticky; a crashed
    /// static member gets its partitions back at once) or `consumer` (KIP-848,
    /// broker-side assignment). See the README for the measurements.
    #[arg(long, env = "VIDEOCOUNTER_GROUP_PROTOCOL", value_enum, default_value_t = GroupProtocol::Classic)]
    pub group_protocol: GroupProtocol,
    /// Classic protocol only: how long the group waits for a silent member before
    /// moving its partitions (KIP-848 takes it from the broker's
    /// `group.consumer.session.timeout.ms`).
    #[arg(long, env = "VIDEOCOUNTER_SESSION_TIMEOUT", default_value = "45s")]
    pub session_timeout: HumanDuration,
    /// How long a warm shutdown (SIGTERM) may take before the process exits
    /// anyway; keep it below the pod's termination grace period. Whatever was
    /// not committed by then is aborted by the broker or the next instance.
    #[arg(long, env = "VIDEOCOUNTER_SHUTDOWN_TIMEOUT", default_value = "30s")]
    pub shutdown_timeout: HumanDuration,
    /// Consumer sessions in this process, each on its own thread with its own
    /// consumer, producer and share of the partitions: one per CPU to use.
    /// With more than one, session `i` is the group member `<instance-id>.t<i>`.
    #[arg(long, env = "VIDEOCOUNTER_THREADS", default_value_t = 1)]
    pub threads: u16,
}

pub use videocounter_shell::logs::LogFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupProtocol {
    /// Classic protocol with the cooperative-sticky assignor (KIP-429).
    Classic,
    /// The broker-driven consumer protocol (KIP-848).
    Consumer,
}

/// Everything a running worker needs, derived once from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub worker: WorkerConfig,
    pub instance_id: String,
    pub log_format: LogFormat,
    pub group_protocol: GroupProtocol,
    pub session_timeout_ms: u64,
    pub shutdown_timeout: std::time::Duration,
    /// Consumer sessions of the process.
    pub threads: u16,
    pub specs: Arc<[CountWindow]>,
    pub input_topic: String,
    pub repartition_topic: String,
    pub changelog_topic: String,
    pub dead_letter_topic: String,
    pub partitions: u32,
    /// Combining bucket of the re-key stage (gcd of the window sizes).
    pub bucket_ms: i64,
    /// `<dataDir>/<applicationId>`: one store per partition below it.
    pub store_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("configuration file {path} is not a valid worker configuration: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

const DEFAULT_BOOTSTRAP: &str = "localhost:9092";

impl Settings {
    pub fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => Some((path.clone(), read_file(path)?)),
            None => None,
        };
        Self::build(cli, file.as_ref().map(|(p, text)| (p.clone(), text.as_str())))
    }

    /// Builds settings from flags and the configuration file's text.
    pub fn build(cli: &Cli, file: Option<(PathBuf, &str)>) -> Result<Self, ConfigError> {
        let mut worker = match file {
            Some((path, text)) => parse_worker_config(&path, text)?,
            None => WorkerConfig::with_bootstrap(DEFAULT_BOOTSTRAP),
        };
        if let Some(b) = &cli.bootstrap_servers {
            worker.kafka.bootstrap_servers = b.clone();
        }
        if let Some(d) = &cli.data_dir {
            worker.data_dir = d.clone();
        }
        if let Some(h) = &cli.http_listen {
            worker.http_listen = h.clone();
        }
        if let Some(a) = &cli.application_id {
            worker.application_id = a.clone();
        }
        let instance_id = cli.instance_id.clone().unwrap_or_else(hostname);

        let mut errors = worker.validate().err().unwrap_or_default();
        if !is_valid_instance_id(&instance_id) {
            errors.push(format!(
                "instanceId {instance_id:?} must be 1-{MAX_VIDEO_ID_BYTES} characters of [a-zA-Z0-9._-]"
            ));
        }
        if worker.windows.len() > MAX_WINDOWS {
            errors.push(format!(
                "windows: at most {MAX_WINDOWS} window sizes are supported"
            ));
        }
        if worker.http_listen.parse::<std::net::SocketAddr>().is_err() {
            errors.push(format!(
                "httpListen {:?} is not an address like 0.0.0.0:8080",
                worker.http_listen
            ));
        }
        if !(1..=256).contains(&cli.threads) {
            errors.push(format!("threads {} must be between 1 and 256", cli.threads));
        }
        if cli.threads > 1 && instance_id.len() + 5 > MAX_VIDEO_ID_BYTES {
            errors.push(format!(
                "instanceId {instance_id:?} is too long to add a thread suffix (.t<n>)"
            ));
        }
        if cli.session_timeout.as_millis() < 1_000 {
            errors.push("session timeout must be at least 1s".into());
        }
        if !errors.is_empty() {
            return Err(ConfigError::Invalid(errors));
        }

        let specs: Arc<[CountWindow]> = worker
            .resolved_windows()
            .iter()
            .map(CountWindow::from_resolved)
            .collect();
        let app = worker.application_id.clone();
        Ok(Self {
            instance_id,
            log_format: cli.log_format,
            group_protocol: cli.group_protocol,
            session_timeout_ms: cli.session_timeout.as_millis(),
            shutdown_timeout: cli.shutdown_timeout.0,
            threads: cli.threads,
            bucket_ms: combine_bucket_ms(&specs),
            input_topic: worker.topics.input.clone(),
            repartition_topic: topics::repartition_topic(&app),
            changelog_topic: topics::changelog_topic(&app),
            dead_letter_topic: worker.dead_letter_topic(),
            partitions: worker.topics.partitions,
            store_dir: worker.data_dir.join(&app),
            specs,
            worker,
        })
    }

    /// `"{applicationId}-{instanceId}"`: one transactional producer per worker.
    /// The settings of consumer session `slot`: its own group member and
    /// transactional id when the process runs several.
    pub fn for_slot(&self, slot: u16) -> Settings {
        let mut s = self.clone();
        if self.threads > 1 {
            s.instance_id = session_member_id(&self.instance_id, slot);
        }
        s
    }

    pub fn transactional_id(&self) -> String {
        format!("{}-{}", self.worker.application_id, self.instance_id)
    }

    pub fn exactly_once(&self) -> bool {
        self.worker.processing_guarantee == videocounter_protocol::ProcessingGuarantee::ExactlyOnce
    }

    pub fn partition_dir(&self, partition: i32) -> PathBuf {
        self.store_dir.join(format!("partition-{partition}"))
    }

    /// What a partition store mirrors; a store of anything else is rebuilt.
    pub fn store_identity(&self, partition: i32) -> String {
        format!("{}/{partition}", self.changelog_topic)
    }
}

fn read_file(path: &PathBuf) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })
}

pub fn parse_worker_config(path: &std::path::Path, text: &str) -> Result<WorkerConfig, ConfigError> {
    serde_saphyr::from_str::<WorkerConfig>(text).map_err(|e| ConfigError::Parse {
        path: path.into(),
        reason: e.to_string(),
    })
}

fn is_valid_instance_id(id: &str) -> bool {
    (1..=MAX_VIDEO_ID_BYTES).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The host name (the pod name in Kubernetes), the default instance id.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "videocounter-worker".into())
}

/// The group member id of session `slot` of a process: `<instance>.t<slot>`.
pub fn session_member_id(instance: &str, slot: u16) -> String {
    format!("{instance}.t{slot}")
}

/// The process (pod) a group member id belongs to: the member id without
/// its session suffix.
pub fn process_of_member(member: &str) -> &str {
    match member.rsplit_once(".t") {
        Some((process, slot)) if !slot.is_empty() && slot.bytes().all(|b| b.is_ascii_digit()) => process,
        _ => member,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["videocounter-worker"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn each_session_of_a_process_is_its_own_group_member() {
        let one = Settings::build(&cli(&["--instance-id", "likes-0"]), None).unwrap();
        assert_eq!(
            one.for_slot(0).instance_id,
            "likes-0",
            "one session keeps the pod name"
        );
        let two = Settings::build(&cli(&["--instance-id", "likes-0", "--threads", "2"]), None).unwrap();
        assert_eq!(two.for_slot(1).instance_id, "likes-0.t1");
        assert_eq!(two.for_slot(1).transactional_id(), "videocounter-likes-0.t1");
        assert_eq!(process_of_member("likes-0.t1"), "likes-0");
        assert_eq!(process_of_member("likes-0"), "likes-0");
        assert_eq!(process_of_member("a.tx"), "a.tx");
        assert_eq!(process_of_member("a.t"), "a.t");
        assert!(Settings::build(&cli(&["--threads", "0"]), None).is_err());
    }

    #[test]
    fn flags_alone_give_every_default() {
        let s = Settings::build(&cli(&["--instance-id", "w-0"]), None).unwrap();
        assert_eq!(s.worker.kafka.bootstrap_servers, DEFAULT_BOOTSTRAP);
        assert_eq!(s.input_topic, "video_clicks_ingestion");
        assert_eq!(s.repartition_topic, "videocounter-repartition");
        assert_eq!(s.changelog_topic, "videocounter-counts-changelog");
        assert_eq!(s.partitions, 6);
        assert_eq!(s.bucket_ms, 60_000);
        assert_eq!(s.specs.len(), 3);
        assert_eq!(s.transactional_id(), "videocounter-w-0");
        assert!(s.exactly_once());
        assert_eq!(
            s.partition_dir(3),
            PathBuf::from("/var/lib/videocounter/videocounter/partition-3")
        );
    }

    #[test]
    fn flags_override_the_file() {
        let yaml = "applicationId: app1\nkafka:\n  bootstrapServers: file:9092\nwindows:\n  - size: 30s\n  - size: 1m\ndataDir: /file\nemit: onWindowClose\n";
        let s = Settings::build(
            &cli(&[
                "--instance-id",
                "pod-1",
                "--bootstrap-servers",
                "flag:9092",
                "--data-dir",
                "/flag",
                "--http-listen",
                "127.0.0.1:9000",
            ]),
            Some(("c.yaml".into(), yaml)),
        )
        .unwrap();
        assert_eq!(s.worker.kafka.bootstrap_servers, "flag:9092");
        assert_eq!(s.store_dir, PathBuf::from("/flag/app1"));
        assert_eq!(s.worker.http_listen, "127.0.0.1:9000");
        assert_eq!(s.bucket_ms, 30_000);
        assert_eq!(s.worker.emit, videocounter_protocol::EmitMode::OnWindowClose);
    }

    #[test]
    fn bootstrap_servers_may_come_from_the_flag_alone() {
        let yaml = "applicationId: app1\n";
        let s = Settings::build(
            &cli(&["--instance-id", "pod-1", "--bootstrap-servers", "flag:9092"]),
            Some(("c.yaml".into(), yaml)),
        )
        .unwrap();
        assert_eq!(s.worker.kafka.bootstrap_servers, "flag:9092");
        let err = Settings::build(&cli(&["--instance-id", "pod-1"]), Some(("c.yaml".into(), yaml)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("kafka.bootstrapServers is empty"), "{err}");
    }

    #[test]
    fn invalid_settings_name_every_problem() {
        let yaml = "kafka:\n  bootstrapServers: k:9092\nwindows: []\ncommitInterval: 0s\n";
        let err = Settings::build(
            &cli(&["--instance-id", "bad id", "--http-listen", "nowhere"]),
            Some(("c.yaml".into(), yaml)),
        )
        .unwrap_err()
        .to_string();
        for needle in ["windows", "commitInterval", "instanceId", "httpListen"] {
            assert!(err.contains(needle), "{needle} missing from: {err}");
        }
    }

    #[test]
    fn broken_yaml_is_reported_with_its_path() {
        let err = Settings::build(&cli(&[]), Some(("/etc/w.yaml".into(), "kafka: [oops")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/w.yaml"), "{err}");
        let err = Settings::build(
            &cli(&[]),
            Some(("w.yaml".into(), "kafka: {bootstrapServers: k}\nbogus: 1\n")),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bogus"), "{err}");
    }
}
