//! How `bramble build` prints a Build's progress, as `docker build
//! --progress=plain` does: each step gets a number the first time it is
//! seen running (or done), `#3 [linux/arm64 2/4] RUN make`, and one line
//! when it ends: `#3 CACHED`, `#3 DONE 1.2s`, `#3 ERROR: exit code 2`.
//! Platforms print when they get a node and when they fail; what an
//! unfinished build waits for prints when it changes (`[pending] …`).
//!
//! Pure: [`render`] turns the previous and the new status into lines; the
//! step numbers live in [`Numbering`], which the caller keeps between calls.

use std::collections::HashMap;

use bramble_api::objects::build::{BuildStatus, BuildStepStatus, PlatformBuildStatus};

/// Step numbers handed out so far (`#1` is the context upload).
#[derive(Debug, Clone)]
pub struct Numbering {
    next: u32,
    steps: HashMap<(String, usize), u32>,
}

impl Numbering {
    /// Numbers start at `first`.
    pub fn starting_at(first: u32) -> Numbering {
        Numbering {
            next: first,
            steps: HashMap::new(),
        }
    }

    fn get(&mut self, platform: &str, index: usize) -> (u32, bool) {
        if let Some(n) = self.steps.get(&(platform.to_string(), index)) {
            return (*n, false);
        }
        let n = self.next;
        self.next += 1;
        self.steps.insert((platform.to_string(), index), n);
        (n, true)
    }

    /// The next number not handed out.
    pub fn take_next(&mut self) -> u32 {
        let n = self.next;
        self.next += 1;
        n
    }
}

/// The lines that tell what changed from `prev` to `new`.
pub fn render(
    prev: Option<&BuildStatus>,
    new: &BuildStatus,
    numbers: &mut Numbering,
) -> Vec<String> {
    let mut lines = Vec::new();
    // What a build waits for (a node of its platform, say), once per change.
    if let Some(m) = &new.message
        && !matches!(phase(&new.phase), "Succeeded" | "Failed")
        && prev.and_then(|s| s.message.as_ref()) != Some(m)
    {
        lines.push(format!("[{}] {m}", phase(&new.phase).to_lowercase()));
    }
    for p in &new.platforms {
        let before = prev.and_then(|s| s.platforms.iter().find(|o| o.platform == p.platform));
        platform_lines(before, p, numbers, &mut lines);
    }
    lines
}

fn platform_lines(
    before: Option<&PlatformBuildStatus>,
    p: &PlatformBuildStatus,
    numbers: &mut Numbering,
    lines: &mut Vec<String>,
) {
    let name = &p.platform;
    if let Some(node) = &p.node
        && before.and_then(|b| b.node.as_ref()) != Some(node)
    {
        lines.push(format!("[{name}] building on node {node}"));
    }
    for (i, step) in p.steps.iter().enumerate() {
        let old = before
            .and_then(|b| b.steps.get(i))
            .filter(|o| o.name == step.name);
        let old_phase = old.map_or("Pending", |o| phase(&o.phase));
        let new_phase = phase(&step.phase);
        if new_phase == "Pending" || (old_phase == new_phase && old.is_some()) {
            continue;
        }
        let (n, first) = numbers.get(name, i);
        if first {
            lines.push(format!("#{n} {}", title(name, &step.name)));
        }
        if let Some(end) = ending(step, p) {
            lines.push(format!("#{n} {end}"));
        }
    }
    let was = before.map_or("Pending", |b| phase(&b.phase));
    if phase(&p.phase) == "Failed" && was != "Failed" {
        let on = p
            .node
            .as_ref()
            .map(|n| format!(" on node {n}"))
            .unwrap_or_default();
        let why = p.message.as_deref().unwrap_or("no reason given");
        lines.push(format!("[{name}] failed{on}: {why}"));
    }
}

fn phase(p: &str) -> &str {
    if p.is_empty() { "Pending" } else { p }
}

/// `[stage 2/3] RUN make` on `linux/arm64` → `[linux/arm64 stage 2/3] RUN make`.
fn title(platform: &str, step: &str) -> String {
    match step.strip_prefix('[') {
        Some(rest) => format!("[{platform} {rest}"),
        None => format!("[{platform}] {step}"),
    }
}

