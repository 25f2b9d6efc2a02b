//! `bramble describe`: objects as readable text (see [`kinds`] for the layout),
//! each followed by its Events ([`events`]).

pub mod events;
pub mod kinds;
pub mod storage;
pub mod writer;

use std::io::Write;
use std::time::SystemTime;

use anyhow::bail;

use crate::args::DescribeArgs;
use crate::context::Context;
use crate::get;
use crate::kinds::Targets;

/// Runs `describe`; returns whether every named object was found.
pub fn run(ctx: &Context, args: &DescribeArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let targets = crate::kinds::parse(&args.resources)?;
    let selector = args
        .selector
        .as_deref()
        .map(get::check_selector)
        .transpose()?;
    if matches!(targets, Targets::Objects(_)) && args.all_namespaces {
        bail!("a resource cannot be retrieved by name across all namespaces");
    }
    let (groups, errors) = get::fetch(ctx, &targets, selector.as_deref(), args.all_namespaces)?;
    let mut first = true;
    for g in &groups {
        for item in &g.items {
            if !first {
                writeln!(out)?;
                writeln!(out)?;
            }
            first = false;
            let text = kinds::describe(g.resource.kind, item, g.resource.namespaced);
            out.write_all(text.as_bytes())?;
            // As kubectl: a hub that cannot list events still describes.
            let (path, selector) = events::query(g.resource.kind, item, g.resource.namespaced);
            if let Ok(list) = ctx.client.get(&path, &[("fieldSelector", &selector)]) {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                out.write_all(events::section(&items, SystemTime::now()).as_bytes())?;
            }
        }
    }
    out.flush()?;
    if first && errors.is_empty() {
        let namespaced = groups.iter().any(|g| g.resource.namespaced);
        eprintln!(
            "{}",
            ctx.no_resources_message(namespaced, args.all_namespaces)
        );
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(errors.is_empty())
}
