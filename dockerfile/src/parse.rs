//! Dockerfile text → [`Dockerfile`]: each logical line is split into the
//! instruction name (case-insensitive), its flags and its arguments the way
//! BuildKit's parser does, heredoc bodies are attached to RUN/COPY/ADD, and
//! every problem is reported with its line, column and a fix.

use crate::expand::{ExpandError, Lexer, no_vars};
use crate::flags::{FlagType, Flags};
use crate::instruction::*;
use crate::lines::LineReader;
use crate::words::{Json, extract_flags, json_array, quoted_words, whitespace_words};
use crate::{Error, ErrorKind};

use FlagType::{Bool, String as Str, Strings};

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, Error> {
    let mut reader = LineReader::new(text);
    let mut instructions = Vec::new();
    while let Some(logical) = reader.next_logical()? {
        let escape = reader.directives.escape.unwrap_or('\\');
        let first_end = reader.consumed();
        let original_head = reader.original(logical.start, first_end);
        let ctx = Ctx {
            line: logical.start,
            original: &original_head,
            escape,
        };
        let trimmed = logical.text.trim();
        let (name, args) = match trimmed.split_once(char::is_whitespace) {
            Some((n, a)) => (n, a.trim_start()),
            None => (trimmed, ""),
        };
        let (flag_words, rest) = extract_flags(args, escape);
        let rest = rest.trim().to_string();
        let upper = name.to_ascii_uppercase();
        let heredocs = if matches!(upper.as_str(), "RUN" | "COPY" | "ADD")
            && !matches!(json_array(&rest), Json::Array(_))
            && logical.text.contains("<<")
        {
            let markers = heredoc_markers(&logical.text).map_err(|e| ctx.err(e.0))?;
            let mut docs = Vec::new();
            for (name, expand, chomp) in markers {
                let content = reader.heredoc_body(&name, chomp, logical.start)?;
                docs.push(Heredoc {
                    name,
                    content,
                    expand,
                    chomp,
                });
            }
            docs
        } else {
            Vec::new()
        };
        let end = reader.consumed();
        let kind = parse_instruction(&ctx, &upper, name, &flag_words, &rest, heredocs)?;
        instructions.push(Instruction {
            line: logical.start,
            end_line: end,
            original: reader.original(logical.start, end),
            flags: flag_words,
            kind,
        });
    }
    if instructions.is_empty() {
        return Err(Error::syntax(0, "the Dockerfile has no instructions")
            .hint("start it with `FROM IMAGE`"));
    }
    let mut warnings = reader.warnings;
    if let Some(syntax) = &reader.directives.syntax {
        let name = syntax.split([':', '@']).next().unwrap_or_default();
        let name = name.strip_prefix("docker.io/").unwrap_or(name);
        if name != "docker/dockerfile" {
            warnings.push(crate::Warning {
                line: 1,
                message: format!(
                    "`# syntax={syntax}` names another front end; bramble build always uses its own (Dockerfile 1.x syntax)"
                ),
            });
        }
    }
    Ok(Dockerfile {
        escape: reader.directives.escape.unwrap_or('\\'),
        syntax: reader.directives.syntax.take(),
        check: reader.directives.check.take(),
        instructions,
        warnings,
    })
}

struct Ctx<'a> {
    line: usize,
    original: &'a str,
    escape: char,
}

impl Ctx<'_> {
    fn err(&self, message: impl Into<String>) -> Error {
        Error::syntax(self.line, message)
    }

    /// An error pointing at `token`'s column in the instruction's first line.
    fn err_at(&self, token: &str, message: impl Into<String>) -> Error {
        let column = self.original.find(token).map_or(1, |c| c + 1);
        self.err(message).at_column(column)
    }
}

/// Finds `<<[-]NAME` markers in a RUN/COPY/ADD line: (name, expand, chomp).
fn heredoc_markers(line: &str) -> Result<Vec<(String, bool, bool)>, ExpandError> {
    let words = Lexer::for_heredoc_markers()
        .words(line, &no_vars)
        .unwrap_or_default();
    let mut out = Vec::new();
    for word in words {
        if let Some(marker) = heredoc_marker(&word)? {
            out.push(marker);
        }
    }
    Ok(out)
}

