use clap::Parser;
use duet_server::config::{Cli, Command};
use tokio_util::sync::CancellationToken;

/// Stack of each runtime thread. Updates that reach yrs are validated to hold no nested types,
/// so nothing recurses deeply; this is defence in depth for the recursion in yrs that remains.
const THREAD_STACK: usize = 16 << 20;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK)
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DUET_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match Cli::parse().command {
        Command::Serve(args) => args,
        Command::CheckQuestions(check) => {
            let problems = duet_server::question_check::check_bank(&check).await?;
            std::process::exit(if problems == 0 { 0 } else { 1 });
        }
        Command::User(user) => return duet_server::people_cli::run(user).await,
        Command::Migrate(migrate) => return duet_server::database::migrate(migrate).await,
    };
    // The connection cap follows the limit now in force (http::serve logs both).
    if duet_server::http::raise_open_file_limit().is_none() {
        tracing::warn!("could not read or raise the open-file limit");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        on_signal.cancel();
    });
    let sandbox = std::sync::Arc::new(duet_server::docker_sandbox(&args)?);
    let health = sandbox.check_now().await;
    if health.status != "ok" {
        eprintln!(
            "WARNING: runs will fail until the sandbox is usable: {}\n  (GET /healthz shows the sandbox's state; editing works meanwhile)",
            health.detail.unwrap_or_default()
        );
    }
    let served = duet_server::serve(args, listener, shutdown, sandbox.clone()).await;
    sandbox.shutdown().await;
    served
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
