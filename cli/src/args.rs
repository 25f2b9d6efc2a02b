//! Command-line syntax: global flags and subcommands (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Command line for Bramble, a small Kubernetes-like orchestrator for ARM boards.
#[derive(Debug, Parser)]
#[command(name = "bramble", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Hub API URL [default: `hub:` in the config file, else https://127.0.0.1:7480]
    #[arg(long, env = "BRAMBLE_HUB", global = true, value_name = "URL")]
    pub hub: Option<String>,

    /// Bearer token [env: BRAMBLE_TOKEN; else `token:` in ~/.config/bramble/config, else DATA_DIR/token]
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// The hub's CA certificate (PEM) [default: `ca:` in the config file, else DATA_DIR/ca.crt]
    #[arg(long, env = "BRAMBLE_CA_FILE", global = true, value_name = "FILE")]
    pub certificate_authority: Option<PathBuf>,

    /// Namespace [default: `namespace:` in the config file, else "default"]
    #[arg(short = 'n', long, global = true, value_name = "NS")]
    pub namespace: Option<String>,

    /// Hub data directory, where the hub writes its admin token
    #[arg(
        long,
        env = "BRAMBLE_DATA_DIR",
        global = true,
        value_name = "DIR",
        default_value = "/var/lib/bramble"
    )]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update objects from manifest files (YAML or JSON)
    Apply(ApplyArgs),
    /// List objects as a table, YAML, JSON or names
    Get(GetArgs),
    /// Show the details of objects
    Describe(DescribeArgs),
    /// Delete objects named in files, by name, or by label selector
    Delete(DeleteArgs),
    /// Print the client's and the hub's versions
    Version,
    /// Print a config for using this hub from another machine (hub URL,
    /// admin token, CA): save it as ~/.config/bramble/config there, or use
    /// --kubeconfig for kubectl
    Config(ConfigArgs),
    /// Images in the hub's registry
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Build an image on the boards: send the context to the hub's registry,
    /// create a Build and follow it (`--check`: only check and plan, locally)
    Build(BuildArgs),
    /// Print the logs of a container in a pod
    Logs(LogsArgs),
    /// Run a command in a container of a pod
    Exec(ExecArgs),
    /// Show CPU and memory use of nodes or pods
    Top {
        /// `nodes` (`node`, `no`) or `pods` (`pod`, `po`)
        #[arg(value_name = "RESOURCE")]
        what: String,
        /// Pods of every namespace
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
    /// Create an object from the command line: `job NAME --from=cronjob/CRON`
    #[command(subcommand)]
    Create(CreateCommand),
    /// Set the number of replicas of a Deployment
    Scale(ScaleArgs),
    /// Manage the rollout of a Deployment: status, history, undo
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Join tokens for new boards: create, ls, rm
    #[command(subcommand)]
    Token(TokenCommand),
    /// Node trust: the boards' keys, approvals, the cluster's join token
    #[command(subcommand)]
    Nodes(NodesCommand),
    /// Encryption of Secrets at rest on the hub: status, rotate-key
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Run an image as docker run does: a Deployment (or Job, or Pod), its
    /// published ports served on the hub's address
    Run(Box<RunArgs>),
    /// List what `bramble run` started, like docker ps
    Ps(PsArgs),
    /// Remove runs (their workload and Service; named volumes stay)
    Rm(RmArgs),
    /// Stop runs (scale to 0; `start` brings them back)
    Stop(StartStopArgs),
    /// Start stopped runs again
    Start(StartStopArgs),
    /// Run a Compose project (compose.yaml) on the fleet: up, down, ps,
    /// logs, build, config
    Compose(ComposeArgs),
}