/// Parses one word as `[fd]<<[-][ ]NAME` (NAME possibly quoted).
pub(crate) fn heredoc_marker(word: &str) -> Result<Option<(String, bool, bool)>, ExpandError> {
    let digits = word.chars().take_while(char::is_ascii_digit).count();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let words = Lexer::for_heredoc_name(false).words(rest, &no_vars)?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = Lexer::for_heredoc_name(true).words(rest, &no_vars)?;
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    let expand = raw.len() == 1 && quotes(&words[0]) == quotes(&raw[0]);
    Ok(Some((words[0].clone(), expand, chomp)))
}

fn no_flags(ctx: &Ctx, upper: &str, flags: &[String]) -> Result<(), Error> {
    Flags::parse(upper, flags, &[], ctx.line, ctx.original).map(|_| ())
}

fn required<'a>(ctx: &Ctx, upper: &str, rest: &'a str, what: &str) -> Result<&'a str, Error> {
    if rest.is_empty() {
        return Err(ctx
            .err(format!("{upper} requires {what}"))
            .hint(format!("write `{upper} {}`", what.to_ascii_uppercase())));
    }
    Ok(rest)
}

fn command_form(ctx: &Ctx, upper: &str, rest: &str) -> Result<CommandForm, Error> {
    match json_array(rest) {
        Json::Array(v) => Ok(CommandForm::Exec(v)),
        Json::NotStrings => Err(ctx
            .err(format!(
                "{upper}: when using JSON array syntax, arrays must be comprised of strings only"
            ))
            .hint("quote every element, e.g. [\"sleep\", \"10\"]")),
        Json::Other => Ok(CommandForm::Shell(rest.to_string())),
    }
}

fn list_form(rest: &str) -> Result<(Vec<String>, bool), ()> {
    match json_array(rest) {
        Json::Array(v) => Ok((v, true)),
        Json::NotStrings => Err(()),
        Json::Other => Ok((whitespace_words(rest), false)),
    }
}

fn key_values(ctx: &Ctx, upper: &str, rest: &str) -> Result<Vec<KeyValue>, Error> {
    let words = quoted_words(rest, ctx.escape);
    if words.is_empty() {
        return Err(ctx
            .err(format!("{upper} requires at least one argument"))
            .hint(format!("write `{upper} KEY=value`")));
    }
    if !words[0].contains('=') {
        // Legacy `KEY value` form: the rest of the line is the value.
        let Some((key, value)) = rest.split_once(char::is_whitespace) else {
            return Err(ctx
                .err(format!("{upper} must have two arguments"))
                .hint(format!("write `{upper} {rest}=VALUE`")));
        };
        return Ok(vec![KeyValue {
            key: key.to_string(),
            value: value.trim_start().to_string(),
            legacy: true,
        }]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
                legacy: false,
            }),
            None => Err(ctx
                .err_at(w, format!("syntax error - can't find = in {w:?}"))
                .hint("every word must be NAME=value; quote values with spaces")),
        })
        .collect()
}

