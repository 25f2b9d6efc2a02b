//! The parsed form of a Dockerfile: instructions with their line numbers and
//! original text, arguments split but not yet expanded (expansion needs the
//! build arguments and stage environment: see `plan`).

use serde::Serialize;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// The escape character in force (`\` or `` ` ``).
    pub escape: char,
    /// `# syntax=` value, if any (informational: Bramble has one front end).
    pub syntax: Option<String>,
    /// `# check=` value, if any.
    pub check: Option<String>,
    /// Instructions in file order.
    pub instructions: Vec<Instruction>,
    /// Non-fatal findings of the parser.
    pub warnings: Vec<crate::Warning>,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// 1-based first line.
    pub line: usize,
    /// 1-based last line (heredoc bodies included).
    pub end_line: usize,
    /// The instruction's text as written (all its lines).
    pub original: String,
    /// Its `--flags` as written (quotes removed), in order.
    pub flags: Vec<String>,
    /// What it says.
    pub kind: Kind,
}

/// Exec (JSON array) or shell form of RUN/CMD/ENTRYPOINT/HEALTHCHECK CMD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CommandForm {
    /// `["prog", "arg"]`: run as is, never expanded.
    Exec(Vec<String>),
    /// `prog arg`: run through the stage's SHELL.
    Shell(String),
}

/// A here-document attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter (`EOF` in `<<EOF`), quotes removed.
    pub name: String,
    /// The body as written (each line with its newline); see [`Heredoc::text`].
    pub content: String,
    /// False when the delimiter was quoted (`<<'EOF'`): no expansion.
    pub expand: bool,
    /// `<<-`: leading tabs stripped.
    pub chomp: bool,
}

impl Heredoc {
    /// The body as the file or script gets it: leading tabs removed for `<<-`.
    pub fn text(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// `KEY=value` of ENV or LABEL (value unexpanded, quotes still in it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written in the legacy `KEY value` form (one pair, rest of the line).
    pub legacy: bool,
}

/// One name of an ARG line, with its unexpanded default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// `FROM [--platform=P] IMAGE [AS NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    pub image: String,
    /// Lower-cased stage name.
    pub name: Option<String>,
    pub platform: Option<String>,
}

/// `RUN [--mount=…] [--network=…] [--security=…] COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub command: CommandForm,
    pub heredocs: Vec<Heredoc>,
    /// `--mount` values, unexpanded (parsed after expansion by the planner).
    pub mounts: Vec<String>,
    pub network: Option<String>,
    pub security: Option<String>,
}

/// `COPY`/`ADD [flags] SRC… DEST` (sources may be heredocs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// ADD rather than COPY.
    pub add: bool,
    /// Context (or `--from`) paths, unexpanded.
    pub sources: Vec<String>,
    /// Inline files (`COPY <<EOF /dst`), named by their delimiter.
    pub heredocs: Vec<Heredoc>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK [OPTIONS] CMD …`; durations unparsed.
    Cmd {
        command: CommandForm,
        interval: Option<String>,
        timeout: Option<String>,
        start_period: Option<String>,
        start_interval: Option<String>,
        retries: Option<String>,
    },
}

/// What an instruction says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Kind {
    From(From),
    Run(Run),
    Copy(Copy),
    Workdir(String),
    Env(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Expose(Vec<String>),
    Cmd(CommandForm),
    Entrypoint(CommandForm),
    User(String),
    Label(Vec<KeyValue>),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
    /// Deprecated; the image's `author` (what Docker does).
    Maintainer(String),
}

impl Kind {
    /// The instruction's name in upper case.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::From(_) => "FROM",
            Kind::Run(_) => "RUN",
            Kind::Copy(c) if c.add => "ADD",
            Kind::Copy(_) => "COPY",
            Kind::Workdir(_) => "WORKDIR",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Expose(_) => "EXPOSE",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::User(_) => "USER",
            Kind::Label(_) => "LABEL",
            Kind::Volume(_) => "VOLUME",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Shell(_) => "SHELL",
            Kind::Maintainer(_) => "MAINTAINER",
        }
    }
}
