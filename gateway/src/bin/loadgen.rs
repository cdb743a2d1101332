//! `videocounter-loadgen`: synthetic or replayed likes, straight to Kafka.
//!
//! ```sh
//! videocounter-loadgen generate --bootstrap-servers 127.0.0.1:19092 \
//!     --videos 1000 --rate-per-minute 60 --distribution zipf --duration 1m
//! videocounter-loadgen replay --bootstrap-servers 127.0.0.1:19092 --file events.csv --rate 500
//! ```
//!
//! Prints one JSON report line on stdout at the end (progress goes to stderr).

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use videocounter_gateway::config::{FormatArg, LogFormat};
use videocounter_gateway::generator::load::{self, LoadReport};
use videocounter_gateway::generator::replay::{FileFormat, csv_rows, json_lines};
use videocounter_gateway::generator::traffic::{Distribution, TrafficSpec, default_prefix};
use videocounter_gateway::ingest::producer::{LikeProducer, ProducerSettings};
use videocounter_gateway::ingest::request::check_video_id;
use videocounter_protocol::HumanDuration;

#[derive(Debug, Parser)]
#[command(
    name = "videocounter-loadgen",
    version,
    about = "Generate or replay likes into videocounter's input topic"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Poisson arrivals over N videos (uniform or Zipf), or over named videos.
    Generate(GenerateArgs),
    /// Send the events of a JSON-lines or CSV file at a fixed rate.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "VIDEOCOUNTER_LOADGEN_BOOTSTRAP_SERVERS")]
    bootstrap_servers: String,
    /// Input topic of the workers.
    #[arg(
        long,
        env = "VIDEOCOUNTER_LOADGEN_TOPIC",
        default_value = "video_clicks_ingestion"
    )]
    topic: String,
    /// Must match the workers' `topics.inputFormat`.
    #[arg(
        long,
        env = "VIDEOCOUNTER_LOADGEN_INPUT_FORMAT",
        value_enum,
        default_value = "raw"
    )]
    input_format: FormatArg,
    /// How long Kafka may take to acknowledge a record before it counts as failed.
    #[arg(long, default_value = "30s")]
    delivery_timeout: HumanDuration,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Likes per minute per video (the average, for a Zipf spread).
    #[arg(long, default_value_t = 60.0)]
    rate_per_minute: f64,
    /// How many ids to spread over: `<prefix>1` .. `<prefix>N`.
    #[arg(long, default_value_t = 10)]
    videos: u32,
    #[arg(long, default_value = "video-")]
    prefix: String,
    #[arg(long, value_enum, default_value = "uniform")]
    distribution: Distribution,
    /// Zipf exponent: rank k gets weight 1/k^s.
    #[arg(long, default_value_t = 1.1)]
    zipf_s: f64,
    /// Named videos instead of a spread (repeat, or comma-separated), each at --rate-per-minute.
    #[arg(long = "video", value_delimiter = ',')]
    named: Vec<String>,
    /// Stop after this long (default: until Ctrl-C).
    #[arg(long)]
    duration: Option<HumanDuration>,
    /// Seed of the random arrivals (same seed, same sequence of ids and gaps).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Events file: .jsonl/.ndjson (like events) or .csv (header with video_id[,count][,ts]).
    #[arg(long)]
    file: PathBuf,
    /// File format, when the extension does not tell.
    #[arg(long, value_enum)]
    format: Option<FileFormat>,
    /// Events per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Keep the file's `ts` as the likes' time (default: the time each is sent).
    #[arg(long)]
    keep_timestamps: bool,
    /// Skip invalid lines (logged) instead of stopping at the first.
    #[arg(long)]
    skip_invalid: bool,
}

fn producer(args: &KafkaArgs) -> anyhow::Result<LikeProducer> {
    LikeProducer::new(
        ProducerSettings {
            connection: videocounter_shell::kafka::plaintext(&args.bootstrap_servers),
            topic: args.topic.clone(),
            format: args.input_format.into(),
            delivery_timeout: args.delivery_timeout.0,
        },
        "videocounter-loadgen",
    )
}

fn stop_on_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        t.cancel();
    });
    token
}

async fn generate(args: GenerateArgs) -> anyhow::Result<LoadReport> {
    let spec = if args.named.is_empty() {
        TrafficSpec::Spread {
            videos: args.videos,
            rate_per_minute: args.rate_per_minute,
            distribution: args.distribution,
            zipf_s: args.zipf_s,
            prefix: if args.prefix.is_empty() {
                default_prefix()
            } else {
                args.prefix
            },
        }
    } else {
        for id in &args.named {
            check_video_id(id)?;
        }
        TrafficSpec::PerVideo {
            rates: args
                .named
                .iter()
                .map(|v| (v.clone(), args.rate_per_minute))
                .collect::<BTreeMap<_, _>>(),
        }
    };
    let plan = spec.plan().map_err(anyhow::Error::msg)?;
    let producer = producer(&args.kafka)?;
    let seed = args
        .seed
        .unwrap_or_else(|| videocounter_gateway::clock::now_ms() as u64);
    tracing::info!(
        videos = plan.videos.len(),
        per_second = plan.total_per_sec,
        seed,
        topic = %args.kafka.topic,
        "generating likes"
    );
    let duration = args.duration.map(|d| d.0);
    Ok(load::generate(&producer, &plan, duration, seed, stop_on_ctrl_c()).await)
}

async fn replay(args: ReplayArgs) -> anyhow::Result<LoadReport> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number of events per second");
    }
    let format = match args.format.or_else(|| FileFormat::from_path(&args.file)) {
        Some(f) => f,
        None => bail!(
            "cannot tell the format of {} from its extension; pass --format jsonl or csv",
            args.file.display()
        ),
    };
    let file = std::fs::File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let reader = std::io::BufReader::new(file);
    let events: Box<dyn Iterator<Item = _>> = match format {
        FileFormat::Jsonl => Box::new(json_lines(reader)),
        FileFormat::Csv => {
            Box::new(csv_rows(reader).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?)
        }
    };
    let producer = producer(&args.kafka)?;
    tracing::info!(file = %args.file.display(), rate = args.rate, topic = %args.kafka.topic, "replaying");
    load::replay(
        &producer,
        events,
        args.rate,
        args.keep_timestamps,
        args.skip_invalid,
        stop_on_ctrl_c(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let log_format = match &cli.command {
        Command::Generate(a) => a.kafka.log_format,
        Command::Replay(a) => a.kafka.log_format,
    };
    videocounter_shell::logs::init(log_format, "info");
    let report = match cli.command {
        Command::Generate(a) => generate(a).await?,
        Command::Replay(a) => replay(a).await?,
    };
    println!("{}", serde_json::to_string(&report)?);
    if report.failed > 0 {
        bail!(
            "{} likes were not acknowledged by Kafka: {}",
            report.failed,
            report.first_error.as_deref().unwrap_or("unknown error")
        );
    }
    Ok(())
}