fn parse_instruction(
    ctx: &Ctx,
    upper: &str,
    written: &str,
    flags: &[String],
    rest: &str,
    heredocs: Vec<Heredoc>,
) -> Result<Kind, Error> {
    let kind = match upper {
        "FROM" => {
            let f = Flags::parse(upper, flags, &[("platform", Str)], ctx.line, ctx.original)?;
            let args = whitespace_words(rest);
            let name = match args.len() {
                1 => None,
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let name = args[2].to_ascii_lowercase();
                    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                    if !valid {
                        return Err(ctx
                            .err_at(&args[2], format!("invalid stage name {:?}", args[2]))
                            .hint("a stage name starts with a letter and has only letters, digits, `-`, `_` and `.`"));
                    }
                    Some(name)
                }
                _ => {
                    return Err(ctx
                        .err("FROM requires either one or three arguments")
                        .hint("write `FROM IMAGE` or `FROM IMAGE AS NAME`"));
                }
            };
            Kind::From(From {
                image: args[0].clone(),
                name,
                platform: f.string("platform"),
            })
        }
        "RUN" => {
            let f = Flags::parse(
                upper,
                flags,
                &[
                    ("mount", Strings),
                    ("network", Str),
                    ("security", Str),
                    ("device", Strings),
                ],
                ctx.line,
                ctx.original,
            )?;
            if !f.strings("device").is_empty() {
                return Err(
                    Error::unsupported(ctx.line, "RUN --device is not supported")
                        .at_column(ctx.original.find("--device").map_or(1, |c| c + 1))
                        .hint("remove --device: builds get no host devices"),
                );
            }
            let rest = required(ctx, upper, rest, "a command")?;
            Kind::Run(Run {
                command: command_form(ctx, upper, rest)?,
                heredocs,
                mounts: f.strings("mount"),
                network: f.string("network"),
                security: f.string("security"),
            })
        }
        "COPY" | "ADD" => {
            let add = upper == "ADD";
            let mut allowed = vec![
                ("from", Str),
                ("chown", Str),
                ("chmod", Str),
                ("link", Bool),
                ("parents", Bool),
                ("exclude", Strings),
            ];
            if add {
                allowed = vec![
                    ("chown", Str),
                    ("chmod", Str),
                    ("link", Bool),
                    ("checksum", Str),
                    ("keep-git-dir", Bool),
                    ("unpack", Bool),
                    ("exclude", Strings),
                ];
            }
            let f = Flags::parse(upper, flags, &allowed, ctx.line, ctx.original)?;
            for refused in ["parents", "exclude", "checksum", "keep-git-dir", "unpack"] {
                if f.string(refused).is_some() {
                    return Err(Error::unsupported(
                        ctx.line,
                        format!("{upper} --{refused} is not supported by bramble build"),
                    )
                    .at_column(
                        ctx.original
                            .find(&format!("--{refused}"))
                            .map_or(1, |c| c + 1),
                    )
                    .hint(match refused {
                        "parents" | "exclude" => {
                            "these are Dockerfile labs features; copy the paths explicitly"
                        }
                        _ => "these only apply to remote sources, which builds cannot fetch",
                    }));
                }
            }
            let (args, _json) = list_form(rest).map_err(|_| {
                ctx.err(format!(
                    "{upper}: when using JSON array syntax, arrays must be comprised of strings only"
                ))
            })?;
            if args.len() < 2 {
                return Err(ctx
                    .err(format!(
                        "{upper} requires at least two arguments, but only {} provided",
                        args.len()
                    ))
                    .hint(format!("write `{upper} SOURCE… DESTINATION`")));
            }
            let dest = args[args.len() - 1].clone();
            if heredoc_marker(&dest).ok().flatten().is_some() {
                return Err(ctx
                    .err_at(
                        &dest,
                        format!("{upper}: a heredoc cannot be the destination"),
                    )
                    .hint(format!("write `{upper} <<EOF /path/to/file`")));
            }
            let mut sources = Vec::new();
            let mut inline = Vec::new();
            for src in &args[..args.len() - 1] {
                match heredoc_marker(src).ok().flatten() {
                    Some((name, _, _)) => {
                        if let Some(doc) = heredocs.iter().find(|d| d.name == name) {
                            inline.push(doc.clone());
                        }
                    }
                    None => sources.push(src.clone()),
                }
            }
            Kind::Copy(Copy {
                add,
                sources,
                heredocs: inline,
                dest,
                from: f.string("from"),
                chown: f.string("chown"),
                chmod: f.string("chmod"),
                link: f.bool("link"),
            })
        }
        "WORKDIR" => {
            no_flags(ctx, upper, flags)?;
            Kind::Workdir(required(ctx, upper, rest, "a path")?.to_string())
        }
        "ENV" | "LABEL" => {
            no_flags(ctx, upper, flags)?;
            let kvs = key_values(ctx, upper, rest)?;
            if upper == "ENV" {
                Kind::Env(kvs)
            } else {
                Kind::Label(kvs)
            }
        }
        "ARG" => {
            no_flags(ctx, upper, flags)?;
            let words = quoted_words(rest, ctx.escape);
            if words.is_empty() {
                return Err(ctx
                    .err("ARG requires at least one argument")
                    .hint("write `ARG NAME` or `ARG NAME=default`"));
            }
            Kind::Arg(
                words
                    .into_iter()
                    .map(|w| match w.split_once('=') {
                        Some((n, d)) => ArgDecl {
                            name: n.to_string(),
                            default: Some(d.to_string()),
                        },
                        None => ArgDecl {
                            name: w,
                            default: None,
                        },
                    })
                    .collect(),
            )
        }
        "EXPOSE" => {
            no_flags(ctx, upper, flags)?;
            let ports = whitespace_words(required(ctx, upper, rest, "a port")?);
            Kind::Expose(ports)
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags(ctx, upper, flags)?;
            let form = command_form(ctx, upper, rest)?;
            if upper == "CMD" {
                Kind::Cmd(form)
            } else {
                Kind::Entrypoint(form)
            }
        }
        "USER" => {
            no_flags(ctx, upper, flags)?;
            Kind::User(required(ctx, upper, rest, "a user")?.to_string())
        }
        "VOLUME" => {
            no_flags(ctx, upper, flags)?;
            let (v, _) = list_form(required(ctx, upper, rest, "a path")?)
                .map_err(|_| ctx.err("VOLUME: JSON arrays must contain strings only"))?;
            Kind::Volume(v)
        }
        "STOPSIGNAL" => {
            no_flags(ctx, upper, flags)?;
            Kind::StopSignal(required(ctx, upper, rest, "a signal")?.to_string())
        }
        "SHELL" => {
            no_flags(ctx, upper, flags)?;
            match json_array(rest) {
                Json::Array(v) if !v.is_empty() => Kind::Shell(v),
                _ => {
                    return Err(ctx
                        .err("SHELL requires the arguments to be in JSON form")
                        .hint("write e.g. SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]"));
                }
            }
        }
        "MAINTAINER" => {
            no_flags(ctx, upper, flags)?;
            Kind::Maintainer(required(ctx, upper, rest, "a name")?.to_string())
        }
        "HEALTHCHECK" => parse_healthcheck(ctx, flags, rest)?,
        "ONBUILD" => {
            return Err(Error::unsupported(ctx.line, "ONBUILD is not supported by bramble build")
                .hint("run the instruction directly in the Dockerfile that uses this image instead of deferring it with ONBUILD"));
        }
        _ => {
            return Err(Error::syntax(ctx.line, format!("unknown instruction: {written}"))
                .hint("instructions are FROM, RUN, COPY, ADD, WORKDIR, ENV, ARG, EXPOSE, CMD, ENTRYPOINT, USER, LABEL, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL, MAINTAINER; check the spelling or a missing `\\` at the end of the previous line"));
        }
    };
    Ok(kind)
}

