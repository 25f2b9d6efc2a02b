//! The output of a build as it runs, as `docker build --progress=plain`
//! shows it: once a platform of the Build has a node, its log (`GET
//! …/builds/NAME/log?platform=P&follow=true`, kept by the board: each step,
//! cached or run, the output of its `RUN`s, how each ended) is copied to
//! the terminal line by line. One platform's step numbers are moved after
//! the ones this command printed ([`renumber`]); several platforms' logs
//! are followed at once and interleaved as buildx interleaves them
//! ([`Interleave`]: one number per step of each platform, the platform in
//! its name, `#7 [linux/arm64 2/5] RUN …`, and each line of output after
//! its step's number). A board that has no log of the job yet (the job is
//! on its way) is asked again; anything else — no node, a hub or agent
//! without build logs — prints nothing of that platform, and when no
//! platform had a log the caller shows the steps from the Build's status
//! instead.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc;

use bramble_api::objects::Build;

use super::follow::POLL;
use crate::client::Client;

/// The log of `platform` of Build `path`, followed, once its board has
/// one; `None` if it never will.
fn open_log(client: &Client, path: &str, platform: &str) -> Option<Box<dyn Read + Send>> {
    let log = format!("{path}/log");
    loop {
        let build = serde_json::from_value::<Build>(client.get(path, &[]).ok()?).ok()?;
        let on_node = build.status.as_ref().is_some_and(|s| {
            s.platforms
                .iter()
                .any(|p| p.platform == platform && p.node.is_some())
        });
        if !on_node {
            if build.finished() {
                return None;
            }
            std::thread::sleep(POLL);
            continue;
        }
        match client.stream(&log, &[("platform", platform), ("follow", "true")], None) {
            Ok(body) => return Some(body),
            // The board has no log of the job yet: it is on its way.
            Err(e) if e.is_not_found() && !build.finished() => std::thread::sleep(POLL),
            Err(_) => return None,
        }
    }
}

/// Copies the logs of `platforms` of Build `name` to `err` while it runs,
/// numbered from `first`; returns the number after the last one printed,
/// or `None` when no platform had a log to follow (nothing was printed).
pub fn stream(
    client: &Client,
    collection: &str,
    name: &str,
    platforms: &[String],
    first: u32,
    err: &mut dyn Write,
) -> anyhow::Result<Option<u32>> {
    let path = format!("{collection}/{name}");
    if let [platform] = platforms {
        let Some(body) = open_log(client, &path, platform) else {
            return Ok(None);
        };
        let mut next = first;
        for line in BufReader::new(body).lines() {
            let Ok(line) = line else { break };
            let (text, n) = renumber(&line, first);
            if let Some(n) = n {
                next = next.max(n + 1);
            }
            writeln!(err, "{text}")?;
        }
        return Ok(Some(next));
    }
    let (tx, rx) = mpsc::channel::<(usize, Option<String>)>();
    let mut lines = Interleave::new(first);
    let mut opened = false;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for (i, platform) in platforms.iter().enumerate() {
            let (tx, path) = (tx.clone(), path.as_str());
            scope.spawn(move || {
                if let Some(body) = open_log(client, path, platform) {
                    let _ = tx.send((i, None));
                    for line in BufReader::new(body).lines() {
                        let Ok(line) = line else { break };
                        if tx.send((i, Some(line))).is_err() {
                            break;
                        }
                    }
                }
            });
        }
        drop(tx);
        for (i, line) in rx {
            match line {
                None => opened = true,
                Some(line) => writeln!(err, "{}", lines.line(&platforms[i], &line))?,
            }
        }
        Ok(())
    })?;
    Ok(opened.then_some(lines.next))
}

/// Several platforms' logs as one: each `#N` of a platform gets a number of
/// its own from `next` on, the platform goes into its step's name, and a
/// line of output gets its step's number in front.
pub struct Interleave {
    next: u32,
    numbers: BTreeMap<(String, u32), u32>,
    current: BTreeMap<String, u32>,
}

