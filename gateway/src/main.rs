//! `videocounter-gateway`: ingest API, live feed, generator and dashboard.

use clap::Parser;
use tokio_util::sync::CancellationToken;
use videocounter_gateway::config::{GatewayArgs, load_worker_config, resolve};
use videocounter_gateway::server;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = GatewayArgs::parse();
    videocounter_shell::logs::init(args.log_format, "info");
    let worker = args
        .worker_config
        .as_deref()
        .map(load_worker_config)
        .transpose()?;
    let settings = resolve(&args, worker.as_ref()).map_err(anyhow::Error::msg)?;
    let shutdown = CancellationToken::new();
    tokio::spawn(server::cancel_on_signal(shutdown.clone()));
    server::run(settings, shutdown).await
}
