//! The Compose model Bramble reads: typed services, volumes, configs and
//! secrets deserialised from the merged, interpolated document, after
//! [`super::keys`] has refused what Bramble cannot honour. Short and long
//! syntaxes are both accepted where the specification has both.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Value;

/// The project file.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Project {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub volumes: BTreeMap<String, Option<TopVolume>>,
    #[serde(default)]
    pub configs: BTreeMap<String, TopFile>,
    #[serde(default)]
    pub secrets: BTreeMap<String, TopFile>,
}

/// One service.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Service {
    pub image: Option<String>,
    pub build: Option<Value>,
    /// The platform a build is for (read only with `build`).
    pub platform: Option<String>,
    pub command: Option<Command>,
    pub entrypoint: Option<Command>,
    pub environment: Option<Value>,
    pub env_file: Option<OneOrMany<EnvFile>>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub expose: Vec<Scalar>,
    #[serde(default)]
    pub volumes: Vec<VolumeMount>,
    pub tmpfs: Option<OneOrMany<String>>,
    #[serde(default)]
    pub configs: Vec<FileRef>,
    #[serde(default)]
    pub secrets: Vec<FileRef>,
    pub depends_on: Option<DependsOn>,
    pub healthcheck: Option<Healthcheck>,
    pub deploy: Option<Deploy>,
    pub scale: Option<i64>,
    pub restart: Option<String>,
    #[serde(default)]
    pub devices: Vec<Device>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    pub user: Option<Scalar>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub network_mode: Option<String>,
    pub labels: Option<Value>,
    #[serde(default)]
    pub profiles: Vec<String>,
    pub stop_grace_period: Option<String>,
    pub pull_policy: Option<String>,
    #[serde(default)]
    pub stdin_open: bool,
    #[serde(default)]
    pub tty: bool,
}

/// A number or a string (`3306`, `"3306/tcp"`, `1000:1000`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Str(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::Str(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `command`/`entrypoint`: a string (split as a shell would) or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Command {
    Shell(String),
    List(Vec<Scalar>),
}

impl Command {
    /// The argument vector; `None` when a string cannot be split (an
    /// unclosed quote).
    pub fn argv(&self) -> Option<Vec<String>> {
        match self {
            Command::Shell(s) => shlex::split(s),
            Command::List(l) => Some(l.iter().map(Scalar::to_string).collect()),
        }
    }
}

/// `env_file`: a path or `{path, required}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EnvFile {
    Path(String),
    Long {
        path: String,
        #[serde(default = "yes")]
        required: bool,
    },
}

fn yes() -> bool {
    true
}

/// `ports`: `"8080:80/udp"`, `80`, or the long syntax.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Port {
    Short(Scalar),
    Long {
        target: u16,
        published: Option<Scalar>,
        host_ip: Option<String>,
        protocol: Option<String>,
        mode: Option<String>,
        name: Option<String>,
        app_protocol: Option<String>,
    },
}

/// `volumes` of a service: `SOURCE:TARGET[:MODE]` or the long syntax.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum VolumeMount {
    Short(String),
    Long(Box<LongVolume>),
}

/// The long syntax of a service's volume.
#[derive(Debug, Clone, Deserialize)]
pub struct LongVolume {
    #[serde(rename = "type")]
    pub type_: String,
    pub source: Option<String>,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
    pub tmpfs: Option<TmpfsOptions>,
    pub bind: Option<Value>,
    pub volume: Option<Value>,
    pub consistency: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TmpfsOptions {
    pub size: Option<Scalar>,
    pub mode: Option<Scalar>,
}

/// `configs`/`secrets` of a service: a name or `{source, target, mode, uid, gid}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FileRef {
    Name(String),
    Long {
        source: String,
        target: Option<String>,
        mode: Option<Scalar>,
        uid: Option<String>,
        gid: Option<String>,
    },
}

impl FileRef {
    pub fn source(&self) -> &str {
        match self {
            FileRef::Name(n) => n,
            FileRef::Long { source, .. } => source,
        }
    }
    pub fn target(&self) -> Option<&str> {
        match self {
            FileRef::Name(_) => None,
            FileRef::Long { target, .. } => target.as_deref(),
        }
    }
}

/// `depends_on`: a list of names or a mapping with conditions.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DependsOn {
    List(Vec<String>),
    Map(BTreeMap<String, Dependency>),
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Dependency {
    #[serde(default = "started")]
    pub condition: String,
    #[serde(default)]
    pub restart: bool,
    #[serde(default = "yes")]
    pub required: bool,
}

fn started() -> String {
    "service_started".into()
}

impl DependsOn {
    /// `(service, condition, required)` in name order.
    pub fn entries(&self) -> Vec<(String, String, bool)> {
        match self {
            DependsOn::List(l) => l.iter().map(|s| (s.clone(), started(), true)).collect(),
            DependsOn::Map(m) => m
                .iter()
                .map(|(k, d)| (k.clone(), d.condition.clone(), d.required))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Healthcheck {
    pub test: Option<Command>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<i64>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    #[serde(default)]
    pub disable: bool,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Deploy {
    pub replicas: Option<i64>,
    pub resources: Option<Resources>,
    pub placement: Option<Placement>,
    pub restart_policy: Option<RestartPolicy>,
    pub mode: Option<String>,
    pub labels: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Resources {
    pub limits: Option<ResourceSet>,
    pub reservations: Option<ResourceSet>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct ResourceSet {
    pub cpus: Option<Scalar>,
    pub memory: Option<String>,
    pub pids: Option<i64>,
    pub devices: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Placement {
    #[serde(default)]
    pub constraints: Vec<String>,
    pub preferences: Option<Value>,
    pub max_replicas_per_node: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RestartPolicy {
    pub condition: Option<String>,
    pub max_attempts: Option<i64>,
    pub delay: Option<String>,
    pub window: Option<String>,
}

/// `devices`: `/dev/x`, `/dev/x:/dev/y[:rwm]` or `{source, target, permissions}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Device {
    Short(String),
    Long {
        source: String,
        target: Option<String>,
        permissions: Option<String>,
    },
}

/// A top-level named volume.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct TopVolume {
    pub driver: Option<String>,
    pub driver_opts: Option<Value>,
    #[serde(default)]
    pub external: bool,
    pub name: Option<String>,
    pub labels: Option<Value>,
}

/// A top-level config or secret.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct TopFile {
    pub file: Option<String>,
    pub content: Option<String>,
    pub environment: Option<String>,
    #[serde(default)]
    pub external: bool,
    pub name: Option<String>,
}
