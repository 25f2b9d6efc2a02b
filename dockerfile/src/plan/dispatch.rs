//! Runs one stage's instructions in order, as BuildKit's dispatcher does:
//! ARG scoping (build argument, else default, else global value), `$VAR`
//! expansion for the instructions that expand, the image config changes
//! (CMD/ENTRYPOINT/SHELL/WORKDIR/ENV/…) and the steps that change files.

use std::collections::BTreeMap;

use super::config::{HealthConfig, ImageConfig, parse_duration, parse_expose, set_env};
use super::resolve_path;
use super::stages::{GlobalArgs, RawStage, expansion_error, find_stage};
use super::step::{
    Action, CopyStep, InlineFile, Network, RunStep, Source, Step, parse_chmod, parse_mount,
};
use crate::expand::Lexer;
use crate::instruction::{CommandForm, Copy, Healthcheck, Instruction, Kind, Run};
use crate::{Error, Warning};

/// What a stage needs from the whole plan.
pub(crate) struct StageContext<'a> {
    pub lexer: &'a Lexer,
    pub globals: &'a GlobalArgs,
    pub build_args: &'a BTreeMap<String, String>,
    pub stages: &'a [RawStage<'a>],
    pub current: usize,
}

/// The result of one stage.
pub(crate) struct StageOutput {
    pub steps: Vec<Step>,
    pub config: ImageConfig,
    pub declared_args: Vec<String>,
    pub images: Vec<String>,
    pub warnings: Vec<Warning>,
}

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// `--from` values and mount `from=` of an instruction, expanded with the
/// global arguments (what decides stage dependencies).
pub(crate) fn from_references(
    ins: &Instruction,
    lexer: &Lexer,
    globals: &GlobalArgs,
) -> Vec<String> {
    let vars = |n: &str| globals.get(n);
    let mut out = Vec::new();
    match &ins.kind {
        // `--from` is never expanded (BuildKit refuses variables in it).
        Kind::Copy(c) => out.extend(c.from.iter().cloned()),
        Kind::Run(r) => {
            for m in &r.mounts {
                for field in m.split(',') {
                    if let Some(v) = field.trim().strip_prefix("from=") {
                        out.extend(lexer.expand(v, &vars).ok());
                    }
                }
            }
        }
        _ => {}
    }
    out
}

struct State {
    config: ImageConfig,
    /// The environment RUN sees and expansion uses: image env + ARGs.
    env: Vec<String>,
    /// ARGs in scope with a value.
    args: BTreeMap<String, String>,
    cmd_set: bool,
}