impl Interleave {
    pub fn new(first: u32) -> Self {
        Interleave {
            next: first,
            numbers: BTreeMap::new(),
            current: BTreeMap::new(),
        }
    }

    /// `line` of `platform`'s log, as printed.
    pub fn line(&mut self, platform: &str, line: &str) -> String {
        let numbered = line.strip_prefix('#').and_then(|rest| {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let n = rest[..digits].parse::<u32>().ok()?;
            rest[digits..]
                .starts_with(' ')
                .then(|| (n, &rest[digits..]))
        });
        let Some((n, rest)) = numbered else {
            return match self.current.get(platform) {
                Some(g) => format!("#{g} {line}"),
                None => line.to_string(),
            };
        };
        let key = (platform.to_string(), n);
        let g = match self.numbers.get(&key) {
            Some(g) => *g,
            None => {
                let g = self.next;
                self.next += 1;
                self.numbers.insert(key, g);
                g
            }
        };
        self.current.insert(platform.to_string(), g);
        match rest.strip_prefix(" [") {
            Some(step) => format!("#{g} [{platform} {step}"),
            None => format!("#{g}{rest}"),
        }
    }
}

/// `#3 DONE 1.2s` with numbers from `first` → `#(3+first) DONE 1.2s`, and
/// that number; any other line as it is.
pub fn renumber(line: &str, first: u32) -> (String, Option<u32>) {
    let Some(rest) = line.strip_prefix('#') else {
        return (line.to_string(), None);
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || !rest[digits..].starts_with(' ') {
        return (line.to_string(), None);
    }
    match rest[..digits].parse::<u32>() {
        Ok(n) => {
            let n = n + first;
            (format!("#{n}{}", &rest[digits..]), Some(n))
        }
        Err(_) => (line.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_interleave_with_numbers_of_their_own_as_buildx_prints_them() {
        let mut i = Interleave::new(2);
        let (amd, arm) = ("linux/amd64", "linux/arm64");
        let printed: Vec<String> = [
            (amd, "#0 [internal] fetching the build context (10 bytes)"),
            (arm, "#0 [internal] fetching the build context (10 bytes)"),
            (amd, "#1 [2/3] RUN make"),
            (arm, "#1 [2/3] RUN make"),
            (amd, "cc -o app app.c"),
            (arm, "cc -o app app.c"),
            (amd, "#1 DONE 0.4s"),
            (arm, "#1 DONE 2.1s"),
        ]
        .iter()
        .map(|(p, l)| i.line(p, l))
        .collect();
        assert_eq!(
            printed,
            [
                "#2 [linux/amd64 internal] fetching the build context (10 bytes)",
                "#3 [linux/arm64 internal] fetching the build context (10 bytes)",
                "#4 [linux/amd64 2/3] RUN make",
                "#5 [linux/arm64 2/3] RUN make",
                "#4 cc -o app app.c",
                "#5 cc -o app app.c",
                "#4 DONE 0.4s",
                "#5 DONE 2.1s",
            ]
        );
        assert_eq!(i.next, 6);
        assert_eq!(Interleave::new(2).line(amd, "no step yet"), "no step yet");
    }

    #[test]
    fn step_numbers_move_and_output_stays() {
        assert_eq!(
            renumber("#0 [internal] load build context", 2),
            ("#2 [internal] load build context".into(), Some(2))
        );
        assert_eq!(
            renumber("#3 DONE 1.2s", 2),
            ("#5 DONE 1.2s".into(), Some(5))
        );
        assert_eq!(renumber("# a comment", 2), ("# a comment".into(), None));
        assert_eq!(renumber("#include <x>", 2), ("#include <x>".into(), None));
        assert_eq!(renumber("compiling", 2), ("compiling".into(), None));
        assert_eq!(renumber("DONE 4.1s", 2), ("DONE 4.1s".into(), None));
    }
}