/// The line that ends a step, if it ended.
fn ending(step: &BuildStepStatus, p: &PlatformBuildStatus) -> Option<String> {
    match phase(&step.phase) {
        "Succeeded" if step.cached => Some("CACHED".into()),
        "Succeeded" => Some(format!(
            "DONE {:.1}s",
            step.duration_millis.unwrap_or(0) as f64 / 1000.0
        )),
        "Failed" => Some(match (step.exit_code, &p.message) {
            (Some(code), _) => format!("ERROR: exit code {code}"),
            (None, Some(m)) => format!("ERROR: {m}"),
            (None, None) => "ERROR".into(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, phase: &str) -> BuildStepStatus {
        BuildStepStatus {
            name: name.into(),
            phase: phase.into(),
            ..Default::default()
        }
    }

    fn status(platforms: Vec<PlatformBuildStatus>) -> BuildStatus {
        BuildStatus {
            phase: "Running".into(),
            platforms,
            ..Default::default()
        }
    }

    fn arm64(node: Option<&str>, phase: &str, steps: Vec<BuildStepStatus>) -> PlatformBuildStatus {
        PlatformBuildStatus {
            platform: "linux/arm64".into(),
            node: node.map(String::from),
            phase: phase.into(),
            steps,
            ..Default::default()
        }
    }

    #[test]
    fn steps_print_once_when_they_start_and_once_when_they_end() {
        let mut n = Numbering::starting_at(2);
        let s0 = status(vec![arm64(
            None,
            "Pending",
            vec![step("[1/3] FROM busybox", "Pending")],
        )]);
        assert!(render(None, &s0, &mut n).is_empty());

        let mut from = step("[1/3] FROM busybox", "Succeeded");
        from.cached = true;
        let s1 = status(vec![arm64(
            Some("pi-1"),
            "Running",
            vec![
                from.clone(),
                step("[2/3] RUN make", "Running"),
                step("[3/3] COPY . /app", "Pending"),
            ],
        )]);
        assert_eq!(
            render(Some(&s0), &s1, &mut n),
            [
                "[linux/arm64] building on node pi-1",
                "#2 [linux/arm64 1/3] FROM busybox",
                "#2 CACHED",
                "#3 [linux/arm64 2/3] RUN make",
            ]
        );
        // Nothing changed: nothing printed.
        assert!(render(Some(&s1), &s1, &mut n).is_empty());

        let mut make = step("[2/3] RUN make", "Succeeded");
        make.duration_millis = Some(1234);
        let mut copy = step("[3/3] COPY . /app", "Succeeded");
        copy.duration_millis = Some(40);
        let s2 = status(vec![arm64(
            Some("pi-1"),
            "Succeeded",
            vec![from, make, copy],
        )]);
        assert_eq!(
            render(Some(&s1), &s2, &mut n),
            [
                "#3 DONE 1.2s",
                "#4 [linux/arm64 3/3] COPY . /app",
                "#4 DONE 0.0s"
            ]
        );
    }

    #[test]
    fn what_a_build_waits_for_prints_when_it_changes() {
        let mut n = Numbering::starting_at(2);
        let waiting = BuildStatus {
            phase: "Pending".into(),
            message: Some("no Ready node of platform linux/arm64".into()),
            ..Default::default()
        };
        assert_eq!(
            render(None, &waiting, &mut n),
            ["[pending] no Ready node of platform linux/arm64"]
        );
        assert!(render(Some(&waiting), &waiting, &mut n).is_empty());
        let mut failed = waiting.clone();
        failed.phase = "Failed".into();
        failed.message = Some("cancelled".into());
        assert!(render(Some(&waiting), &failed, &mut n).is_empty());
    }

    #[test]
    fn failures_name_the_exit_code_the_platform_and_the_node() {
        let mut n = Numbering::starting_at(2);
        let mut run = step("[build 2/2] RUN make", "Failed");
        run.exit_code = Some(2);
        let mut p = arm64(Some("pi-2"), "Failed", vec![run]);
        p.message = Some("RUN make: exit code 2".into());
        let mut v7 = arm64(None, "Failed", vec![step("[1/1] FROM x", "Failed")]);
        v7.platform = "linux/arm/v7".into();
        v7.message = Some("no Ready node of platform linux/arm/v7".into());
        let s = status(vec![p, v7]);
        assert_eq!(
            render(None, &s, &mut n),
            [
                "[linux/arm64] building on node pi-2",
                "#2 [linux/arm64 build 2/2] RUN make",
                "#2 ERROR: exit code 2",
                "[linux/arm64] failed on node pi-2: RUN make: exit code 2",
                "#3 [linux/arm/v7 1/1] FROM x",
                "#3 ERROR: no Ready node of platform linux/arm/v7",
                "[linux/arm/v7] failed: no Ready node of platform linux/arm/v7",
            ]
        );
        // Numbers stay with their steps.
        assert_eq!(n.get("linux/arm64", 0), (2, false));
    }
}