impl State {
    fn var(&self, name: &str) -> Option<String> {
        self.env.iter().find_map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (k == name).then(|| v.to_string())
        })
    }

    fn shell(&self) -> Vec<String> {
        self.config
            .shell
            .clone()
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
    }

    fn with_shell(&self, form: &CommandForm) -> Vec<String> {
        match form {
            CommandForm::Exec(v) => v.clone(),
            CommandForm::Shell(s) => {
                let mut argv = self.shell();
                argv.push(s.clone());
                argv
            }
        }
    }

    fn arg_list(&self) -> Vec<String> {
        self.args.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

pub(crate) fn run_stage(
    ctx: &StageContext,
    raw: &RawStage,
    mut base: ImageConfig,
) -> Result<StageOutput, Error> {
    // BuildKit makes sure every stage has a PATH (and the image keeps it).
    if base.env_value("PATH").is_none() {
        base.set_env("PATH", super::config::DEFAULT_PATH);
    }
    let mut st = State {
        env: base.env.clone(),
        config: base,
        args: BTreeMap::new(),
        cmd_set: false,
    };
    let mut out = StageOutput {
        steps: Vec::new(),
        config: ImageConfig::default(),
        declared_args: Vec::new(),
        images: Vec::new(),
        warnings: Vec::new(),
    };
    for ins in raw.body {
        dispatch(ctx, &mut st, &mut out, ins)?;
    }
    out.config = st.config;
    Ok(out)
}

fn expand(ctx: &StageContext, st: &State, ins: &Instruction, word: &str) -> Result<String, Error> {
    ctx.lexer
        .expand(word, &|n: &str| st.var(n))
        .map_err(|e| expansion_error(ins, e))
}

fn resolve_from(ctx: &StageContext, from: &str) -> Source {
    match find_stage(ctx.stages, from) {
        Some(i) => Source::Stage(i),
        None => Source::Image(from.to_string()),
    }
}

fn dispatch(
    ctx: &StageContext,
    st: &mut State,
    out: &mut StageOutput,
    ins: &Instruction,
) -> Result<(), Error> {
    let line = ins.line;
    match &ins.kind {
        Kind::From(_) => unreachable!("stages are split at FROM"),
        Kind::Arg(decls) => {
            for d in decls {
                let value = match (ctx.build_args.get(&d.name), &d.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(def)) => Some(expand(ctx, st, ins, def)?),
                    (None, None) => ctx.globals.get(&d.name),
                };
                if let Some(v) = value {
                    set_env(&mut st.env, &d.name, &v);
                    st.args.insert(d.name.clone(), v);
                }
                out.declared_args.push(d.name.clone());
            }
        }
        Kind::Env(kvs) => {
            // The whole line expands against the environment before it
            // (`ENV a=bye b=$a` gives b the old a), then applies.
            let mut pairs = Vec::with_capacity(kvs.len());
            for kv in kvs {
                let key = expand(ctx, st, ins, &kv.key)?;
                let value = expand(ctx, st, ins, &kv.value)?;
                if key.is_empty() {
                    return Err(Error::syntax(line, "ENV names can not be blank")
                        .hint("write ENV NAME=value"));
                }
                pairs.push((key, value));
            }
            for (key, value) in pairs {
                set_env(&mut st.env, &key, &value);
                st.config.set_env(&key, &value);
            }
        }
        Kind::Label(kvs) => {
            for kv in kvs {
                let key = expand(ctx, st, ins, &kv.key)?;
                let value = expand(ctx, st, ins, &kv.value)?;
                if key.is_empty() {
                    return Err(Error::syntax(line, "LABEL names can not be blank")
                        .hint("write LABEL name=value"));
                }
                st.config.labels.insert(key, value);
            }
        }
        Kind::Maintainer(m) => {
            st.config.author = m.clone();
            out.warnings.push(Warning {
                line,
                message: "MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors=…"
                    .into(),
            });
        }
        Kind::Workdir(p) => {
            let p = expand(ctx, st, ins, p)?;
            let wd = resolve_path(&st.config.working_dir, &p);
            st.config.working_dir = wd.clone();
            if wd != "/" {
                out.steps.push(Step {
                    line,
                    text: format!("WORKDIR {wd}"),
                    args: st.arg_list(),
                    action: Action::Mkdir {
                        path: wd,
                        user: st.config.user.clone(),
                    },
                });
            }
        }
        Kind::User(u) => st.config.user = expand(ctx, st, ins, u)?,
        Kind::Expose(ports) => {
            for p in ports {
                let words = ctx
                    .lexer
                    .words(p, &|n: &str| st.var(n))
                    .map_err(|e| expansion_error(ins, e))?;
                for word in words {
                    let (ports, host_part) = parse_expose(&word).map_err(|e| {
                        Error::syntax(line, e).hint("write EXPOSE PORT[-END][/tcp|udp|sctp]")
                    })?;
                    if host_part {
                        out.warnings.push(Warning {
                            line,
                            message: format!(
                                "EXPOSE {word}: the IP and host port are ignored; publish ports with a Service instead"
                            ),
                        });
                    }
                    st.config.exposed_ports.extend(ports);
                }
            }
        }
        Kind::Volume(vols) => {
            for v in vols {
                let v = expand(ctx, st, ins, v)?;
                if v.trim().is_empty() {
                    return Err(
                        Error::syntax(line, "VOLUME specified can not be an empty string")
                            .hint("name the mount point, e.g. VOLUME /data"),
                    );
                }
                st.config.volumes.insert(v);
            }
        }
        Kind::StopSignal(s) => {
            let s = expand(ctx, st, ins, s)?;
            if !valid_signal(&s) {
                return Err(Error::syntax(line, format!("invalid signal: {s}"))
                    .hint("write a signal name such as SIGTERM or SIGQUIT, or its number"));
            }
            st.config.stop_signal = s;
        }
        Kind::Shell(sh) => st.config.shell = Some(sh.clone()),
        Kind::Cmd(form) => {
            st.config.cmd = Some(st.with_shell(form));
            st.cmd_set = true;
        }
        Kind::Entrypoint(form) => {
            st.config.entrypoint = Some(st.with_shell(form));
            if !st.cmd_set {
                st.config.cmd = None;
            }
        }
        Kind::Healthcheck(h) => st.config.healthcheck = Some(healthcheck(line, h)?),
        Kind::Run(run) => {
            let step = run_step(ctx, st, out, ins, run)?;
            out.steps.push(step);
        }
        Kind::Copy(copy) => {
            let step = copy_step(ctx, st, out, ins, copy)?;
            out.steps.push(step);
        }
    }
    Ok(())
}

/// moby/sys/signal's `ParseSignal` on Linux: 1-255, or a signal name with
/// or without `SIG`, any case (`SIGRTMIN+3` too).
fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<u8>() {
        return n != 0;
    }
    const NAMES: [&str; 34] = [
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if NAMES.contains(&name) || name == "RTMIN" || name == "RTMAX" {
        return true;
    }
    let offset = |rest: &str, max: u8| rest.parse::<u8>().is_ok_and(|n| (1..=max).contains(&n));
    name.strip_prefix("RTMIN+").is_some_and(|r| offset(r, 15))
        || name.strip_prefix("RTMAX-").is_some_and(|r| offset(r, 14))
}

