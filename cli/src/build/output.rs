//! The output of a one-platform build as it runs, as `docker build
//! --progress=plain` shows it: once the Build has a node, its log (`GET
//! …/builds/NAME/log?follow=true`, kept by the board: each step, cached or
//! run, the output of its `RUN`s, how each ended) is copied to the
//! terminal line by line, its step numbers moved after the ones this
//! command printed ([`renumber`]). A board that has no log of the job yet
//! (the job is on its way) is asked again; anything else — no node, a hub
//! or agent without build logs — prints nothing, and the caller shows the
//! steps from the Build's status instead.

use std::io::{BufRead, BufReader, Write};

use bramble_api::objects::Build;

use super::follow::POLL;
use crate::client::Client;

/// Copies the log of Build `name` to `err` while it runs, its numbers
/// from `first`; returns the number after the last one printed, or
/// `None` when there was no log to follow (nothing was printed).
pub fn stream(
    client: &Client,
    collection: &str,
    name: &str,
    first: u32,
    err: &mut dyn Write,
) -> anyhow::Result<Option<u32>> {
    let path = format!("{collection}/{name}");
    let log = format!("{path}/log");
    let body = loop {
        let Ok(value) = client.get(&path, &[]) else {
            return Ok(None);
        };
        let Ok(build) = serde_json::from_value::<Build>(value) else {
            return Ok(None);
        };
        let on_node = build
            .status
            .as_ref()
            .is_some_and(|s| s.platforms.iter().any(|p| p.node.is_some()));
        if !on_node {
            if build.finished() {
                return Ok(None);
            }
            std::thread::sleep(POLL);
            continue;
        }
        match client.stream(&log, &[("follow", "true")], None) {
            Ok(body) => break body,
            // The board has no log of the job yet: it is on its way.
            Err(e) if e.is_not_found() && !build.finished() => std::thread::sleep(POLL),
            Err(_) => return Ok(None),
        }
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
    Ok(Some(next))
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
