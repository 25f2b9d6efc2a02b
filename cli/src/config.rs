//! Where the hub URL, token, CA and namespace come from.
//!
//! Order for the token: `--token`, `BRAMBLE_TOKEN`, the config file
//! (`$XDG_CONFIG_HOME/bramble/config` or `~/.config/bramble/config`, YAML with
//! `hub`, `token`, `ca`, `namespace`; `bramble config` writes one), then
//! `DATA_DIR/token`, which the hub writes, so on the hub machine nothing
//! needs copying. The CA that an `https://` hub must be certified by comes
//! from `--certificate-authority FILE`, the config file's `ca` (PEM), then
//! `DATA_DIR/ca.crt`. Everything is passed in through [`Inputs`] so tests
//! never touch the real environment or home directory.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Default hub address: the hub's API on the local machine.
pub const DEFAULT_HUB: &str = "https://127.0.0.1:7480";

/// What the user and the environment supplied.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `--hub` or `BRAMBLE_HUB`.
    pub hub_flag: Option<String>,
    /// `--token`.
    pub token_flag: Option<String>,
    /// `BRAMBLE_TOKEN`.
    pub token_env: Option<String>,
    /// `-n/--namespace`.
    pub namespace_flag: Option<String>,
    /// `--certificate-authority` or `BRAMBLE_CA_FILE`.
    pub ca_flag: Option<PathBuf>,
    /// `--data-dir` or `BRAMBLE_DATA_DIR` (or its default).
    pub data_dir: PathBuf,
    /// The config file to read, see [`config_path`].
    pub config_path: Option<PathBuf>,
}

/// The config file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub hub: Option<String>,
    pub token: Option<String>,
    /// The cluster CA, PEM.
    pub ca: Option<String>,
    pub namespace: Option<String>,
}

/// The CA certificate(s) an `https://` hub must be certified by, and where
/// they came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ca {
    pub pem: Vec<u8>,
    pub source: String,
}

/// Where a token was found, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Flag,
    Env,
    ConfigFile(PathBuf),
    DataDir(PathBuf),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Flag => write!(f, "--token"),
            TokenSource::Env => write!(f, "BRAMBLE_TOKEN"),
            TokenSource::ConfigFile(p) => write!(f, "the config file {}", p.display()),
            TokenSource::DataDir(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A bearer token and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub value: String,
    pub source: TokenSource,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret itself.
        f.debug_struct("Token")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Resolved settings for one command.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Hub base URL without a trailing slash.
    pub hub: String,
    pub token: Option<Token>,
    /// `None` for an `http://` hub, or when no CA was found (requests then
    /// fail with a hint saying where to get one).
    pub ca: Option<Ca>,
    pub namespace: String,
    /// Whether `-n` was given (a manifest's namespace must then agree with it).
    pub namespace_explicit: bool,
    pub data_dir: PathBuf,
    /// What to tell the user when the hub answers 401.
    pub unauthorized_hint: String,
}

/// The config file's path: `$XDG_CONFIG_HOME/bramble/config` when that is set
/// to an absolute path, else `$HOME/.config/bramble/config`.
pub fn config_path(xdg_config_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    let base = match xdg_config_home.filter(|x| Path::new(x).is_absolute()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(home.filter(|h| !h.is_empty())?).join(".config"),
    };
    Some(base.join("bramble").join("config"))
}

/// Reads the config file; a missing file is an empty config.
pub fn read_config(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_yaml_ng::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid bramble config (YAML with keys hub, token, ca, namespace)",
            path.display()
        )
    })
}

