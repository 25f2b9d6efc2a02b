//! What the user asked for on the command line: `pods`, `deploy,svc web`,
//! `all`, `deployment/web`, resolved against the API's kind registry.

use anyhow::bail;
use bramble_api::ResourceInfo;
use bramble_api::resource::resolve;

/// The kinds `get all` lists, as kubectl does (minus the kinds Bramble lacks).
pub const ALL: &[&str] = &[
    "pods",
    "services",
    "deployments",
    "daemonsets",
    "statefulsets",
    "horizontalpodautoscalers",
    "jobs",
    "cronjobs",
];

/// What to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Whole collections (filtered by a selector, if any). `all` is true for
    /// `get all`, where empty kinds are left out.
    Lists {
        kinds: Vec<&'static ResourceInfo>,
        all: bool,
    },
    /// Named objects, in the order given.
    Objects(Vec<(&'static ResourceInfo, String)>),
}

/// Resolves one kind name, with kubectl's message for unknown ones.
pub fn resolve_kind(name: &str) -> anyhow::Result<&'static ResourceInfo> {
    match resolve(name) {
        Some(r) => Ok(r),
        None => bail!("the server doesn't have a resource type {name:?}"),
    }
}

/// Every kind's plural with its short names (`pods (po), services (svc), ...`),
/// from the registry, so the list never misses a kind.
fn kind_names() -> String {
    bramble_api::RESOURCES
        .iter()
        .map(|r| match r.short_names {
            [] => r.plural.to_string(),
            short => format!("{} ({})", r.plural, short.join(", ")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `KIND[,KIND...] [NAME...]` or `KIND/NAME...`.
pub fn parse(args: &[String]) -> anyhow::Result<Targets> {
    let Some(first) = args.first() else {
        bail!(
            "you must specify the type of resource, e.g. `bramble get pods`; types: {}, all",
            kind_names()
        );
    };
    if args.iter().any(|a| a.contains('/')) {
        let mut pairs = Vec::new();
        for a in args {
            let Some((kind, name)) = a.split_once('/') else {
                bail!(
                    "there is no need to specify a resource type as a separate argument when \
                     passing arguments in resource/name form (e.g. `bramble get deploy/web`), got {a:?}"
                );
            };
            if name.is_empty() {
                bail!("{a:?}: a name is needed after the '/'");
            }
            pairs.push((resolve_kind(kind)?, name.to_string()));
        }
        return Ok(Targets::Objects(pairs));
    }

    let mut kinds: Vec<&'static ResourceInfo> = Vec::new();
    let mut all = false;
    for part in first.split(',').filter(|p| !p.is_empty()) {
        let expanded: Vec<&'static ResourceInfo> = if part.eq_ignore_ascii_case("all") {
            all = true;
            ALL.iter()
                .map(|k| resolve_kind(k))
                .collect::<Result<_, _>>()?
        } else {
            vec![resolve_kind(part)?]
        };
        for r in expanded {
            if !kinds.contains(&r) {
                kinds.push(r);
            }
        }
    }
    if kinds.is_empty() {
        bail!("no resource type in {first:?}");
    }
    let names = &args[1..];
    if names.is_empty() {
        return Ok(Targets::Lists { kinds, all });
    }
    Ok(Targets::Objects(
        kinds
            .iter()
            .flat_map(|k| names.iter().map(move |n| (*k, n.clone())))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn kinds_of(t: &Targets) -> Vec<&'static str> {
        match t {
            Targets::Lists { kinds, .. } => kinds.iter().map(|k| k.kind).collect(),
            Targets::Objects(p) => p.iter().map(|(k, _)| k.kind).collect(),
        }
    }

    #[test]
    fn resolves_short_names_lists_and_all() {
        let t = parse(&args(&["deploy,svc,deployments"])).unwrap();
        assert_eq!(kinds_of(&t), ["Deployment", "Service"]);
        let t = parse(&args(&["all"])).unwrap();
        assert!(matches!(t, Targets::Lists { all: true, .. }));
        assert_eq!(
            kinds_of(&t),
            [
                "Pod",
                "Service",
                "Deployment",
                "DaemonSet",
                "StatefulSet",
                "HorizontalPodAutoscaler",
                "Job",
                "CronJob"
            ]
        );
        let t = parse(&args(&["jobs,cj"])).unwrap();
        assert_eq!(kinds_of(&t), ["Job", "CronJob"]);
        for short in [
            "po", "cm", "ds", "sts", "no", "ns", "ep", "ing", "netpol", "hpa",
        ] {
            assert!(parse(&args(&[short])).is_ok(), "{short}");
        }
    }

    #[test]
    fn names_and_slash_form() {
        let t = parse(&args(&["po,svc", "a", "b"])).unwrap();
        let Targets::Objects(p) = t else { panic!() };
        let got: Vec<(&str, &str)> = p.iter().map(|(k, n)| (k.kind, n.as_str())).collect();
        assert_eq!(
            got,
            [
                ("Pod", "a"),
                ("Pod", "b"),
                ("Service", "a"),
                ("Service", "b")
            ]
        );

        let t = parse(&args(&["deploy/web", "svc/web"])).unwrap();
        assert_eq!(kinds_of(&t), ["Deployment", "Service"]);
        assert!(parse(&args(&["deploy/web", "x"])).is_err());
        assert!(parse(&args(&["deploy/"])).is_err());
    }

    #[test]
    fn no_kind_names_every_kind_of_the_registry() {
        let e = parse(&[]).unwrap_err().to_string();
        assert!(e.contains("pods (po), "), "{e}");
        assert!(
            e.contains("replicasets (rs)") && e.ends_with(", all"),
            "{e}"
        );
    }

    #[test]
    fn unknown_kind_message_matches_kubectl() {
        let e = parse(&args(&["widgets"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the server doesn't have a resource type \"widgets\""
        );
        assert!(parse(&args(&["pods,widgets"])).is_err());
        assert!(parse(&[]).is_err());
    }
}
