//! `bramble delete`: objects named in manifests, by name, or by label selector.

use std::io::Write;

use anyhow::bail;
use bramble_api::ResourceInfo;

use crate::args::DeleteArgs;
use crate::context::Context;
use crate::get;
use crate::kinds::{self, Targets};
use crate::manifests;

/// One object to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victim {
    pub resource: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub name: String,
}

/// kubectl's confirmation line: `deployment.apps "web" deleted`.
pub fn deleted_line(v: &Victim) -> String {
    format!("{} {:?} deleted", v.resource.display_name(), v.name)
}

/// Works out what to delete from the arguments.
fn victims(ctx: &Context, args: &DeleteArgs) -> anyhow::Result<Vec<Victim>> {
    if !args.filenames.is_empty() {
        let mut list =
            manifests::load_args(&args.filenames, args.recursive, &ctx.settings, "delete")?;
        manifests::sort_for_delete(&mut list);
        return Ok(list
            .into_iter()
            .map(|m| Victim {
                resource: m.resource,
                namespace: m.namespace,
                name: m.name,
            })
            .collect());
    }
    if args.resources.is_empty() {
        bail!("you must give -f FILE, or KIND NAME..., or KIND with -l SELECTOR or --all");
    }
    match kinds::parse(&args.resources)? {
        Targets::Objects(pairs) => {
            if args.selector.is_some() || args.all {
                bail!("names cannot be given together with -l or --all");
            }
            Ok(pairs
                .into_iter()
                .map(|(resource, name)| Victim {
                    resource,
                    namespace: ctx.scope(resource, false).map(str::to_string),
                    name,
                })
                .collect())
        }
        Targets::Lists { kinds, .. } => {
            let selector = match (&args.selector, args.all) {
                (Some(s), _) => Some(get::check_selector(s)?),
                (None, true) => None,
                (None, false) => bail!(
                    "resource(s) were provided, but no name was specified: give NAME..., \
                     -l SELECTOR, or --all to delete every {} in the namespace",
                    kinds[0].singular
                ),
            };
            let mut out = Vec::new();
            for resource in kinds {
                let g = get::list(ctx, resource, selector.as_deref(), false)?;
                for item in g.items {
                    out.push(Victim {
                        resource,
                        namespace: crate::json::namespace(&item)
                            .map(str::to_string)
                            .or_else(|| ctx.scope(resource, false).map(str::to_string)),
                        name: crate::json::name(&item).to_string(),
                    });
                }
            }
            if out.is_empty() {
                eprintln!("No resources found");
            }
            Ok(out)
        }
    }
}

/// Runs `delete`; returns whether every object was deleted.
pub fn run(ctx: &Context, args: &DeleteArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let mut ok = true;
    for v in victims(ctx, args)? {
        let path = v.resource.object_path(v.namespace.as_deref(), &v.name);
        match ctx.client.delete(&path) {
            Ok(_) => writeln!(out, "{}", deleted_line(&v))?,
            Err(e) if e.is_not_found() && args.ignore_not_found => {}
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                out.flush()?;
                eprintln!("{e}");
                ok = false;
            }
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_matches_kubectl() {
        let v = Victim {
            resource: bramble_api::resource::resolve("deploy").unwrap(),
            namespace: Some("default".into()),
            name: "web".into(),
        };
        assert_eq!(deleted_line(&v), "deployment.apps \"web\" deleted");
    }
}
