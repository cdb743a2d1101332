//! The gateway's command line (flags with environment fallbacks) and the
//! settings it resolves to. Given the workers' configuration file
//! (`--worker-config`), the gateway takes the brokers, the input topic and
//! format and the output topics from it, so the two cannot disagree; flags
//! still win when both are set.

use crate::generator::traffic::TrafficSpec;
use crate::live::store::StoreLimits;
use anyhow::Context;
use clap::{Parser, ValueEnum};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use videocounter_protocol::config::KafkaConnection;
use videocounter_protocol::{HumanDuration, InputFormat, WorkerConfig};

/// The worker metric the status strip sums as "lag".
pub const DEFAULT_LAG_METRIC: &str = "videocounter_consumer_lag_records";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// The value is the video id (the Faust seed's format).
    Raw,
    /// `{"video_id": "...", "count": n, "ts": ms}`.
    Json,
}

impl From<FormatArg> for InputFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Raw => InputFormat::Raw,
            FormatArg::Json => InputFormat::Json,
        }
    }
}

pub use videocounter_shell::logs::LogFormat;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "videocounter-gateway",
    version,
    about = "Ingest API, live count feed, traffic generator and dashboard for videocounter"
)]
pub struct GatewayArgs {
    /// Address of the HTTP server (API, live feed, dashboard, metrics).
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// The workers' YAML configuration: brokers, topics and input format come from it.
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_WORKER_CONFIG")]
    pub worker_config: Option<PathBuf>,
    /// Kafka bootstrap servers (host:port,...). Required without --worker-config.
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// Topic the likes are produced to [default: video_clicks_ingestion].
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_INPUT_TOPIC")]
    pub input_topic: Option<String>,
    /// Wire format of produced likes; must match the workers' `topics.inputFormat` [default: raw].
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_INPUT_FORMAT", value_enum)]
    pub input_format: Option<FormatArg>,
    /// Topics with window counts, comma-separated [default: video_aggregations_1,_5,_10].
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_OUTPUT_TOPICS", value_delimiter = ',')]
    pub output_topics: Vec<String>,
    /// Base URL of a worker's HTTP server, for readiness and lag (repeat, or comma-separated).
    #[arg(
        long = "worker-url",
        env = "VIDEOCOUNTER_GATEWAY_WORKER_URLS",
        value_delimiter = ','
    )]
    pub worker_urls: Vec<String>,
    /// Worker metric summed as "lag" in the status strip.
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_WORKER_LAG_METRIC", default_value = DEFAULT_LAG_METRIC)]
    pub worker_lag_metric: String,
    /// How long Kafka may take to acknowledge a like before the API answers 503.
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_DELIVERY_TIMEOUT", default_value = "5s")]
    pub delivery_timeout: HumanDuration,
    /// How far back to read the output topics at start (fills the charts).
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_HISTORY", default_value = "30m")]
    pub history: HumanDuration,
    /// Most videos kept in memory (least recently updated are dropped).
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_MAX_VIDEOS", default_value_t = 10_000)]
    pub max_videos: usize,
    /// Recent windows kept per video and window size.
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_WINDOWS_KEPT", default_value_t = 30)]
    pub windows_kept: usize,
    /// Largest accepted request body, bytes (larger ones get 413).
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
    /// Videos the built-in generator starts with (comma-separated).
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_GENERATE_VIDEOS", value_delimiter = ',')]
    pub generate_videos: Vec<String>,
    /// Likes per minute for each of --generate-videos.
    #[arg(
        long,
        env = "VIDEOCOUNTER_GATEWAY_GENERATE_RATE_PER_MINUTE",
        default_value_t = 60.0
    )]
    pub generate_rate_per_minute: f64,
    /// Start the generator at boot (otherwise the dashboard starts it).
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_GENERATE")]
    pub generate: bool,
    /// Seed of the generator's random arrivals, to repeat a run (default: the clock).
    #[arg(long, env = "VIDEOCOUNTER_GATEWAY_GENERATE_SEED")]
    pub generate_seed: Option<u64>,
    #[arg(
        long,
        env = "VIDEOCOUNTER_GATEWAY_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// Everything the gateway runs with, defaults applied.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub connection: KafkaConnection,
    pub input_topic: String,
    pub input_format: InputFormat,
    pub output_topics: Vec<String>,
    /// Window types (`1min`, ...) the dashboard shows, smallest first.
    pub window_labels: Vec<String>,
    pub worker_urls: Vec<String>,
    pub lag_metric: String,
    pub delivery_timeout: Duration,
    pub history: Duration,
    pub limits: StoreLimits,
    pub max_body_bytes: usize,
    pub traffic: TrafficSpec,
    pub generate: bool,
    pub generate_seed: u64,
}

pub fn load_worker_config(path: &Path) -> anyhow::Result<WorkerConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_saphyr::from_str(&text)
        .with_context(|| format!("parsing the worker configuration {}", path.display()))
}

