//! `baton-worker`: parses the settings (flags, each also settable as a `BATON_*` variable),
//! installs the logs (and the traces, when an OTLP endpoint is set), wires signals to the
//! shutdown tokens, and calls `baton_worker::run_as`; flushes the traces; exits with one of
//! [`baton_worker::exit`]'s codes.

use std::process::ExitCode;

use anyhow::Context;
use baton_core::WorkerId;
use baton_worker::{exit, traces, Config, Shutdown};
use clap::{CommandFactory, Parser};
use tracing::{info, warn};

/// mimalloc rather than glibc's allocator: the worker allocates many small short-lived
/// buffers per task (events, script arguments, replies), and glibc's arenas spent a tenth of
/// its CPU on them in the queue-only benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

fn main() -> ExitCode {
    // Inside a box this executable is the relay (or the start-up probe), not a worker.
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        Some(a) if a == baton_worker::sandbox::RELAY_ARG => {
            return baton_worker::sandbox::relay::main(args.collect());
        }
        Some(a) if a == baton_worker::sandbox::PROBE_ARG => {
            return ExitCode::from(exit::SUCCESS);
        }
        _ => {}
    }
    let config = match Config::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are "errors" printed to stdout.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::BAD_SETTINGS
            } else {
                exit::SUCCESS
            });
        }
    };
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let id = WorkerId::for_this_process(host.trim());
    let endpoint = traces::endpoint(config.otlp_endpoint.as_deref(), |k| std::env::var(k).ok());
    let traces = match traces::install(endpoint, &id) {
        Ok(t) => t,
        Err(problem) => {
            let _ = Config::command()
                .error(clap::error::ErrorKind::InvalidValue, problem)
                .print();
            return ExitCode::from(exit::BAD_SETTINGS);
        }
    };
    if let Some(url) = &traces.endpoint {
        info!(endpoint = %url, "exporting traces (OTLP/HTTP)");
    }
    if let Err(problem) = config.check() {
        let _ = Config::command()
            .error(clap::error::ErrorKind::ArgumentConflict, problem)
            .print();
        return ExitCode::from(exit::BAD_SETTINGS);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.threads {
        runtime.worker_threads(usize::from(n));
    }
    let ran = runtime
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(worker(config, id)));
    // After the runtime: the last spans, ended by the drain, are flushed (a blocking send).
    traces.shutdown();
    match ran {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::from(exit::FAILED)
        }
    }
}

async fn worker(config: Config, id: WorkerId) -> anyhow::Result<()> {
    let grace = config.shutdown_grace;
    let shutdown = Shutdown::default();
    let mut next_signal = signal_stream().await?;
    let run = baton_worker::run_as(config, id, shutdown.clone());
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
