//! `bramble-hub`: parses flags, sets up logging, runs the hub until SIGTERM/SIGINT.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bramble_hub::{Hub, HubConfig};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

/// Bramble hub: cluster state and the Kubernetes-style API.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Directory for the state database and the admin token.
    #[arg(long, env = "BRAMBLE_DATA_DIR", default_value = "/var/lib/bramble")]
    data_dir: PathBuf,
    /// Address of the HTTP API.
    #[arg(long, env = "BRAMBLE_LISTEN", default_value = "0.0.0.0:7480")]
    listen: SocketAddr,
    /// Log filter, e.g. `info` or `bramble_hub=debug`.
    #[arg(long, env = "BRAMBLE_LOG", default_value = "info")]
    log: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log)?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = HubConfig {
        data_dir: args.data_dir,
        listen: args.listen,
    };
    config.validate()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let hub = Hub::start(config).await?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        hub.stop(Duration::from_secs(10)).await
    })
}
