//! The command line a container runs, as `docker ps` and `docker compose
//! ps` print it in their COMMAND column: the pod's `command` in place of
//! the image's `Entrypoint` and its `args` in place of the image's `Cmd`
//! (Kubernetes' rule: a `command` alone also drops the `Cmd`), each word
//! holding a space quoted in `'…'`, the whole in `"…"` and cut to 20
//! characters with `…`, as the Docker daemon's container list words it.
//! [`words`] and [`shown`] are pure; [`Images`] reads image configs from
//! the hub's registry, once per image.

use std::collections::HashMap;

use serde_json::Value;

use crate::context::Context;

/// What an image runs when a pod does not say: its config's `Entrypoint`
/// and `Cmd`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageProcess {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

impl ImageProcess {
    /// From an image config (`{"config": {"Entrypoint": [...], "Cmd": [...]}}`).
    pub fn of_config(config: &Value) -> ImageProcess {
        let list = |k: &str| -> Vec<String> {
            config["config"][k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|w| w.as_str().map(str::to_string))
                .collect()
        };
        ImageProcess {
            entrypoint: list("Entrypoint"),
            cmd: list("Cmd"),
        }
    }
}

/// The words `container` (a pod's container, as JSON) runs, its image's
/// defaults filling what it leaves out when they are known.
pub fn words(container: &Value, image: Option<&ImageProcess>) -> Vec<String> {
    let list = |k: &str| -> Option<Vec<String>> {
        let a = container[k].as_array()?;
        (!a.is_empty()).then(|| {
            a.iter()
                .filter_map(|w| w.as_str().map(str::to_string))
                .collect()
        })
    };
    let default = ImageProcess::default();
    let image = image.unwrap_or(&default);
    match (list("command"), list("args")) {
        (Some(mut command), args) => {
            command.extend(args.unwrap_or_default());
            command
        }
        (None, Some(args)) => image.entrypoint.iter().cloned().chain(args).collect(),
        (None, None) => image.entrypoint.iter().chain(&image.cmd).cloned().collect(),
    }
}

/// `words` in docker's COMMAND column: `"sh -c 'httpd -f -p …"`.
pub fn shown(words: &[String]) -> String {
    let full = words
        .iter()
        .map(|w| {
            if w.contains(' ') {
                format!("'{w}'")
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let short: String = if full.chars().count() > 20 {
        full.chars().take(19).chain(std::iter::once('…')).collect()
    } else {
        full
    };
    format!("\"{short}\"")
}

/// The processes of the images a listing names, read from the hub's
/// registry once each; an image the registry cannot answer for (gone,
/// elsewhere) has none, and its rows show the pod's own words.
pub struct Images<'a> {
    ctx: &'a Context,
    known: HashMap<String, Option<ImageProcess>>,
}

impl<'a> Images<'a> {
    pub fn new(ctx: &'a Context) -> Self {
        Images {
            ctx,
            known: HashMap::new(),
        }
    }

    /// The process of `image` (`NAME:TAG`, `NAME@DIGEST`).
    pub fn process(&mut self, image: &str) -> Option<&ImageProcess> {
        if !self.known.contains_key(image) {
            let found = crate::images::config(self.ctx, image)
                .ok()
                .map(|c| ImageProcess::of_config(&c));
            self.known.insert(image.to_string(), found);
        }
        self.known.get(image).and_then(Option::as_ref)
    }

    /// The processes read so far, by image.
    pub fn known(&self) -> HashMap<String, ImageProcess> {
        self.known
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image() -> ImageProcess {
        ImageProcess::of_config(&json!({"config": {
            "Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["redis-server"]}}))
    }

    #[test]
    fn the_pod_replaces_the_images_words_as_kubernetes_does() {
        let w = |c: Value| words(&c, Some(&image())).join(" ");
        assert_eq!(w(json!({})), "docker-entrypoint.sh redis-server");
        assert_eq!(
            w(json!({"args": ["redis-server", "--appendonly", "yes"]})),
            "docker-entrypoint.sh redis-server --appendonly yes"
        );
        assert_eq!(w(json!({"command": ["sh"]})), "sh");
        assert_eq!(
            w(json!({"command": ["sh"], "args": ["-c", "true"]})),
            "sh -c true"
        );
        assert!(words(&json!({}), None).is_empty());
    }

    #[test]
    fn shown_quoted_and_cut_as_docker_lists_containers() {
        let s = |w: &[&str]| shown(&w.iter().map(|w| w.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&["flask", "run"]), "\"flask run\"");
        assert_eq!(
            s(&["sh", "-c", "httpd -f -p 80"]),
            "\"sh -c 'httpd -f -p …\""
        );
        assert_eq!(
            s(&["docker-entrypoint.sh", "redis-server"]),
            "\"docker-entrypoint.s…\""
        );
        assert_eq!(s(&[]), "\"\"");
    }
}