/// `bramble run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The run's name (of its Deployment, Job or Pod, and its Service)
    pub name: String,
    /// The image (a reference in the hub's registry, e.g. busybox:1)
    #[arg(long)]
    pub image: String,
    /// Publish a port on the hub's address: [HOSTPORT:]PORT[/udp]
    #[arg(short = 'p', long = "publish", value_name = "[HOSTPORT:]PORT[/udp]")]
    pub publish: Vec<String>,
    /// Set an environment variable (NAME alone: this shell's value)
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file (docker's format)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Mount a volume: NAME:PATH (a claim, created if missing),
    /// /HOST/PATH:PATH (a path on the board) or PATH; :ro for read-only
    #[arg(short = 'v', long = "volume", value_name = "VOLUME:PATH[:ro]")]
    pub volume: Vec<String>,
    /// Number of pods (with --restart always)
    #[arg(long, default_value_t = 1)]
    pub replicas: i32,
    /// always: a Deployment; on-failure: a Job; no: a Pod that runs once
    #[arg(long, value_enum, default_value = "always")]
    pub restart: crate::docker::run_plan::Restart,
    /// Run on boards of this platform only: OS/ARCH[/VARIANT]
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Run on this node only
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
    /// Give the container a host device (allowed by the namespace's
    /// bramble.dev/allowed-devices)
    #[arg(long, value_name = "/dev/X")]
    pub device: Vec<String>,
    /// Run the container privileged (needs a privileged namespace)
    #[arg(long)]
    pub privileged: bool,
    /// Replace the image's entrypoint
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Working directory in the container
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Seconds a stopping container gets between SIGTERM and SIGKILL
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub stop_timeout: u32,
    /// Return once created, without waiting for the pods to run
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// How long to wait for the pods to run and the ports to be published
    #[arg(long, default_value = "2m")]
    pub timeout: humantime::Duration,
    /// The command: arguments to the image's entrypoint (after `--`)
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `bramble ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Also finished pods and stopped runs
    #[arg(short = 'a', long)]
    pub all: bool,
}

/// `bramble rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Runs to remove
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Remove runs that are still running
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `bramble stop` and `bramble start`.
#[derive(Debug, Args)]
pub struct StartStopArgs {
    /// Runs to stop or start
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `bramble build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Only check: parse the Dockerfile, scan the context and print the plan,
    /// locally (nothing is sent to the hub)
    #[arg(long)]
    pub check: bool,

    /// The build context directory
    #[arg(value_name = "CONTEXT")]
    pub context: PathBuf,

    /// The Dockerfile [default: CONTEXT/Dockerfile]
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Build argument `KEY=VALUE` (or `KEY`: its value from the environment); repeatable
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,

    /// The stage to build [default: the last]
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,

    /// Platforms to build for, comma-separated (e.g. linux/arm64,linux/arm/v7)
    /// [default: this machine's, e.g. linux/arm64]
    #[arg(long, value_name = "PLATFORMS")]
    pub platform: Option<String>,

    /// Name of the image in the hub's registry (required to build; checked by --check)
    #[arg(short = 't', long, value_name = "NAME:TAG")]
    pub tag: Option<String>,

    /// Run every step, reusing no cached layer
    #[arg(long)]
    pub no_cache: bool,

    /// Print only the image digest
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Print the plans as JSON (with --check)
    #[arg(short = 'o', long, value_name = "FORMAT", value_parser = ["json"])]
    pub output: Option<String>,
}

/// `bramble compose [-f FILE]... [-p NAME] [--profile P]... COMMAND`: the
/// project options come before the command, as with `docker compose`.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Compose file (repeatable; later files are merged over earlier ones)
    /// [default: compose.yaml, compose.yml, docker-compose.yaml or
    /// docker-compose.yml here or above]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name [default: COMPOSE_PROJECT_NAME, `name:`, else the directory's name]
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Enable a profile (repeatable) [default: COMPOSE_PROFILES]
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

/// The subcommands of `bramble compose`.
#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Create the project's objects in dependency order, waiting for each
    /// dependency's condition; then follow the logs (unless -d)
    Up {
        /// Return once everything is created and started
        #[arg(short = 'd', long)]
        detach: bool,
        /// Build the services' images first (without it, only those not yet
        /// in the hub's registry are built)
        #[arg(long)]
        build: bool,
        /// Return only once every service started is Ready (its pods Ready,
        /// a one-shot Job completed); implies -d
        #[arg(long)]
        wait: bool,
        /// How long to wait for a dependency's condition, and with --wait
        /// for the services to be Ready
        #[arg(long, default_value = "5m")]
        wait_timeout: humantime::Duration,
        /// Delete what was made for services no longer in the file
        /// (not the named volumes)
        #[arg(long)]
        remove_orphans: bool,
        /// Only these services (and what they depend on)
        services: Vec<String>,
    },
    /// Stop services (all without names): their pods go, their objects stay
    Stop {
        /// Only these services
        services: Vec<String>,
    },
    /// Start stopped services again and wait until they are Ready
    Start {
        /// How long to wait for the services to be Ready
        #[arg(long, default_value = "5m")]
        wait_timeout: humantime::Duration,
        /// Only these services
        services: Vec<String>,
    },
    /// Replace every pod of the services (a rollout restart) and wait
    /// until the new ones are Ready
    Restart {
        /// How long to wait for the services to be Ready
        #[arg(long, default_value = "5m")]
        wait_timeout: humantime::Duration,
        /// Only these services
        services: Vec<String>,
    },
    /// Run a one-off pod of a service (its dependencies up first), its
    /// command replaced by CMD if given; prints its output, exits with its code
    Run {
        /// Delete the pod when it has finished
        #[arg(long)]
        rm: bool,
        /// Start the pod and print its name, without following it
        #[arg(short = 'd', long)]
        detach: bool,
        /// Name the pod (default: SERVICE-run-XXXXXX)
        #[arg(long)]
        name: Option<String>,
        /// Set an environment variable (KEY=VAL, or KEY to pass this
        /// shell's value); repeatable
        #[arg(short = 'e', long = "env", value_name = "KEY[=VAL]")]
        env: Vec<String>,
        /// Replace the image's entrypoint (split as a shell splits words)
        #[arg(long)]
        entrypoint: Option<String>,
        /// The working directory inside the container
        #[arg(short = 'w', long)]
        workdir: Option<String>,
        /// Add a label to the pod (KEY=VAL); repeatable
        #[arg(short = 'l', long = "label", value_name = "KEY=VAL")]
        labels: Vec<String>,
        /// Accepted for docker's habits: there is no terminal anyway
        #[arg(short = 'T', long = "no-TTY")]
        no_tty: bool,
        /// Do not start the services it depends on
        #[arg(long)]
        no_deps: bool,
        /// How long to wait for a dependency's condition
        #[arg(long, default_value = "5m")]
        wait_timeout: humantime::Duration,
        /// The service
        service: String,
        /// The command and its arguments [default: the service's]
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Run a command in a running container of a service (`exec web sh -c
    /// 'ls /'`, or with `--` before the command); exits with its exit code
    Exec {
        /// Accepted for docker's habits: there is no terminal anyway
        #[arg(short = 'T', long = "no-TTY")]
        no_tty: bool,
        /// Which replica (from 1) [default: the first Ready one]
        #[arg(long, value_name = "N")]
        index: Option<usize>,
        /// The service
        service: String,
        /// The command and its arguments
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Delete what `up` made (the named volumes too with -v)
    Down {
        /// Also delete the named volumes' claims, their data, and the namespace
        #[arg(short = 'v', long)]
        volumes: bool,
    },
    /// List the project's containers as `docker compose ps` does
    Ps,
    /// Print the logs of the project's containers, each line prefixed
    Logs {
        /// Keep streaming new lines
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only these services
        services: Vec<String>,
    },
    /// Build the images of the services with `build:` (all, or these),
    /// one after another, on the boards as `bramble build` does
    Build { services: Vec<String> },
    /// Print the resolved, interpolated, merged file as YAML
    Config,
}

/// `bramble create ...`.
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Run a CronJob's Job now, by hand (as `kubectl create job --from`)
    Job {
        /// The new Job's name
        name: String,
        /// The CronJob whose jobTemplate it runs: `cronjob/NAME`
        #[arg(long, value_name = "cronjob/NAME")]
        from: String,
    },
}

/// `bramble secrets ...`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Show whether the hub seals Secrets in its store, and with which key
    Status,
    /// Seal every Secret and join token under a new key and drop the old one
    /// from the hub's DATA_DIR/secrets.key
    RotateKey,
}

