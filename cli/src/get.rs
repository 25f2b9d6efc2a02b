//! `bramble get`: fetch objects and print them as tables, YAML, JSON or
//! names; with `-w`, keep printing watch events as rows.

use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::bail;
use bramble_api::{ResourceInfo, Selector};
use serde_json::Value;

use crate::args::{GetArgs, OutputFormat};
use crate::client::ClientError;
use crate::columns::{self, TableOptions};
use crate::context::Context;
use crate::kinds::{self, Targets};
use crate::output;
use crate::table::{Table, render_row};

/// The objects of one kind that were fetched.
#[derive(Debug, Clone)]
pub struct Group {
    pub resource: &'static ResourceInfo,
    pub items: Vec<Value>,
    /// The list's `metadata.resourceVersion` (where a watch starts).
    pub resource_version: Option<String>,
}

/// Checks a `-l` selector locally so a typo gets a precise message.
pub fn check_selector(s: &str) -> anyhow::Result<String> {
    Selector::parse(s)?;
    Ok(s.to_string())
}

/// Lists one kind: `(items, resourceVersion)`.
pub fn list(
    ctx: &Context,
    resource: &'static ResourceInfo,
    selector: Option<&str>,
    all_namespaces: bool,
) -> Result<Group, ClientError> {
    let path = resource.collection_path(ctx.scope(resource, all_namespaces));
    let query: Vec<(&str, &str)> = selector
        .filter(|s| !s.is_empty())
        .map(|s| vec![("labelSelector", s)])
        .unwrap_or_default();
    let v = ctx.client.get(&path, &query)?;
    let items = crate::json::list_at(&v, "/items")
        .iter()
        .map(|i| output::with_type_meta(resource, i.clone()))
        .collect();
    Ok(Group {
        resource,
        items,
        resource_version: crate::json::resource_version(&v).map(str::to_string),
    })
}

/// Fetches what `targets` names. Errors about single objects (not found) are
/// returned in the second value for printing after the output; fatal ones stop.
pub fn fetch(
    ctx: &Context,
    targets: &Targets,
    selector: Option<&str>,
    all_namespaces: bool,
) -> anyhow::Result<(Vec<Group>, Vec<ClientError>)> {
    match targets {
        Targets::Lists { kinds, .. } => {
            let mut groups = Vec::new();
            for k in kinds {
                groups.push(list(ctx, k, selector, all_namespaces)?);
            }
            Ok((groups, Vec::new()))
        }
        Targets::Objects(pairs) => {
            let mut groups: Vec<Group> = Vec::new();
            let mut errors = Vec::new();
            for (resource, name) in pairs {
                let path = resource.object_path(ctx.scope(resource, false), name);
                match ctx.client.get(&path, &[]) {
                    Ok(obj) => {
                        let obj = output::with_type_meta(resource, obj);
                        match groups.iter_mut().find(|g| g.resource == *resource) {
                            Some(g) => g.items.push(obj),
                            None => groups.push(Group {
                                resource,
                                items: vec![obj],
                                resource_version: None,
                            }),
                        }
                    }
                    Err(e) if e.is_fatal() => return Err(e.into()),
                    Err(e) => errors.push(e),
                }
            }
            Ok((groups, errors))
        }
    }
}

/// Prints fetched groups in the requested format.
pub fn print(
    groups: &[Group],
    format: Option<OutputFormat>,
    single_object: bool,
    opts: &TableOptions,
    multi_kind: bool,
    headers: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match format {
        Some(OutputFormat::Yaml) | Some(OutputFormat::Json) => {
            let mut items: Vec<Value> = groups
                .iter()
                .flat_map(|g| g.items.iter().cloned())
                .map(output::without_managed_fields)
                .collect();
            let doc = if single_object && items.len() == 1 {
                items.remove(0)
            } else {
                output::list(items)
            };
            let text = if format == Some(OutputFormat::Yaml) {
                output::yaml(&doc)?
            } else {
                output::json_text(&doc)?
            };
            out.write_all(text.as_bytes())?;
        }
        Some(OutputFormat::Name) => {
            for g in groups {
                for item in &g.items {
                    writeln!(out, "{}", output::name_line(g.resource, item))?;
                }
            }
        }
        Some(OutputFormat::Wide) | None => {
            let mut first = true;
            for g in groups.iter().filter(|g| !g.items.is_empty()) {
                if !first {
                    writeln!(out)?;
                }
                first = false;
                let opts = TableOptions {
                    kind_prefix: multi_kind.then(|| g.resource.display_name()),
                    namespace_column: opts.namespace_column && g.resource.namespaced,
                    ..opts.clone()
                };
                let t = columns::table(g.resource.kind, &g.items, &opts);
                out.write_all(t.render(headers).as_bytes())?;
            }
        }
    }
    Ok(())
}

