//! `bramble-agent`: the node agent. Until M1-3/M1-4 land it only reports its
//! version and refuses to start with a clear message.

use clap::Parser;

/// Bramble node agent.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {}

fn main() {
    let _args = Args::parse();
    eprintln!(
        "bramble-agent {}: running pods arrives with M1-3/M1-4; nothing to do yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
