//! Parser rules: directives, continuations, comments, case, every
//! instruction's forms, heredocs, flags, and errors with line/column/hint.

use bramble_dockerfile::instruction::{CommandForm, Copy, From, Healthcheck, Kind, Run};
use bramble_dockerfile::{ErrorKind, parse};

fn kinds(text: &str) -> Vec<Kind> {
    parse(text)
        .unwrap()
        .instructions
        .into_iter()
        .map(|i| i.kind)
        .collect()
}

fn one(text: &str) -> Kind {
    let mut k = kinds(text);
    assert_eq!(k.len(), 1, "{k:?}");
    k.remove(0)
}

fn run(k: Kind) -> Run {
    match k {
        Kind::Run(r) => r,
        other => panic!("not RUN: {other:?}"),
    }
}

fn copy(k: Kind) -> Copy {
    match k {
        Kind::Copy(c) => c,
        other => panic!("not COPY: {other:?}"),
    }
}

#[test]
fn instruction_names_are_case_insensitive_and_lines_are_tracked() {
    let df = parse("from alpine\n\n# comment\nRun echo hi\n").unwrap();
    assert_eq!(df.instructions.len(), 2);
    assert_eq!(df.instructions[0].line, 1);
    assert_eq!(df.instructions[1].line, 4);
    assert_eq!(df.instructions[1].original, "Run echo hi\n");
    assert!(matches!(df.instructions[1].kind, Kind::Run(_)));
}

#[test]
fn continuations_skip_comments_and_warn_on_empty_lines() {
    let df = parse("FROM a\nRUN echo a \\\n  # a comment\n  b \\\n\n  c\nRUN x\n").unwrap();
    let r = run(df.instructions[1].kind.clone());
    assert_eq!(r.command, CommandForm::Shell("echo a   b   c".into()));
    assert_eq!(df.instructions[1].line, 2);
    assert_eq!(df.instructions[1].end_line, 6);
    assert_eq!(df.instructions[2].line, 7);
    assert_eq!(df.warnings.len(), 1);
    // An escaped escape at the end does not continue the line.
    let k = kinds("FROM a\nRUN echo \\\\\nRUN b\n");
    assert_eq!(k.len(), 3);
}

#[test]
fn escape_directive_changes_the_continuation_character() {
    let df = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  /s\n").unwrap();
    assert_eq!(df.escape, '`');
    assert_eq!(
        run(df.instructions[1].kind.clone()).command,
        CommandForm::Shell("dir c:\\   /s".into())
    );
}

#[test]
fn directives_only_count_at_the_top() {
    let df = parse("# syntax=docker/dockerfile:1\n# check=skip=all\nFROM a\n").unwrap();
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.check.as_deref(), Some("skip=all"));
    assert!(df.warnings.is_empty());
    let df = parse("# syntax=docker/dockerfile:1-labs\nFROM a\n").unwrap();
    assert!(df.warnings.is_empty());
    let df = parse("# syntax=example.com/other-frontend:2\nFROM a\n").unwrap();
    assert_eq!(df.warnings.len(), 1);
    assert!(df.warnings[0].message.contains("another front end"));
    // After a comment that is not a directive, `# escape=` is a comment.
    let df = parse("# hello\n# escape=`\nFROM a\n").unwrap();
    assert_eq!(df.escape, '\\');
    // After an empty line too.
    let df = parse("\n# escape=`\nFROM a\n").unwrap();
    assert_eq!(df.escape, '\\');
    // After an instruction too.
    let df = parse("FROM a\n# escape=`\nRUN x `\n").unwrap();
    assert_eq!(df.escape, '\\');
    let e = parse("# escape=`\n# escape=\\\nFROM a\n").unwrap_err();
    assert_eq!((e.kind, e.line), (ErrorKind::Syntax, 2));
    let e = parse("# escape=x\nFROM a\n").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.message.contains("invalid escape token"));
}

#[test]
fn from_with_platform_and_stage_name() {
    assert_eq!(
        one("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\n"),
        Kind::From(From {
            image: "golang:1.22".into(),
            name: Some("build".into()),
            platform: Some("$BUILDPLATFORM".into()),
        })
    );
    let e = parse("FROM a AS\n").unwrap_err();
    assert!(e.message.contains("one or three arguments"));
    let e = parse("FROM a AS 1abc\n").unwrap_err();
    assert_eq!(e.column, 11);
    let e = parse("FROM --plat=x a\n").unwrap_err();
    assert_eq!((e.line, e.column), (1, 6));
    assert!(e.hint.contains("--platform"));
}

