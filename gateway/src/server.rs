//! Wiring: builds every part from the settings, serves HTTP until a
//! shutdown signal, then stops the background tasks and flushes the producer.

use crate::config::Settings;
use crate::generator::runner::Generator;
use crate::http::{AppState, router};
use crate::ingest::producer::{LikeProducer, ProducerSettings};
use crate::live::LiveFeed;
use crate::live::consumer::{self, ConsumerSettings};
use crate::metrics::Metrics;
use crate::status::StatusPoller;
use anyhow::Context;
use prometheus_client::registry::Registry;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Updates a slow browser may fall behind before it is told to resync.
const FEED_BUFFER: usize = 4_096;

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let settings = Arc::new(settings);
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let producer = Arc::new(LikeProducer::new(
        ProducerSettings {
            connection: settings.connection.clone(),
            topic: settings.input_topic.clone(),
            format: settings.input_format,
            delivery_timeout: settings.delivery_timeout,
        },
        "videocounter-gateway",
    )?);
    let feed = LiveFeed::new(settings.limits, FEED_BUFFER);
    let consumer_task = consumer::spawn(
        ConsumerSettings {
            connection: settings.connection.clone(),
            topics: settings.output_topics.clone(),
            history: settings.history,
            refresh_every: Duration::from_secs(5),
        },
        feed.clone(),
        metrics.clone(),
        shutdown.clone(),
    )?;
    let generator = Generator::new(settings.traffic.clone(), settings.generate)?;
    let generator_task = generator.spawn(
        producer.clone(),
        metrics.clone(),
        settings.generate_seed,
        shutdown.clone(),
    );
    let status = StatusPoller {
        worker_urls: settings.worker_urls.clone(),
        lag_metric: settings.lag_metric.clone(),
        every: Duration::from_secs(2),
        snapshot: Arc::new(RwLock::new(Default::default())),
    };
    let status_task = status.clone().spawn(producer.clone(), shutdown.clone());

    let state = AppState {
        settings: settings.clone(),
        producer: producer.clone(),
        feed,
        generator,
        status,
        metrics,
        registry: Arc::new(registry),
        shutdown: shutdown.clone(),
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        input_topic = %settings.input_topic,
        input_format = ?settings.input_format,
        output_topics = ?settings.output_topics,
        workers = settings.worker_urls.len(),
        "gateway listening; dashboard at http://{}/",
        listener.local_addr()?
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("serving HTTP")?;

    shutdown.cancel();
    for task in [consumer_task, generator_task, status_task] {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let p = producer.clone();
    tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(5))).await?;
    tracing::info!("gateway stopped");
    Ok(())
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    token.cancel();
}