/// Applies flags over the worker configuration over the defaults.
pub fn resolve(args: &GatewayArgs, worker: Option<&WorkerConfig>) -> Result<Settings, String> {
    let connection = match (&args.bootstrap_servers, worker) {
        (Some(servers), Some(w)) => KafkaConnection {
            bootstrap_servers: servers.clone(),
            ..w.kafka.clone()
        },
        (Some(servers), None) => videocounter_shell::kafka::plaintext(servers),
        (None, Some(w)) => w.kafka.clone(),
        (None, None) => return Err("--bootstrap-servers or --worker-config is required".into()),
    };
    let base = worker
        .cloned()
        .unwrap_or_else(|| WorkerConfig::with_bootstrap(connection.bootstrap_servers.clone()));
    let windows = base.resolved_windows();
    let output_topics = if args.output_topics.is_empty() {
        windows.iter().map(|w| w.output_topic.clone()).collect()
    } else {
        args.output_topics.clone()
    };
    let traffic = TrafficSpec::PerVideo {
        rates: args
            .generate_videos
            .iter()
            .map(|v| (v.clone(), args.generate_rate_per_minute))
            .collect::<BTreeMap<_, _>>(),
    };
    traffic.plan().map_err(|e| format!("--generate-videos: {e}"))?;
    if args.delivery_timeout.as_millis() == 0 {
        return Err("--delivery-timeout must be positive".into());
    }
    Ok(Settings {
        listen: args.listen,
        connection,
        input_topic: args.input_topic.clone().unwrap_or(base.topics.input.clone()),
        input_format: args
            .input_format
            .map(Into::into)
            .unwrap_or(base.topics.input_format),
        output_topics,
        window_labels: windows.into_iter().map(|w| w.label).collect(),
        worker_urls: args.worker_urls.clone(),
        lag_metric: args.worker_lag_metric.clone(),
        delivery_timeout: args.delivery_timeout.0,
        history: args.history.0,
        limits: StoreLimits {
            max_videos: args.max_videos,
            windows_per_type: args.windows_kept,
        },
        max_body_bytes: args.max_body_bytes,
        traffic,
        generate: args.generate,
        generate_seed: args
            .generate_seed
            .unwrap_or_else(|| crate::clock::now_ms() as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> GatewayArgs {
        let mut argv = vec!["videocounter-gateway"];
        argv.extend_from_slice(extra);
        GatewayArgs::try_parse_from(argv).unwrap()
    }

    #[test]
    fn defaults_are_the_seed_topics_and_raw_format() {
        let s = resolve(&args(&["--bootstrap-servers", "k:9092"]), None).unwrap();
        assert_eq!(s.connection.bootstrap_servers, "k:9092");
        assert_eq!(s.input_topic, "video_clicks_ingestion");
        assert_eq!(s.input_format, InputFormat::Raw);
        assert_eq!(
            s.output_topics,
            [
                "video_aggregations_1",
                "video_aggregations_5",
                "video_aggregations_10"
            ]
        );
        assert_eq!(s.window_labels, ["1min", "5min", "10min"]);
        assert_eq!(s.delivery_timeout, Duration::from_secs(5));
    }

    #[test]
    fn brokers_are_required() {
        let err = resolve(&args(&[]), None).unwrap_err();
        assert!(err.contains("--bootstrap-servers or --worker-config"), "{err}");
    }

    #[test]
    fn worker_config_fills_in_and_flags_win() {
        let yaml = "kafka:\n  bootstrapServers: w:9092\ntopics:\n  input: clicks\n  inputFormat: json\n\
                    windows:\n  - size: 30s\n  - size: 1m\n    outputTopic: per-minute\n";
        let worker: WorkerConfig = serde_saphyr::from_str(yaml).unwrap();
        let s = resolve(&args(&[]), Some(&worker)).unwrap();
        assert_eq!(s.connection.bootstrap_servers, "w:9092");
        assert_eq!(s.input_topic, "clicks");
        assert_eq!(s.input_format, InputFormat::Json);
        assert_eq!(s.output_topics, ["video_aggregations_30s", "per-minute"]);
        assert_eq!(s.window_labels, ["30s", "1min"]);

        let s = resolve(
            &args(&[
                "--bootstrap-servers",
                "x:1",
                "--input-format",
                "raw",
                "--input-topic",
                "t",
            ]),
            Some(&worker),
        )
        .unwrap();
        assert_eq!(s.connection.bootstrap_servers, "x:1");
        assert_eq!(s.input_format, InputFormat::Raw);
        assert_eq!(s.input_topic, "t");
    }

    #[test]
    fn lists_take_commas_and_generator_videos_get_the_rate() {
        let s = resolve(
            &args(&[
                "--bootstrap-servers",
                "k:1",
                "--worker-url",
                "http://a:1,http://b:2",
                "--generate-videos",
                "x,y",
                "--generate-rate-per-minute",
                "30",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(s.worker_urls, ["http://a:1", "http://b:2"]);
        let plan = s.traffic.plan().unwrap();
        assert_eq!(plan.videos, ["x", "y"]);
        assert_eq!(plan.total_per_sec, 1.0);
    }
}