#[test]
fn run_shell_and_exec_forms_and_flags() {
    let r = run(one("RUN [\"echo\", \"a b\"]\n"));
    assert_eq!(
        r.command,
        CommandForm::Exec(vec!["echo".into(), "a b".into()])
    );
    let r = run(one("RUN [not json\n"));
    assert_eq!(r.command, CommandForm::Shell("[not json".into()));
    let r = run(one(
        "RUN --mount=type=cache,target=/root/.cache --network=none --mount=type=bind,source=a,target=/a make\n",
    ));
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(r.network.as_deref(), Some("none"));
    assert_eq!(r.command, CommandForm::Shell("make".into()));
    let e = parse("RUN [1, 2]\n").unwrap_err();
    assert!(e.message.contains("strings only"));
    let e = parse("RUN --device=/dev/x ls\n").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    let e = parse("RUN --network ls\n").unwrap_err();
    assert!(e.message.contains("missing a value"));
    let e = parse("RUN\n").unwrap_err();
    assert!(e.message.contains("RUN requires"));
}

#[test]
fn run_heredocs_simple_quoted_chomped_and_several() {
    let df = parse("FROM a\nRUN <<EOF\necho $HOME\nEOF\nRUN x\n").unwrap();
    let r = run(df.instructions[1].kind.clone());
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.heredocs[0].name, "EOF");
    assert_eq!(r.heredocs[0].content, "echo $HOME\n");
    assert!(r.heredocs[0].expand);
    assert_eq!(df.instructions[1].end_line, 4);
    assert_eq!(df.instructions[1].original, "RUN <<EOF\necho $HOME\nEOF\n");
    assert!(matches!(df.instructions[2].kind, Kind::Run(_)));

    let r = run(one("RUN <<-'END'\n\t\techo hi\n\tEND\n"));
    assert!(!r.heredocs[0].expand);
    assert!(r.heredocs[0].chomp);
    assert_eq!(r.heredocs[0].content, "\t\techo hi\n");
    assert_eq!(r.heredocs[0].text(), "echo hi\n");

    let r = run(one("RUN cat <<A > /a && cat <<\"B\" > /b\na1\nA\nb1\nB\n"));
    let names: Vec<_> = r
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.expand))
        .collect();
    assert_eq!(names, [("A", true), ("B", false)]);
    assert_eq!(r.heredocs[1].content, "b1\n");

    let r = run(one("RUN python3 << EOF\nprint(1)\nEOF\n"));
    assert_eq!(r.heredocs[0].name, "EOF");

    // JSON form never has heredocs; `<<` inside quotes is not a marker.
    let k = kinds("RUN [\"sh\", \"-c\", \"cat <<EOF\"]\nFROM a\n");
    assert_eq!(k.len(), 2);
    let r = run(one("RUN echo '<<EOF'\n"));
    assert!(r.heredocs.is_empty());

    let e = parse("FROM a\nRUN <<EOF\necho\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("unterminated heredoc"));
}

#[test]
fn copy_and_add_forms_flags_and_heredocs() {
    let c = copy(one(
        "COPY --from=build --chown=1000:1000 --chmod=0755 --link a b /dst/\n",
    ));
    assert_eq!(c.sources, ["a", "b"]);
    assert_eq!(c.dest, "/dst/");
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1000:1000"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert!(c.link && !c.add);
    let c = copy(one("COPY [\"a b\", \"/d e/\"]\n"));
    assert_eq!(c.sources, ["a b"]);
    assert_eq!(c.dest, "/d e/");
    let c = copy(one("ADD <<one <<two /etc/\n1\none\n2\ntwo\n"));
    assert!(c.add);
    assert!(c.sources.is_empty());
    assert_eq!(c.heredocs.len(), 2);
    assert_eq!(c.heredocs[1].content, "2\n");
    let e = parse("COPY onlyone\n").unwrap_err();
    assert!(e.message.contains("at least two arguments"));
    let e = parse("COPY --parents a /b/\n").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.column, 6);
    let e = parse("ADD --from=x a /b\n").unwrap_err();
    assert!(e.message.contains("unknown flag: --from"));
    let e = parse("COPY a <<EOF\nx\nEOF\n").unwrap_err();
    assert!(e.message.contains("destination"));
}