fn parse_healthcheck(ctx: &Ctx, flags: &[String], rest: &str) -> Result<Kind, Error> {
    let f = Flags::parse(
        "HEALTHCHECK",
        flags,
        &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
        ctx.line,
        ctx.original,
    )?;
    if rest.is_empty() {
        return Err(ctx
            .err("HEALTHCHECK requires an argument")
            .hint("write `HEALTHCHECK CMD …` or `HEALTHCHECK NONE`"));
    }
    let (typ, args) = match rest.split_once(char::is_whitespace) {
        Some((t, a)) => (t, a.trim_start()),
        None => (rest, ""),
    };
    match typ.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !args.is_empty() || !flags.is_empty() {
                return Err(ctx
                    .err("HEALTHCHECK NONE takes no arguments")
                    .hint("write just `HEALTHCHECK NONE`"));
            }
            Ok(Kind::Healthcheck(Healthcheck::None))
        }
        "CMD" => {
            if args.is_empty() {
                return Err(ctx
                    .err("HEALTHCHECK CMD requires a command")
                    .hint("write `HEALTHCHECK CMD curl -f http://localhost/`"));
            }
            Ok(Kind::Healthcheck(Healthcheck::Cmd {
                command: command_form(ctx, "HEALTHCHECK", args)?,
                interval: f.string("interval"),
                timeout: f.string("timeout"),
                start_period: f.string("start-period"),
                start_interval: f.string("start-interval"),
                retries: f.string("retries"),
            }))
        }
        _ => Err(Error::new(
            ErrorKind::Syntax,
            ctx.line,
            format!("unknown type {typ:?} in HEALTHCHECK"),
        )
        .hint("write `HEALTHCHECK CMD …` or `HEALTHCHECK NONE`")),
    }
}
