//! The kubectl acceptance transcript (`tests/acceptance/kubectl.md`): every
//! `$` command of its `console` blocks run in order with `sh -c` against a
//! real hub and agent, only `KUBECONFIG` set for kubectl, each output
//! compared with what kubectl prints against a real Kubernetes (snapbox
//! patterns: `[..]` within a line, `...` for lines). Every step runs even
//! after a failure, and all mismatches are reported together.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bramble_tests::cluster::{Broker, Cluster};
use bramble_tests::workspace_root;

/// One `$` command and what it must print.
#[derive(Debug)]
struct Step {
    /// Line of the command in the transcript.
    line: usize,
    command: String,
    expected: String,
}

/// The steps of the `console` blocks of `md`.
fn steps(md: &str) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut in_block = false;
    for (i, line) in md.lines().enumerate() {
        if line.starts_with("```") {
            in_block = !in_block && line.trim() == "```console";
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            out.push(Step {
                line: i + 1,
                command: cmd.to_string(),
                expected: String::new(),
            });
        } else if let Some(step) = out.last_mut() {
            step.expected.push_str(line);
            step.expected.push('\n');
        }
    }
    for s in &mut out {
        s.expected = trim_lines(&s.expected);
    }
    out
}

/// `text` without trailing spaces on its lines (kubectl pads a table's last
/// column too, and some headers end in a space) or trailing blank lines.
fn trim_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines.join("\n").trim_end().to_string()
}

/// A step that runs longer is stopped and fails (kubectl waiting forever
/// must not hang CI); no step comes near it on a working hub.
const HANG_GUARD: Duration = Duration::from_secs(600);

/// Runs `command` in `dir`: its combined output, or why it failed.
fn run(dir: &Path, kubeconfig: &Path, command: &str) -> Result<String, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec 2>&1\n{command}"))
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("sh: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if started.elapsed() > HANG_GUARD {
            // The whole group: kubectl and whatever the step started.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            return Err(format!("did not finish within {HANG_GUARD:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Background processes a step left (a watch it killed) are gone once
    // the pipe closes; one that is not would hold the reader: kill the group.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let out = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{status}\n{out}"))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn the_kubectl_transcript_prints_what_kubernetes_prints() {
    let md_path = workspace_root().join("tests/acceptance/kubectl.md");
    let md = std::fs::read_to_string(&md_path).unwrap();
    let steps = steps(&md);
    assert!(steps.len() > 50, "only {} steps parsed", steps.len());

    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("busybox", "1.36");
    c.push_busybox("busybox", "1.37");
    let scratch = tempfile::tempdir().unwrap();
    copy_dir(
        &workspace_root().join("examples"),
        &scratch.path().join("examples"),
    );
    let kubeconfig = c.hub.data_dir.join("kubeconfig.yaml");

    let assert = snapbox::Assert::new();
    let mut failures = Vec::new();
    for step in &steps {
        let t = Instant::now();
        let result = run(scratch.path(), &kubeconfig, &step.command);
        eprintln!(
            "{}:{} ({:.1?}) $ {}",
            md_path.display(),
            step.line,
            t.elapsed(),
            step.command
        );
        let out = match result {
            Ok(out) => out,
            Err(why) => {
                failures.push(format!(
                    "line {}: $ {}\nfailed: {why}",
                    step.line, step.command
                ));
                continue;
            }
        };
        let checked = assert.try_eq(
            Some(&format!("line {}", step.line)),
            snapbox::Data::text(trim_lines(&out)),
            snapbox::Data::text(step.expected.clone()),
        );
        if let Err(e) = checked {
            failures.push(format!("line {}: $ {}\n{e}", step.line, step.command));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} steps differ from what kubectl prints against Kubernetes:\n\n{}",
        failures.len(),
        steps.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_transcript_parses_commands_and_outputs() {
    let md = "text\n```console\n$ a\nout 1\nout 2\n\n$ b\n```\n```yaml\n$ not a step\n```\n";
    let s = steps(md);
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(
        (s[0].command.as_str(), s[0].expected.as_str()),
        ("a", "out 1\nout 2")
    );
    assert_eq!((s[1].command.as_str(), s[1].line), ("b", 7));
}
