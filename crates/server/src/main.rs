use clap::Parser;
use duet_server::config::{Cli, Command};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("DUET_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let Cli { command: Command::Serve(args) } = Cli::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        on_signal.cancel();
    });
    let sandbox = std::sync::Arc::new(NotYetWired);
    duet_server::serve(args, listener, shutdown, sandbox).await
}

/// Interim: the Docker sandbox is wired in the next commit; until then runs are refused.
struct NotYetWired;

impl duet_sandbox::Sandbox for NotYetWired {
    fn start(&self, _: duet_sandbox::RunRequest) -> Result<duet_sandbox::RunHandle, duet_sandbox::SandboxError> {
        Err(duet_sandbox::SandboxError::Busy { running: 0, queued: 0 })
    }
    fn health(&self) -> duet_sandbox::Health {
        duet_sandbox::Health { status: "degraded", detail: Some("the Docker sandbox is not wired yet".into()), running: 0, queued: 0, warm: 0 }
    }
}

/// Ctrl-C, or SIGTERM (what `docker stop` sends).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