/// Applies the precedence rules to `inputs`.
pub fn resolve(inputs: Inputs) -> anyhow::Result<Settings> {
    let file = match &inputs.config_path {
        Some(p) => read_config(p)?,
        None => ConfigFile::default(),
    };
    let config_display = inputs
        .config_path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "~/.config/bramble/config".into());

    let hub_raw = non_empty(inputs.hub_flag.clone())
        .or_else(|| non_empty(file.hub.clone()))
        .unwrap_or_else(|| DEFAULT_HUB.to_string());
    let hub = normalize_hub(&hub_raw)?;

    let ca = if let Some(path) = &inputs.ca_flag {
        let pem = std::fs::read(path)
            .with_context(|| format!("--certificate-authority {}", path.display()))?;
        Some(Ca {
            pem,
            source: format!("--certificate-authority {}", path.display()),
        })
    } else if let Some(pem) = non_empty(file.ca.clone()) {
        Some(Ca {
            pem: pem.into_bytes(),
            source: format!("`ca:` in {config_display}"),
        })
    } else {
        let path = inputs.data_dir.join("ca.crt");
        std::fs::read(&path).ok().map(|pem| Ca {
            pem,
            source: path.display().to_string(),
        })
    };

    let token_file = inputs.data_dir.join("token");
    let mut unreadable = None;
    let token = if let Some(v) = non_empty(inputs.token_flag.clone()) {
        Some(Token {
            value: v,
            source: TokenSource::Flag,
        })
    } else if let Some(v) = non_empty(inputs.token_env.clone()) {
        Some(Token {
            value: v,
            source: TokenSource::Env,
        })
    } else if let Some(v) = non_empty(file.token.clone()) {
        Some(Token {
            value: v,
            source: TokenSource::ConfigFile(inputs.config_path.clone().unwrap_or_default()),
        })
    } else {
        match std::fs::read_to_string(&token_file) {
            Ok(t) => non_empty(Some(t)).map(|v| Token {
                value: v,
                source: TokenSource::DataDir(token_file.clone()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                unreadable = Some(e);
                None
            }
        }
    };

    let unauthorized_hint = match (&token, unreadable) {
        (Some(t), _) => format!(
            "the hub rejected the token from {}; use the token in {} on the hub machine",
            t.source,
            token_file.display()
        ),
        (None, Some(e)) => format!(
            "no token was sent: {} exists but cannot be read ({}); run as a user that can read it \
             (e.g. with sudo), or pass --token, set BRAMBLE_TOKEN, or add `token: ...` to {config_display}",
            token_file.display(),
            io_reason(&e)
        ),
        (None, None) => format!(
            "no token was sent: pass --token, set BRAMBLE_TOKEN, or add `token: ...` to {config_display} \
             (the hub writes its admin token to {} on the hub machine)",
            token_file.display()
        ),
    };

    let (namespace, namespace_explicit) = match non_empty(inputs.namespace_flag.clone()) {
        Some(ns) => (ns, true),
        None => (
            non_empty(file.namespace.clone()).unwrap_or_else(|| "default".into()),
            false,
        ),
    };

    Ok(Settings {
        hub,
        token,
        ca,
        namespace,
        namespace_explicit,
        data_dir: inputs.data_dir,
        unauthorized_hint,
    })
}

/// `host:port` → `https://host:port`; strips trailing slashes; `http://`
/// stays (a lab hub with `--insecure-http`).
pub fn normalize_hub(raw: &str) -> anyhow::Result<String> {
    let raw = raw.trim();
    let (scheme, rest) = raw.split_once("://").unwrap_or(("https", raw));
    let rest = rest.trim_end_matches('/');
    if !matches!(scheme, "https" | "http") || rest.is_empty() {
        bail!("hub URL {raw:?} is not valid: expected https://HOST:PORT (e.g. {DEFAULT_HUB})");
    }
    Ok(format!("{scheme}://{rest}"))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                dir: tempfile::tempdir().unwrap(),
            }
        }
        fn data_dir(&self) -> PathBuf {
            self.dir.path().join("data")
        }
        fn config(&self) -> PathBuf {
            self.dir.path().join("config")
        }
        fn write_data_token(&self, t: &str) {
            fs::create_dir_all(self.data_dir()).unwrap();
            fs::write(self.data_dir().join("token"), t).unwrap();
        }
        fn write_config(&self, text: &str) {
            fs::write(self.config(), text).unwrap();
        }
        fn inputs(&self) -> Inputs {
            Inputs {
                data_dir: self.data_dir(),
                config_path: Some(self.config()),
                ..Default::default()
            }
        }
    }

    #[test]
    fn token_precedence_flag_env_config_datadir() {
        let fx = Fixture::new();
        fx.write_data_token("from-data\n");
        fx.write_config("token: from-config\n");
        let mut inputs = fx.inputs();
        inputs.token_flag = Some("from-flag".into());
        inputs.token_env = Some("from-env".into());

        let s = resolve(inputs.clone()).unwrap();
        let t = s.token.unwrap();
        assert_eq!(
            (t.value.as_str(), t.source),
            ("from-flag", TokenSource::Flag)
        );

        inputs.token_flag = None;
        let t = resolve(inputs.clone()).unwrap().token.unwrap();
        assert_eq!((t.value.as_str(), t.source), ("from-env", TokenSource::Env));

        inputs.token_env = Some("  ".into()); // empty counts as unset
        let t = resolve(inputs.clone()).unwrap().token.unwrap();
        assert_eq!(t.value, "from-config");
        assert_eq!(t.source, TokenSource::ConfigFile(fx.config()));

        fx.write_config("hub: http://10.0.0.2:7480\n");
        let t = resolve(inputs.clone()).unwrap().token.unwrap();
        assert_eq!(t.value, "from-data", "trailing newline trimmed");
        assert_eq!(t.source, TokenSource::DataDir(fx.data_dir().join("token")));

        fs::remove_file(fx.data_dir().join("token")).unwrap();
        let s = resolve(inputs).unwrap();
        assert!(s.token.is_none());
        assert!(
            s.unauthorized_hint.contains("--token"),
            "{}",
            s.unauthorized_hint
        );
        assert!(s.unauthorized_hint.contains("BRAMBLE_TOKEN"));
        assert!(
            s.unauthorized_hint
                .contains(&fx.config().display().to_string())
        );
    }

    #[test]
    fn hub_and_namespace_precedence() {
        let fx = Fixture::new();
        let s = resolve(fx.inputs()).unwrap();
        assert_eq!(s.hub, DEFAULT_HUB);
        assert_eq!(s.namespace, "default");
        assert!(!s.namespace_explicit);

        fx.write_config("hub: 10.0.0.2:7480/\nnamespace: site\n");
        let s = resolve(fx.inputs()).unwrap();
        assert_eq!(s.hub, "https://10.0.0.2:7480");
        assert_eq!(s.namespace, "site");

        let mut inputs = fx.inputs();
        inputs.hub_flag = Some("http://hub.local:7480".into());
        inputs.namespace_flag = Some("other".into());
        let s = resolve(inputs).unwrap();
        assert_eq!(s.hub, "http://hub.local:7480");
        assert_eq!(s.namespace, "other");
        assert!(s.namespace_explicit);
    }

    #[test]
    fn rejected_token_hint_names_its_source() {
        let fx = Fixture::new();
        let mut inputs = fx.inputs();
        inputs.token_env = Some("abc".into());
        let s = resolve(inputs).unwrap();
        assert!(
            s.unauthorized_hint.contains("BRAMBLE_TOKEN"),
            "{}",
            s.unauthorized_hint
        );
        assert!(
            !format!("{:?}", s.token).contains("abc"),
            "Debug hides the secret"
        );
    }

    #[test]
    fn bad_config_file_is_an_error_naming_the_file() {
        let fx = Fixture::new();
        fx.write_config("hub: [\n");
        let e = resolve(fx.inputs()).unwrap_err();
        assert!(
            format!("{e:#}").contains(&fx.config().display().to_string()),
            "{e:#}"
        );
        fx.write_config("server: x\n");
        let e = resolve(fx.inputs()).unwrap_err();
        assert!(format!("{e:#}").contains("unknown field `server`"), "{e:#}");
    }

    #[test]
    fn config_path_honours_xdg() {
        assert_eq!(
            config_path(Some("/xdg"), Some("/home/u")),
            Some(PathBuf::from("/xdg/bramble/config"))
        );
        assert_eq!(
            config_path(Some("relative"), Some("/home/u")),
            Some(PathBuf::from("/home/u/.config/bramble/config"))
        );
        assert_eq!(
            config_path(None, Some("/home/u")),
            Some(PathBuf::from("/home/u/.config/bramble/config"))
        );
        assert_eq!(config_path(None, None), None);
    }

    #[test]
    fn normalizes_hub_urls() {
        assert_eq!(normalize_hub("http://a:1/").unwrap(), "http://a:1");
        assert_eq!(normalize_hub("https://a:1/").unwrap(), "https://a:1");
        assert_eq!(normalize_hub("a:1").unwrap(), "https://a:1");
        let e = normalize_hub("ftp://a").unwrap_err().to_string();
        assert!(e.contains("expected https://HOST:PORT"), "{e}");
        assert!(normalize_hub("https://").is_err());
    }

    #[test]
    fn ca_precedence_flag_config_datadir() {
        let fx = Fixture::new();
        fs::create_dir_all(fx.data_dir()).unwrap();
        fs::write(fx.data_dir().join("ca.crt"), "from-data").unwrap();
        let s = resolve(fx.inputs()).unwrap();
        let ca = s.ca.unwrap();
        assert_eq!(ca.pem, b"from-data");
        assert!(ca.source.ends_with("ca.crt"), "{}", ca.source);

        fx.write_config("ca: from-config\n");
        let ca = resolve(fx.inputs()).unwrap().ca.unwrap();
        assert_eq!(ca.pem, b"from-config");
        assert!(ca.source.contains("`ca:`"), "{}", ca.source);

        let flag = fx.dir.path().join("flag.crt");
        fs::write(&flag, "from-flag").unwrap();
        let mut inputs = fx.inputs();
        inputs.ca_flag = Some(flag.clone());
        let ca = resolve(inputs.clone()).unwrap().ca.unwrap();
        assert_eq!(ca.pem, b"from-flag");
        fs::remove_file(&flag).unwrap();
        let e = format!("{:#}", resolve(inputs).unwrap_err());
        assert!(e.contains("--certificate-authority"), "{e}");
    }
}