/// `bramble config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The hub URL the other machine uses [default: this one, a loopback
    /// address replaced by this host's name]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Print a kubeconfig (for KUBECONFIG=FILE kubectl) instead
    #[arg(long)]
    pub kubeconfig: bool,
}

/// `bramble token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a join token; print it (it is shown only once)
    Create {
        /// Refuse it after this long (e.g. 1h, 7d) [default: never]
        #[arg(long)]
        ttl: Option<humantime::Duration>,
        /// Admit at most this many new boards [default: unlimited]
        #[arg(long)]
        uses: Option<u32>,
        /// What it is for
        #[arg(long)]
        description: Option<String>,
    },
    /// List join tokens (never their secrets)
    #[command(alias = "list")]
    Ls,
    /// Delete join tokens (boards that joined with them are unaffected)
    #[command(alias = "delete")]
    Rm {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
}

/// `bramble nodes ...`.
#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// Replace the cluster's join token (DATA_DIR/node-token); print the new one
    RotateToken,
    /// List the boards' keys: approved and pending
    Keys,
    /// Let boards waiting for approval (hub with --approve-nodes) join
    Approve {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
}

/// `bramble logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod (`web-x7k2p` or `pod/web-x7k2p`), or a build (`build/NAME`)
    pub pod: String,
    /// The container (required when the pod has several)
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Keep streaming new lines
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,
    /// Only lines newer than this (e.g. 5m, 1h)
    #[arg(long, value_name = "DURATION")]
    pub since: Option<humantime::Duration>,
    /// Of a build of several platforms: which one's log (e.g. linux/arm64)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
}