/// Runs `get`; returns whether everything asked for was found.
pub fn run(ctx: &Context, args: &GetArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let targets = kinds::parse(&args.resources)?;
    let selector = args.selector.as_deref().map(check_selector).transpose()?;
    if let Targets::Objects(_) = &targets {
        if args.all_namespaces {
            bail!("a resource cannot be retrieved by name across all namespaces");
        }
        if selector.is_some() {
            bail!("names cannot be given together with a label selector (-l)");
        }
    }
    let kinds_asked: Vec<&'static ResourceInfo> = match &targets {
        Targets::Lists { kinds, .. } => kinds.clone(),
        Targets::Objects(pairs) => {
            let mut v: Vec<&'static ResourceInfo> = Vec::new();
            for (k, _) in pairs {
                if !v.contains(k) {
                    v.push(k);
                }
            }
            v
        }
    };
    if args.watch && kinds_asked.len() != 1 {
        bail!("you may only specify a single resource type with --watch");
    }

    let (groups, errors) = fetch(ctx, &targets, selector.as_deref(), args.all_namespaces)?;
    let any_namespaced = kinds_asked.iter().any(|k| k.namespaced);
    let opts = TableOptions {
        wide: args.output == Some(OutputFormat::Wide),
        namespace_column: args.all_namespaces && any_namespaced,
        kind_prefix: None,
        now: SystemTime::now(),
    };
    let single_object = matches!(&targets, Targets::Objects(p) if p.len() == 1);
    let total: usize = groups.iter().map(|g| g.items.len()).sum();
    let is_table = matches!(args.output, None | Some(OutputFormat::Wide));

    let watch_from_start = args.watch && args.output_watch_events;
    let mut printed_table = None;
    if watch_from_start {
        // The watch replays existing objects as ADDED rows.
    } else if total == 0 {
        if is_table && errors.is_empty() && !args.watch {
            out.flush()?;
            eprintln!(
                "{}",
                ctx.no_resources_message(any_namespaced, args.all_namespaces)
            );
        } else if !is_table && matches!(targets, Targets::Lists { .. }) {
            print(&groups, args.output, false, &opts, false, true, out)?;
        }
    } else {
        print(
            &groups,
            args.output,
            single_object,
            &opts,
            kinds_asked.len() > 1,
            !args.no_headers,
            out,
        )?;
        if is_table && let Some(g) = groups.first() {
            printed_table = Some(columns::table(g.resource.kind, &g.items, &opts));
        }
    }
    out.flush()?;
    for e in &errors {
        eprintln!("{e}");
    }

    if args.watch {
        let resource = kinds_asked[0];
        let names: Vec<String> = match &targets {
            Targets::Objects(pairs) => pairs.iter().map(|(_, n)| n.clone()).collect(),
            Targets::Lists { .. } => Vec::new(),
        };
        let start_rv = if watch_from_start {
            None
        } else {
            match groups.first().and_then(|g| g.resource_version.clone()) {
                Some(rv) => Some(rv),
                None => {
                    list(ctx, resource, selector.as_deref(), args.all_namespaces)?.resource_version
                }
            }
        };
        let w = Watch {
            resource,
            names,
            selector,
            all_namespaces: args.all_namespaces,
            format: args.output,
            opts,
            events_column: args.output_watch_events,
            headers: !args.no_headers,
        };
        w.run(ctx, start_rv, printed_table, out)?;
    }
    Ok(errors.is_empty())
}

/// A `get -w` in progress.
struct Watch {
    resource: &'static ResourceInfo,
    /// Only these objects (empty: all).
    names: Vec<String>,
    selector: Option<String>,
    all_namespaces: bool,
    format: Option<OutputFormat>,
    opts: TableOptions,
    events_column: bool,
    headers: bool,
}

