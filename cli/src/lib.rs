//! The `bramble` command line: kubectl-like `apply`, `get`, `describe` and
//! `delete` against the hub's Kubernetes-style API, and docker-like `run`,
//! `ps`, `rm`, `stop` and `start` ([`docker`]).
//!
//! Layout: [`args`] (syntax) → [`config`] (hub, token, namespace) →
//! [`context`] (settings + [`client`]) → one module per command. Tables and
//! text formats ([`table`], [`columns`], [`age`], [`output`], [`describe`]) are
//! kept apart from transport so later commands can reuse both halves.

pub use bramble_api::printing::age;
pub mod apply;
pub mod args;
pub mod build;
pub mod client;
pub mod client_config;
pub mod columns;
pub mod compose;
pub mod config;
pub mod container_command;
pub mod context;
pub mod create;
pub mod delete;
pub mod describe;
pub mod docker;
pub mod exec;
pub mod get;
pub mod image_load;
pub mod images;
pub use bramble_api::printing::json;
pub mod kinds;
pub mod logs;
pub mod manifests;
pub mod output;
pub mod rollout;
pub mod rollout_statefulset;
pub mod scale;
pub mod secrets_key;
pub mod table;
pub mod top;
pub mod trust;
pub mod version;
pub mod warnings;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::client::ClientError;

/// Parses `argv`, runs the command, prints any error; the process exit code.
pub fn main_with_args(argv: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = Cli::parse_from(argv);
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", render_error(&e));
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line; `Ok(false)` when some objects failed (their
/// errors were already printed).
pub fn run(cli: Cli) -> anyhow::Result<bool> {
    let env = |k: &str| std::env::var(k).ok();
    if let Command::Build(b) = &cli.command
        && b.check
    {
        // Local only: no hub settings needed.
        return build::check(b, &env, &mut std::io::stdout().lock());
    }
    let inputs = config::Inputs {
        hub_flag: cli.global.hub.clone(),
        token_flag: cli.global.token.clone(),
        token_env: env("BRAMBLE_TOKEN"),
        namespace_flag: cli.global.namespace.clone(),
        ca_flag: cli.global.certificate_authority.clone(),
        data_dir: cli.global.data_dir.clone(),
        config_path: config::config_path(env("XDG_CONFIG_HOME").as_deref(), env("HOME").as_deref()),
    };
    let ctx = context::Context::new(config::resolve(inputs)?)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match &cli.command {
        Command::Apply(a) => apply::run(&ctx, a, &mut out),
        Command::Get(a) => get::run(&ctx, a, &mut out),
        Command::Describe(a) => describe::run(&ctx, a, &mut out),
        Command::Delete(a) => delete::run(&ctx, a, &mut out),
        Command::Version => version::run(&ctx, &mut out),
        Command::Config(a) => client_config::run(&ctx, a, &mut out),
        Command::Images(c) => images::run(&ctx, c, &mut out),
        Command::Build(b) => build::run::run(&ctx, b, &env, &mut out, &mut std::io::stderr()),
        Command::Logs(a) => logs::run(&ctx, a, &mut out),
        Command::Exec(a) => exec::run(&ctx, a, &mut out),
        Command::Top {
            what,
            all_namespaces,
        } => top::run(&ctx, what, *all_namespaces, &mut out),
        Command::Create(c) => create::run(&ctx, c, &mut out),
        Command::Scale(a) => scale::run(&ctx, a, &mut out),
        Command::Rollout(c) => rollout::run(&ctx, c, &mut out),
        Command::Token(c) => trust::token(&ctx, c, &mut out),
        Command::Nodes(c) => trust::nodes(&ctx, c, &mut out),
        Command::Secrets(c) => secrets_key::run(&ctx, c, &mut out),
        Command::Run(a) => docker::run::run(&ctx, a, &mut out),
        Command::Ps(a) => docker::ps::run(&ctx, a, &mut out),
        Command::Rm(a) => docker::lifecycle::rm(&ctx, a, &mut out),
        Command::Stop(a) => docker::lifecycle::stop(&ctx, a, &mut out),
        Command::Start(a) => docker::lifecycle::start(&ctx, a, &mut out),
        Command::Compose(c) => compose::run(&ctx, c, &mut out),
    }
}

/// `Error from server (Reason): message` for the hub's errors, as kubectl
/// prints them; `error: what: why` for everything else.
pub fn render_error(e: &anyhow::Error) -> String {
    if e.chain().count() == 1
        && let Some(ce) = e.downcast_ref::<ClientError>()
        && ce.status().is_some()
    {
        return ce.to_string();
    }
    format!("error: {e:#}")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_server_errors_like_kubectl_and_others_with_context() {
        let status = bramble_api::Status::not_found("deployments.apps", "web");
        let e = anyhow::Error::new(ClientError::Api {
            status: Box::new(status),
            hint: None,
        });
        assert_eq!(
            render_error(&e),
            "Error from server (NotFound): deployments.apps \"web\" not found"
        );
        let e = anyhow::anyhow!("boom").context("reading x.yaml");
        assert_eq!(render_error(&e), "error: reading x.yaml: boom");
        let e = anyhow::Error::new(ClientError::Unreachable {
            hub: "http://127.0.0.1:7480".into(),
            reason: "connection refused".into(),
        });
        assert_eq!(
            render_error(&e),
            "error: cannot reach the hub at http://127.0.0.1:7480: connection refused — is bramble-hub running? (set --hub or BRAMBLE_HUB)"
        );
    }
}
