//! `duet-loadgen`: drives any y-websocket server on loopback with typing clients and reports
//! fan-out latency, throughput, and the server's CPU and memory. See `cli.rs` for the flags.

mod cli;
mod client;
mod http;
mod idle;
mod load;
mod proc;
mod runs;
mod stats;
mod target;
mod track;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = cli::Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        // A hard cap on the whole run, whatever happens inside.
        let cap = std::time::Duration::from_secs_f64(args.hard_limit_secs());
        tokio::time::timeout(cap, run(&args))
            .await
            .map_err(|_| anyhow::anyhow!("run exceeded its {cap:?} hard limit"))?
    })?;
    if args.json {
        eprintln!("{}", report.human());
        println!("{}", report.json());
    } else {
        println!("{}", report.human());
    }
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

async fn run(args: &cli::Args) -> anyhow::Result<stats::Report> {
    let rooms = if let Some(n) = args.idle_rooms {
        n
    } else {
        args.rooms
    };
    let targets = target::prepare(args, rooms).await?;
    match args.idle_rooms {
        Some(_) => idle::run(args, targets).await,
        None => load::run(args, targets).await,
    }
}
