//! `videocounter-worker`: wiring only. Settings, logs, the HTTP server and
//! signal handlers on a small Tokio runtime, processing on the main thread.

use clap::Parser;
use std::sync::Arc;
use videocounter_worker::config::{Cli, Settings};
use videocounter_worker::runtime::owners::OwnerDirectory;
use videocounter_worker::runtime::signals::Signals;
use videocounter_worker::runtime::state::Shared;
use videocounter_worker::runtime::{http, session};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    videocounter_shell::logs::init(cli.log_format, "info,librdkafka=warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("http")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the HTTP runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Before anything else: a SIGTERM during start-up is a warm shutdown too.
    let signals = match runtime.block_on(async { Signals::install() }) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return std::process::ExitCode::FAILURE;
        }
    };
    let settings = match Settings::from_cli(&cli) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("videocounter-worker: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let lookup = match session::lookup_config(&settings) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let owners = OwnerDirectory::new(
        settings.worker.application_id.clone(),
        settings.repartition_topic.clone(),
        lookup,
    );
    let shared = Arc::new(Shared::new(settings.clone(), owners));

    let listener = match runtime.block_on(tokio::net::TcpListener::bind(&settings.worker.http_listen)) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %settings.worker.http_listen, error = %e, "cannot listen for HTTP");
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing::info!(address = %settings.worker.http_listen, "HTTP listening");
    let app = http::router(shared.clone());
    runtime.spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    runtime.spawn(signals.listen(shared.clone()));

    session::run_all(settings, shared.clone());
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    if shared.process_failed() {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