#[test]
fn env_label_and_arg_forms() {
    let Kind::Env(kv) = one("ENV A=1 B=\"two words\" C=x\\ y\n") else {
        panic!()
    };
    let pairs: Vec<_> = kv
        .iter()
        .map(|k| (k.key.as_str(), k.value.as_str()))
        .collect();
    assert_eq!(pairs, [("A", "1"), ("B", "\"two words\""), ("C", "x\\ y")]);
    let Kind::Env(kv) = one("ENV PATH /usr/local/go/bin:$PATH  more\n") else {
        panic!()
    };
    assert_eq!(kv[0].key, "PATH");
    assert_eq!(kv[0].value, "/usr/local/go/bin:$PATH  more");
    let e = parse("ENV A=1 B\n").unwrap_err();
    assert!(e.message.contains("can't find ="));
    assert_eq!(e.column, 9);
    let e = parse("ENV ONLYKEY\n").unwrap_err();
    assert!(e.message.contains("two arguments"));
    let Kind::Arg(a) = one("ARG A B=2 C=\"x y\"\n") else {
        panic!()
    };
    assert_eq!(a[0].default, None);
    assert_eq!(a[1].default.as_deref(), Some("2"));
    assert_eq!(a[2].default.as_deref(), Some("\"x y\""));
    let Kind::Label(l) = one("LABEL org.opencontainers.image.title=\"x\" b=c\n") else {
        panic!()
    };
    assert_eq!(l.len(), 2);
}

#[test]
fn other_instructions() {
    assert_eq!(
        one("EXPOSE 80 443/tcp\n"),
        Kind::Expose(vec!["80".into(), "443/tcp".into()])
    );
    assert_eq!(
        one("CMD nginx -g 'daemon off;'\n"),
        Kind::Cmd(CommandForm::Shell("nginx -g 'daemon off;'".into()))
    );
    assert_eq!(
        one("ENTRYPOINT [\"/init\"]\n"),
        Kind::Entrypoint(CommandForm::Exec(vec!["/init".into()]))
    );
    assert_eq!(one("USER app:app\n"), Kind::User("app:app".into()));
    assert_eq!(
        one("VOLUME [\"/a\", \"/b\"]\n"),
        Kind::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        one("VOLUME /a /b\n"),
        Kind::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        one("STOPSIGNAL SIGQUIT\n"),
        Kind::StopSignal("SIGQUIT".into())
    );
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-c\"]\n"),
        Kind::Shell(vec!["/bin/bash".into(), "-c".into()])
    );
    assert_eq!(
        one("MAINTAINER Jane <j@x>\n"),
        Kind::Maintainer("Jane <j@x>".into())
    );
    assert_eq!(
        one("HEALTHCHECK NONE\n"),
        Kind::Healthcheck(Healthcheck::None)
    );
    let Kind::Healthcheck(Healthcheck::Cmd {
        command,
        interval,
        retries,
        ..
    }) = one("HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/\n")
    else {
        panic!()
    };
    assert_eq!(
        command,
        CommandForm::Shell("curl -f http://localhost/".into())
    );
    assert_eq!(interval.as_deref(), Some("5s"));
    assert_eq!(retries.as_deref(), Some("3"));
    assert!(
        parse("SHELL /bin/bash -c\n")
            .unwrap_err()
            .message
            .contains("JSON")
    );
    assert!(
        parse("HEALTHCHECK NONE x\n")
            .unwrap_err()
            .message
            .contains("no arguments")
    );
    assert!(
        parse("HEALTHCHECK PING x\n")
            .unwrap_err()
            .message
            .contains("unknown type")
    );
    assert!(
        parse("WORKDIR\n")
            .unwrap_err()
            .message
            .contains("WORKDIR requires")
    );
}

#[test]
fn onbuild_and_unknown_instructions_are_refused_clearly() {
    let e = parse("FROM a\nONBUILD RUN make\n").unwrap_err();
    assert_eq!((e.kind, e.line, e.column), (ErrorKind::Unsupported, 2, 1));
    assert!(e.hint.contains("instead of deferring"));
    let e = parse("FROM a\nRUNN make\n").unwrap_err();
    assert_eq!((e.kind, e.line), (ErrorKind::Syntax, 2));
    assert!(e.message.contains("unknown instruction: RUNN"));
    assert!(e.to_string().starts_with("Dockerfile:2:1: "));
    assert!(
        e.display_in("app/Dockerfile.dev")
            .starts_with("app/Dockerfile.dev:2:1: unknown instruction: RUNN (")
    );
    assert!(parse("# only a comment\n").is_err());
}

#[test]
fn bom_and_crlf_are_handled() {
    let df = parse("\u{feff}FROM a\r\nRUN echo \\\r\n  b\r\n").unwrap();
    assert_eq!(
        run(df.instructions[1].kind.clone()).command,
        CommandForm::Shell("echo   b".into())
    );
}