/// `bramble exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The pod (`web-x7k2p` or `pod/web-x7k2p`)
    pub pod: String,
    /// The container (default: the first one)
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// `bramble scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// `deployment web` or `deployment/web`
    #[arg(value_name = "RESOURCE", required = true, num_args = 1..=2)]
    pub target: Vec<String>,
    /// The new number of replicas
    #[arg(long)]
    pub replicas: i64,
}

/// `bramble rollout ...`.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Wait until the rollout of a Deployment or StatefulSet is complete
    Status {
        /// `deployment web`, `deployment/web` or `statefulset/db`
        #[arg(value_name = "RESOURCE", required = true, num_args = 1..=2)]
        target: Vec<String>,
        /// Give up after this long (e.g. 90s, 5m)
        #[arg(long, default_value = "5m")]
        timeout: humantime::Duration,
    },
    /// List a Deployment's revisions, or show one
    History {
        #[arg(value_name = "RESOURCE", required = true, num_args = 1..=2)]
        target: Vec<String>,
        /// Show this revision's pod template
        #[arg(long)]
        revision: Option<i64>,
    },
    /// Restart the pods of a Deployment or StatefulSet (stamps the template
    /// with `kubectl.kubernetes.io/restartedAt`, as kubectl does)
    Restart {
        #[arg(value_name = "RESOURCE", required = true, num_args = 1..=2)]
        target: Vec<String>,
    },
    /// Roll a Deployment back to the previous (or a given) revision
    Undo {
        #[arg(value_name = "RESOURCE", required = true, num_args = 1..=2)]
        target: Vec<String>,
        /// The revision to go back to [default: the previous one]
        #[arg(long, default_value_t = 0)]
        to_revision: i64,
    },
}

/// `bramble images ...`.
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// List repositories and tags with digests, platforms and sizes
    #[command(alias = "list")]
    Ls,
    /// Remove a tag; its manifest and unshared blobs go when nothing else refers to them
    #[command(alias = "rmi")]
    Rm {
        /// NAME:TAG (or HUB/NAME:TAG)
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Load images from an OCI archive or a `docker save` tar into the hub's registry
    #[command(alias = "load")]
    Import {
        /// OCI archive tar, docker-save tar, or OCI image layout directory
        file: std::path::PathBuf,
        /// Name to give the image (required when the archive names none)
        #[arg(long, value_name = "NAME:TAG")]
        name: Option<String>,
    },
    /// Push an OCI image layout directory or archive to the hub as NAME:TAG
    Push {
        /// OCI image layout directory, OCI archive or docker-save tar (one image)
        source: std::path::PathBuf,
        /// NAME:TAG in the hub's registry
        name: String,
    },
    /// Show an image's manifest (or index) and config as JSON
    Inspect {
        /// NAME:TAG or NAME@sha256:...
        image: String,
    },
}

/// `bramble apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Manifest file, directory of manifests, or - for standard input (repeatable)
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub filenames: Vec<String>,

    /// Also read manifests in subdirectories of directories given with -f
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The table with extra columns
    Wide,
    /// The objects as YAML
    Yaml,
    /// The objects as JSON
    Json,
    /// KIND/NAME, one per line
    Name,
}

/// `bramble get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// KIND[,KIND...] [NAME...] (e.g. `pods`, `deploy,svc web`, `all`), or KIND/NAME...
    #[arg(value_name = "RESOURCE", required = true)]
    pub resources: Vec<String>,

    /// Output format
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<OutputFormat>,

    /// Label selector, e.g. `app=web,tier!=db`
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// List objects in every namespace
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    /// After listing, keep printing changes as they happen
    #[arg(short = 'w', long)]
    pub watch: bool,

    /// With --watch, add a column with the event type (ADDED, MODIFIED, DELETED)
    #[arg(long, requires = "watch")]
    pub output_watch_events: bool,

    /// Print tables without the header line
    #[arg(long)]
    pub no_headers: bool,
}