fn healthcheck(line: usize, h: &Healthcheck) -> Result<HealthConfig, Error> {
    let Healthcheck::Cmd {
        command,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    } = h
    else {
        return Ok(HealthConfig {
            test: vec!["NONE".into()],
            ..HealthConfig::default()
        });
    };
    let duration = |flag: &str, v: &Option<String>| -> Result<u64, Error> {
        let Some(v) = v else { return Ok(0) };
        let ns = parse_duration(v).map_err(|e| Error::syntax(line, format!("--{flag}: {e}")))?;
        if ns != 0 && ns < 1_000_000 {
            return Err(
                Error::syntax(line, format!("--{flag} {v:?} cannot be less than 1ms"))
                    .hint("use at least 1ms, or 0 for the default"),
            );
        }
        Ok(ns)
    };
    let retries = match retries {
        None => 0,
        Some(r) => r.parse::<u32>().map_err(|_| {
            Error::syntax(line, format!("--retries {r:?} is not a whole number"))
                .hint("write e.g. --retries=3")
        })?,
    };
    let test = match command {
        CommandForm::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
        CommandForm::Exec(v) => std::iter::once("CMD".to_string())
            .chain(v.iter().cloned())
            .collect(),
    };
    Ok(HealthConfig {
        test,
        interval: duration("interval", interval)?,
        timeout: duration("timeout", timeout)?,
        start_period: duration("start-period", start_period)?,
        start_interval: duration("start-interval", start_interval)?,
        retries,
    })
}

fn run_step(
    ctx: &StageContext,
    st: &State,
    out: &mut StageOutput,
    ins: &Instruction,
    run: &Run,
) -> Result<Step, Error> {
    let line = ins.line;
    let network = match run.network.as_deref() {
        None | Some("default") => Network::Default,
        Some("none") => Network::None,
        Some(other) => {
            return Err(Error::unsupported(
                line,
                format!("RUN --network={other} is not supported"),
            )
            .hint("builds run on cluster nodes: use --network=default or --network=none"));
        }
    };
    match run.security.as_deref() {
        None | Some("sandbox") => {}
        Some(other) => {
            return Err(Error::unsupported(
                line,
                format!("RUN --security={other} is not supported"),
            )
            .hint("build steps always run sandboxed; remove the flag"));
        }
    }
    let workdir = if st.config.working_dir.is_empty() {
        "/".to_string()
    } else {
        st.config.working_dir.clone()
    };
    let mut mounts = Vec::new();
    for m in &run.mounts {
        let m = expand(ctx, st, ins, m)?;
        let resolve = |f: &str| resolve_from(ctx, f);
        let mount = parse_mount(line, &m, &workdir, &resolve)?;
        if let Some(Source::Image(r)) = &mount.from {
            out.images.push(r.clone());
        }
        if let Some(Source::Stage(i)) = &mount.from
            && *i == ctx.current
        {
            return Err(
                Error::syntax(line, "a RUN --mount cannot use its own stage")
                    .hint("mount an earlier stage"),
            );
        }
        mounts.push(mount);
    }
    let mut inline_files = Vec::new();
    let argv = match (&run.command, run.heredocs.as_slice()) {
        (CommandForm::Shell(cmd), [first, ..]) => {
            let whole = crate::parse::heredoc_marker(cmd.trim()).ok().flatten();
            let mut script = if whole.is_some() {
                let data = first.text();
                if data.starts_with("#!") {
                    let path = format!("/dev/pipes/{}", first.name);
                    inline_files.push(InlineFile {
                        path: path.clone(),
                        content: data,
                        mode: 0o755,
                    });
                    path
                } else {
                    data
                }
            } else {
                // The shell handles the heredocs: give it the command line
                // followed by each body and its delimiter.
                let mut b = cmd.clone();
                for doc in &run.heredocs {
                    b.push('\n');
                    b.push_str(&doc.content);
                    b.push_str(&doc.name);
                }
                b
            };
            let mut argv = st.shell();
            argv.push(std::mem::take(&mut script));
            argv
        }
        (form, _) => st.with_shell(form),
    };
    let text = match &run.command {
        CommandForm::Exec(v) => format!("RUN {}", serde_json::to_string(v).unwrap_or_default()),
        CommandForm::Shell(s) => format!("RUN {s}"),
    };
    Ok(Step {
        line,
        text,
        args: st.arg_list(),
        action: Action::Run(RunStep {
            argv,
            env: st.env.clone(),
            workdir,
            user: st.config.user.clone(),
            mounts,
            network,
            inline_files,
        }),
    })
}

