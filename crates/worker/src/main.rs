//! `baton-worker`: parses the settings (flags, each also settable as a `BATON_*` variable),
//! wires signals to the shutdown tokens, and calls `baton_worker::run`.

use anyhow::Context;
use baton_worker::{Config, Shutdown};
use clap::Parser;
use tracing::{info, warn};

async fn signal_stream(
) -> anyhow::Result<impl FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>
{
    use tokio::signal::unix::{signal, SignalKind};
    let term = std::sync::Arc::new(tokio::sync::Mutex::new(
        signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
    ));
    let int = std::sync::Arc::new(tokio::sync::Mutex::new(
        signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
    ));
    Ok(move || {
        let (term, int) = (term.clone(), int.clone());
        Box::pin(async move {
            let mut t = term.lock().await;
            let mut i = int.lock().await;
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = Config::parse();
    let grace = config.shutdown_grace;
    let shutdown = Shutdown::default();
    let mut next_signal = signal_stream().await?;
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let run = baton_worker::run(config, host.trim(), shutdown.clone());
    tokio::pin!(run);
    tokio::select! {
        r = &mut run => return r.context("worker failed to start"),
        _ = next_signal() => {}
    }
    info!(grace = ?grace, "signal received: draining (a second signal stops running tasks at once)");
    shutdown.drain.cancel();
    tokio::select! {
        r = &mut run => return r.context("worker failed"),
        _ = next_signal() => warn!("second signal: stopping running tasks"),
        _ = tokio::time::sleep(grace) => warn!("shutdown grace over: stopping running tasks"),
    }
    shutdown.abort.cancel();
    run.await.context("worker failed")
}
