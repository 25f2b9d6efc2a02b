//! Parity with BuildKit's own parser tests: every
//! `tests/corpus/buildkit/parser-testfiles/NAME.Dockerfile` that Bramble
//! parses is rendered in BuildKit's `Node.Dump` format and compared with
//! BuildKit's expected `NAME.result`, line by line.

use std::fs;
use std::path::Path;

use bramble_dockerfile::instruction::{CommandForm, Healthcheck, Kind};
use bramble_dockerfile::parse;

/// Files Bramble refuses as a whole (BuildKit's parser alone accepts them;
/// its instruction stage refuses them too, except ONBUILD).
const NOT_PARSED: &[&str] = &["flags", "health", "lk4d4-the-edge-case-generator"];

/// Go's `strconv.Quote` for the characters these files contain.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn form(f: &CommandForm) -> Vec<String> {
    match f {
        CommandForm::Exec(v) => v.clone(),
        CommandForm::Shell(s) => vec![s.clone()],
    }
}

fn dump(name: &str, flags: &[String], values: Vec<String>) -> String {
    let mut s = name.to_string();
    if !flags.is_empty() {
        let q: Vec<String> = flags.iter().map(|f| quote(f)).collect();
        s.push_str(&format!(" [{}]", q.join(" ")));
    }
    for v in values {
        s.push(' ');
        s.push_str(&quote(&v));
    }
    format!("({})", s.trim())
}

fn render(kind: &Kind) -> (String, Vec<String>) {
    let kv = |kvs: &[bramble_dockerfile::instruction::KeyValue]| {
        kvs.iter()
            .flat_map(|k| {
                [
                    k.key.clone(),
                    k.value.clone(),
                    if k.legacy { String::new() } else { "=".into() },
                ]
            })
            .collect::<Vec<_>>()
    };
    match kind {
        Kind::From(f) => {
            let mut v = vec![f.image.clone()];
            if let Some(n) = &f.name {
                v.extend(["AS".to_string(), n.clone()]);
            }
            ("from".into(), v)
        }
        Kind::Run(r) => ("run".into(), form(&r.command)),
        Kind::Copy(c) => {
            let mut v = c.sources.clone();
            v.push(c.dest.clone());
            ((if c.add { "add" } else { "copy" }).into(), v)
        }
        Kind::Workdir(w) => ("workdir".into(), vec![w.clone()]),
        Kind::Env(e) => ("env".into(), kv(e)),
        Kind::Label(e) => ("label".into(), kv(e)),
        Kind::Arg(a) => (
            "arg".into(),
            a.iter()
                .map(|d| match &d.default {
                    Some(def) => format!("{}={def}", d.name),
                    None => d.name.clone(),
                })
                .collect(),
        ),
        Kind::Expose(p) => ("expose".into(), p.clone()),
        Kind::Cmd(f) => ("cmd".into(), form(f)),
        Kind::Entrypoint(f) => ("entrypoint".into(), form(f)),
        Kind::User(u) => ("user".into(), vec![u.clone()]),
        Kind::Volume(v) => ("volume".into(), v.clone()),
        Kind::StopSignal(s) => ("stopsignal".into(), vec![s.clone()]),
        Kind::Shell(s) => ("shell".into(), s.clone()),
        Kind::Maintainer(m) => (
            "label".into(),
            vec!["maintainer".into(), m.clone(), String::new()],
        ),
        Kind::Healthcheck(Healthcheck::None) => ("healthcheck".into(), vec!["NONE".into()]),
        Kind::Healthcheck(Healthcheck::Cmd { command, .. }) => {
            let mut v = vec!["CMD".to_string()];
            v.extend(form(command));
            ("healthcheck".into(), v)
        }
    }
}

#[test]
fn parses_like_buildkit_parser_testfiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/buildkit/parser-testfiles");
    let mut compared = 0;
    let mut mismatches = Vec::new();
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "result"))
        .collect();
    names.sort();
    for result in names {
        let stem = result.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(result.with_extension("Dockerfile")).unwrap();
        let parsed = parse(&text);
        if NOT_PARSED.contains(&stem.as_str()) {
            assert!(parsed.is_err(), "{stem} parsed");
            continue;
        }
        let df = parsed.unwrap_or_else(|e| panic!("{stem}: {e}"));
        let expected = fs::read_to_string(&result).unwrap();
        let got: Vec<String> = df
            .instructions
            .iter()
            .map(|i| {
                let (name, values) = render(&i.kind);
                let flags = if matches!(i.kind, Kind::Maintainer(_)) {
                    &[][..]
                } else {
                    &i.flags[..]
                };
                dump(&name, flags, values)
            })
            .collect();
        let want: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
        if got.len() != want.len() {
            mismatches.push(format!(
                "{stem}: {} instructions, BuildKit has {}",
                got.len(),
                want.len()
            ));
            continue;
        }
        for (g, w) in got.iter().zip(&want) {
            if g != w {
                mismatches.push(format!("{stem}:\n  got  {g}\n  want {w}"));
            }
        }
        compared += 1;
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(compared >= 25, "compared {compared}");
}