impl Watch {
    fn run(
        &self,
        ctx: &Context,
        mut resource_version: Option<String>,
        printed: Option<Table>,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        let kind = self.resource.kind;
        let mut header = columns::headers(kind, &self.opts);
        if self.events_column {
            header.insert(0, "EVENT".into());
        }
        let mut widths = match &printed {
            Some(t) => t.widths(),
            None => Table::new(header.clone()).widths(),
        };
        let mut header_printed = printed.is_some();
        let path = self
            .resource
            .collection_path(ctx.scope(self.resource, self.all_namespaces));
        loop {
            let mut query: Vec<(&str, &str)> = Vec::new();
            if let Some(rv) = &resource_version {
                query.push(("resourceVersion", rv));
            }
            if let Some(s) = &self.selector {
                query.push(("labelSelector", s));
            }
            let stream = match ctx.client.watch(&path, &query) {
                Ok(s) => s,
                // Our position fell out of the hub's history: start over.
                Err(e) if e.code() == Some(410) && resource_version.is_some() => {
                    resource_version = None;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            for event in stream {
                let event = event?;
                if event.kind == "ERROR" {
                    if crate::json::int_at(&event.object, "/code") == Some(410) {
                        resource_version = None;
                        break;
                    }
                    let msg = crate::json::str_at(&event.object, "/message")
                        .unwrap_or("the hub ended the watch with an error");
                    bail!("watch failed: {msg}");
                }
                if let Some(rv) = crate::json::resource_version(&event.object) {
                    resource_version = Some(rv.to_string());
                }
                if event.kind == "BOOKMARK" {
                    continue;
                }
                let name = crate::json::name(&event.object);
                if !self.names.is_empty() && !self.names.iter().any(|n| n == name) {
                    continue;
                }
                let obj = output::without_managed_fields(output::with_type_meta(
                    self.resource,
                    event.object,
                ));
                match self.format {
                    Some(OutputFormat::Yaml) => {
                        write!(out, "---\n{}", output::yaml(&obj)?)?;
                    }
                    Some(OutputFormat::Json) => {
                        out.write_all(output::json_text(&obj)?.as_bytes())?
                    }
                    Some(OutputFormat::Name) => {
                        writeln!(out, "{}", output::name_line(self.resource, &obj))?
                    }
                    Some(OutputFormat::Wide) | None => {
                        let mut row = columns::row(
                            kind,
                            &obj,
                            &TableOptions {
                                now: SystemTime::now(),
                                ..self.opts.clone()
                            },
                        );
                        if self.events_column {
                            row.insert(0, event.kind.clone());
                        }
                        if !header_printed {
                            widths = Table {
                                headers: header.clone(),
                                rows: vec![row.clone()],
                            }
                            .widths();
                            if self.headers {
                                out.write_all(render_row(&header, &widths).as_bytes())?;
                            }
                            header_printed = true;
                        }
                        out.write_all(render_row(&row, &widths).as_bytes())?;
                    }
                }
                out.flush()?;
            }
            // The hub closed the stream (restart, timeout): resume where we were.
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group(kind: &str, names: &[&str]) -> Group {
        let resource = bramble_api::resource::resolve(kind).unwrap();
        Group {
            resource,
            items: names
                .iter()
                .map(|n| output::with_type_meta(resource, json!({"metadata": {"name": n}})))
                .collect(),
            resource_version: Some("5".into()),
        }
    }

    fn render(groups: &[Group], format: Option<OutputFormat>, single: bool, multi: bool) -> String {
        let opts = TableOptions {
            wide: false,
            namespace_column: false,
            kind_prefix: None,
            now: SystemTime::now(),
        };
        let mut buf = Vec::new();
        print(groups, format, single, &opts, multi, true, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn several_kinds_get_prefixed_tables_separated_by_a_blank_line() {
        let g = [
            group("cm", &["a"]),
            group("deploy", &[]),
            group("secret", &["s"]),
        ];
        let text = render(&g, None, false, true);
        assert!(
            text.starts_with(
                "NAME          DATA   AGE\nconfigmap/a   0      <unknown>\n\nNAME       TYPE"
            ),
            "{text}"
        );
        assert!(text.contains("secret/s   Opaque"), "{text}");
    }

    #[test]
    fn all_namespaces_column_only_for_namespaced_kinds() {
        let opts = TableOptions {
            wide: false,
            namespace_column: true,
            kind_prefix: None,
            now: SystemTime::now(),
        };
        let mut cm = group("cm", &["a"]);
        cm.items[0]["metadata"]["namespace"] = json!("shop");
        let mut buf = Vec::new();
        print(
            &[cm, group("ns", &["shop"])],
            None,
            false,
            &opts,
            true,
            true,
            &mut buf,
        )
        .unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAMESPACE   NAME"), "{text}");
        assert!(lines[1].starts_with("shop        configmap/a"), "{text}");
        assert!(lines[4].starts_with("namespace/shop   Active"), "{text}");
    }

    #[test]
    fn yaml_is_one_object_or_a_list() {
        let one = render(
            &[group("deploy", &["web"])],
            Some(OutputFormat::Yaml),
            true,
            false,
        );
        assert!(
            one.starts_with("apiVersion: apps/v1\nkind: Deployment\n"),
            "{one}"
        );
        let many = render(
            &[group("deploy", &["web"])],
            Some(OutputFormat::Json),
            false,
            false,
        );
        assert!(many.contains("\"kind\": \"List\""), "{many}");
        let names = render(
            &[group("deploy", &["a", "b"]), group("svc", &["c"])],
            Some(OutputFormat::Name),
            false,
            true,
        );
        assert_eq!(names, "deployment.apps/a\ndeployment.apps/b\nservice/c\n");
    }

    #[test]
    fn selector_is_checked_locally() {
        assert!(check_selector("app=web,tier in (a,b)").is_ok());
        let e = check_selector("app in web").unwrap_err();
        assert!(e.to_string().contains("invalid label selector"), "{e}");
    }
}