fn is_remote(src: &str) -> bool {
    let lower = src.to_ascii_lowercase();
    lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("git@")
        || lower.starts_with("git://")
        || lower.starts_with("ssh://")
}

fn copy_step(
    ctx: &StageContext,
    st: &State,
    out: &mut StageOutput,
    ins: &Instruction,
    copy: &Copy,
) -> Result<Step, Error> {
    let line = ins.line;
    let name = if copy.add { "ADD" } else { "COPY" };
    let mut sources = Vec::new();
    for s in &copy.sources {
        let s = expand(ctx, st, ins, s)?;
        if is_remote(&s) {
            return Err(Error::unsupported(
                line,
                format!(
                    "{name} {s}: builds have no network access to fetch URLs or Git repositories"
                ),
            )
            .at_column(ins.original.find(&s).map_or(1, |c| c + 1))
            .hint(
                "download the file into the build context and COPY it, or fetch it in a RUN step",
            ));
        }
        sources.push(s);
    }
    let dest_written = expand(ctx, st, ins, &copy.dest)?;
    let mut dest = resolve_path(&st.config.working_dir, &dest_written);
    let is_dir = dest_written == "." || dest_written.is_empty() || dest_written.ends_with('/');
    if is_dir && !dest.ends_with('/') {
        dest.push('/');
    }
    let total = sources.len() + copy.heredocs.len();
    if total > 1 && !dest.ends_with('/') {
        return Err(Error::syntax(
            line,
            format!("when using {name} with more than one source file, the destination must be a directory and end with a /"),
        )
        .hint(format!("write `{dest_written}/`")));
    }
    let from = match &copy.from {
        None => Source::Context,
        Some(f) => {
            let literal = Lexer::new('\\').expand(f, &crate::expand::no_vars);
            if literal.as_deref() != Ok(f.as_str()) {
                return Err(Error::syntax(
                    line,
                    format!("variable expansion is not supported for --from ({f})"),
                )
                .hint("define a stage with `ARG` before the first FROM and `FROM ${IMAGE} AS name`, then use --from=name"));
            }
            if f.chars().all(|c| c.is_ascii_digit()) && find_stage(ctx.stages, f).is_none() {
                return Err(Error::new(
                    crate::ErrorKind::Stage,
                    line,
                    format!("{name} --from={f}: there is no stage {f}"),
                )
                .hint(format!(
                    "stages are numbered from 0 to {}",
                    ctx.stages.len() - 1
                )));
            }
            match resolve_from(ctx, f) {
                Source::Stage(i) if i == ctx.current => {
                    return Err(Error::new(
                        crate::ErrorKind::Stage,
                        line,
                        format!("{name} --from={f} refers to the current stage"),
                    )
                    .hint("copy from an earlier stage"));
                }
                Source::Image(r) => {
                    out.images.push(r.clone());
                    Source::Image(r)
                }
                s => s,
            }
        }
    };
    let chmod = match &copy.chmod {
        Some(m) => Some(parse_chmod(line, &expand(ctx, st, ins, m)?)?),
        None => None,
    };
    let chown = match &copy.chown {
        Some(c) => Some(expand(ctx, st, ins, c)?),
        None => None,
    };
    let mut inline = Vec::new();
    for doc in &copy.heredocs {
        let mut content = doc.text();
        if doc.expand {
            content = Lexer::for_heredoc_body()
                .expand(&content, &|n: &str| st.var(n))
                .map_err(|e| expansion_error(ins, e))?;
        }
        let path = if dest.ends_with('/') {
            format!("{dest}{}", doc.name)
        } else {
            dest.clone()
        };
        inline.push(InlineFile {
            path,
            content,
            mode: chmod.unwrap_or(0o644),
        });
    }
    let mut text = name.to_string();
    if let Some(f) = &copy.from {
        text.push_str(&format!(" --from={f}"));
    }
    if let Some(c) = &chown {
        text.push_str(&format!(" --chown={c}"));
    }
    if let Some(m) = chmod {
        text.push_str(&format!(" --chmod={m:04o}"));
    }
    if copy.link {
        text.push_str(" --link");
    }
    for s in &sources {
        text.push(' ');
        text.push_str(s);
    }
    for d in &copy.heredocs {
        text.push_str(&format!(" <<{}", d.name));
    }
    text.push(' ');
    text.push_str(&dest_written);
    Ok(Step {
        line,
        text,
        args: st.arg_list(),
        action: Action::Copy(CopyStep {
            add: copy.add,
            unpack_archives: copy.add && from == Source::Context,
            from,
            sources,
            inline,
            dest,
            chown,
            chmod,
            link: copy.link,
        }),
    })
}
