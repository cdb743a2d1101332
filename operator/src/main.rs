//! `videocounter-operator`: wiring only (flags, logs, HTTP, leader election,
//! controller). The logic lives in the library.

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use videocounter_operator::controller;
use videocounter_operator::crd::VideoCounter;
use videocounter_operator::http::{HttpState, router};
use videocounter_operator::leader::{self, LeaseSettings};
use videocounter_operator::metrics::Metrics;
use videocounter_operator::reconcile::Context;
use videocounter_operator::reconcile::validate::Defaults;
use videocounter_operator::startup::{self, Step};
use videocounter_shell::logs::{self, LogFormat};

#[derive(Parser)]
#[command(
    version,
    about = "Kubernetes operator for VideoCounter resources",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator (the default).
    Run(RunArgs),
    /// Print the VideoCounter CustomResourceDefinition as YAML.
    Crd,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Manage VideoCounters in this namespace only (default: all namespaces).
    #[arg(long, env = "VIDEOCOUNTER_NAMESPACE")]
    namespace: Option<String>,

    /// Worker image for VideoCounters that name none.
    #[arg(long, env = "VIDEOCOUNTER_WORKER_IMAGE", default_value = default_worker_image())]
    worker_image: String,

    /// Address of the HTTP server (/healthz, /readyz, /metrics).
    #[arg(
        long,
        env = "VIDEOCOUNTER_OPERATOR_HTTP_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    http_listen: SocketAddr,

    /// Elect a leader with a Lease, so several replicas can run.
    #[arg(long, env = "VIDEOCOUNTER_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,

    /// Name of the leader Lease.
    #[arg(
        long,
        env = "VIDEOCOUNTER_LEASE_NAME",
        default_value = "videocounter-operator"
    )]
    lease_name: String,

    /// Namespace of the leader Lease (default: the pod's namespace, else
    /// --namespace, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,

    /// Seconds the lease stays valid without renewal (how long a crashed
    /// leader blocks a standby).
    #[arg(long, env = "VIDEOCOUNTER_LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,

    /// This replica's identity in the lease (default: hostname and process id).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,

    /// Log format.
    #[arg(long, env = "VIDEOCOUNTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn default_worker_image() -> &'static str {
    concat!("ghcr.io/videocounter/worker:", env!("CARGO_PKG_VERSION"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Crd) => {
            print!("{}", videocounter_operator::crd::crd_yaml());
            return ExitCode::SUCCESS;
        }
        Some(Command::Run(args)) => args,
        None => cli.run,
    };
    logs::init(args.log_format, "info,kube_lease_manager=warn");
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            // One line a person can act on (see `startup`), not a debug dump.
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let metrics = Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("binding the HTTP server to {}", args.http_listen))?;
    tracing::info!(address = %listener.local_addr()?, "HTTP server listening");
    let app = router(HttpState {
        registry: Arc::new(registry),
        ready: ready.clone(),
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });

    let client = kube::Client::try_default()
        .await
        .context("creating a Kubernetes client (in-cluster or KUBECONFIG)")?;
    let version = client
        .apiserver_version()
        .await
        .context("reaching the Kubernetes API server")?;
    tracing::info!(version = %version.git_version, namespace = ?args.namespace, "connected to the API server");
    check_video_counters_served(&client, args.namespace.as_deref()).await?;
    ready.store(true, Ordering::Relaxed);

    let mut leadership = if args.leader_election {
        let identity = args.identity.clone().unwrap_or_else(default_identity);
        let settings = LeaseSettings {
            name: args.lease_name.clone(),
            namespace: args
                .lease_namespace
                .clone()
                .or_else(|| args.namespace.clone())
                .unwrap_or_else(|| "default".into()),
            identity,
            duration: Duration::from_secs(args.lease_duration_seconds),
            grace: Duration::from_secs((args.lease_duration_seconds / 3).max(1)),
        };
        tokio::select! {
            acquired = leader::acquire(client.clone(), &settings) => Some(acquired.map_err(|e| match &e {
                kube_lease_manager::LeaseManagerError::KubeError(k) => match startup::explain(Step::LeaderLease, k) {
                    Some(line) => anyhow::anyhow!(line),
                    None => anyhow::Error::new(e).context("leader election"),
                },
                _ => anyhow::Error::new(e).context("leader election"),
            })?),
            _ = termination() => return Ok(ExitCode::SUCCESS),
        }
    } else {
        None
    };
    metrics.leader.set(1);

    let ctx = Arc::new(Context::new(
        client,
        args.namespace.clone(),
        Defaults {
            worker_image: args.worker_image.clone(),
        },
        metrics.clone(),
    ));
    let (stop, stopped) = watch::channel(false);
    let controller = controller::run(ctx, async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    });
    tokio::pin!(controller);
    let lease_lost = async {
        match leadership.as_mut() {
            Some(l) => l.lost().await,
            None => std::future::pending().await,
        }
    };
    let code = tokio::select! {
        _ = &mut controller => {
            tracing::error!("controller stopped unexpectedly");
            ExitCode::FAILURE
        }
        _ = termination() => {
            tracing::info!("terminating: finishing running reconciles");
            let _ = stop.send(true);
            controller.await;
            ExitCode::SUCCESS
        }
        _ = lease_lost => {
            tracing::error!("lost the leader lease: stopping");
            let _ = stop.send(true);
            controller.await;
            metrics.leader.set(0);
            return Ok(ExitCode::FAILURE);
        }
    };
    metrics.leader.set(0);
    if let Some(l) = leadership {
        l.release().await;
    }
    Ok(code)
}

/// Fails with one line saying what to do when VideoCounters cannot be listed
/// (the CRD is missing, RBAC forbids it), instead of a controller that retries
/// forever in the background.
async fn check_video_counters_served(client: &kube::Client, namespace: Option<&str>) -> anyhow::Result<()> {
    let api: kube::Api<VideoCounter> = match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    match api
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => match startup::explain(Step::ListVideoCounters, &e) {
            Some(line) => Err(anyhow::anyhow!(line)),
            None => Err(anyhow::Error::new(e).context("listing VideoCounters")),
        },
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "operator".into());
    format!("{host}-{}", std::process::id())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn termination() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