/// `bramble describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// KIND [NAME...], or KIND/NAME...; without names every object of the kind
    #[arg(value_name = "RESOURCE", required = true)]
    pub resources: Vec<String>,

    /// Label selector, e.g. `app=web`
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Describe objects in every namespace
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// `bramble delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// KIND NAME..., KIND/NAME..., or KIND with -l or --all
    #[arg(value_name = "RESOURCE")]
    pub resources: Vec<String>,

    /// Delete the objects named in these manifests (file, directory, or -)
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        conflicts_with = "resources"
    )]
    pub filenames: Vec<String>,

    /// Also read manifests in subdirectories of directories given with -f
    #[arg(short = 'R', long)]
    pub recursive: bool,

    /// Delete the objects of KIND matching this label selector
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Delete every object of KIND in the namespace
    #[arg(long)]
    pub all: bool,

    /// Treat objects that do not exist as deleted
    #[arg(long)]
    pub ignore_not_found: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "bramble",
            "get",
            "pods",
            "-n",
            "kube",
            "-o",
            "wide",
            "--hub",
            "http://h:1",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("kube"));
        assert_eq!(cli.global.hub.as_deref(), Some("http://h:1"));
        match cli.command {
            Command::Get(g) => assert_eq!(g.output, Some(OutputFormat::Wide)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn compose_takes_project_options_before_its_command_as_docker_does() {
        let cli = Cli::try_parse_from([
            "bramble", "compose", "-f", "a.yaml", "-f", "b.yaml", "-p", "shop", "up", "-d", "web",
        ])
        .unwrap();
        let Command::Compose(c) = cli.command else {
            panic!("not compose")
        };
        assert_eq!(c.files, [PathBuf::from("a.yaml"), PathBuf::from("b.yaml")]);
        assert_eq!(c.project_name.as_deref(), Some("shop"));
        match c.command {
            ComposeCommand::Up {
                detach, services, ..
            } => {
                assert!(detach);
                assert_eq!(services, ["web"]);
            }
            other => panic!("{other:?}"),
        }
        // `logs -f` follows; it is not a file.
        let cli = Cli::try_parse_from(["bramble", "compose", "logs", "-f", "db"]).unwrap();
        let Command::Compose(c) = cli.command else {
            panic!("not compose")
        };
        assert!(matches!(
            c.command,
            ComposeCommand::Logs { follow: true, .. }
        ));
        assert!(Cli::try_parse_from(["bramble", "compose", "down", "-v"]).is_ok());
    }

    #[test]
    fn compose_exec_takes_the_command_with_or_without_a_double_dash() {
        let exec = |args: &[&str]| {
            let mut all = vec!["bramble", "compose", "exec"];
            all.extend_from_slice(args);
            let Command::Compose(c) = Cli::try_parse_from(all).unwrap().command else {
                panic!("not compose")
            };
            match c.command {
                ComposeCommand::Exec {
                    no_tty,
                    index,
                    service,
                    command,
                } => (no_tty, index, service, command),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            exec(&["web", "sh", "-c", "exit 3"]),
            (
                false,
                None,
                "web".into(),
                vec!["sh".into(), "-c".into(), "exit 3".into()]
            )
        );
        assert_eq!(
            exec(&["-T", "--index", "2", "web", "--", "ls", "-l"]),
            (true, Some(2), "web".into(), vec!["ls".into(), "-l".into()])
        );
        assert!(Cli::try_parse_from(["bramble", "compose", "exec", "web"]).is_err());
        let Command::Compose(c) = Cli::try_parse_from([
            "bramble", "compose", "run", "--rm", "web", "sh", "-c", "exit 2",
        ])
        .unwrap()
        .command
        else {
            panic!("not compose")
        };
        assert!(
            matches!(c.command, ComposeCommand::Run { rm: true, ref service, ref command, .. }
            if service == "web" && command == &["sh", "-c", "exit 2"])
        );
    }

    #[test]
    fn apply_needs_a_file_and_delete_takes_either_form() {
        assert!(Cli::try_parse_from(["bramble", "apply"]).is_err());
        let cli =
            Cli::try_parse_from(["bramble", "apply", "-f", "a.yaml", "-f", "dir/", "-R"]).unwrap();
        match cli.command {
            Command::Apply(a) => {
                assert_eq!(a.filenames, ["a.yaml", "dir/"]);
                assert!(a.recursive);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["bramble", "delete", "-f", "x", "pods"]).is_err());
        assert!(
            Cli::try_parse_from(["bramble", "delete", "deploy", "web", "--ignore-not-found"])
                .is_ok()
        );
    }
}
