//! Parsing `/v2/...` paths. Repository names contain slashes, so the route is
//! found by its last `/manifests/`, `/blobs/uploads`, `/blobs/` or `/tags/list`.

/// What a `/v2/` path addresses.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/_gc`: Bramble's garbage collection of unreferenced blobs.
    Gc,
    Manifest {
        repo: String,
        reference: String,
    },
    Blob {
        repo: String,
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/` (start) or `.../uploads/<id>`.
    Upload {
        repo: String,
        id: Option<String>,
    },
    Tags {
        repo: String,
    },
}

/// Checks a repository name against the distribution spec's grammar.
pub fn valid_repo(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| {
                    x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'.' | b'_' | b'-')
                })
        })
}

/// Parses a path under `/v2`; `None` when it names nothing.
pub fn parse(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    match rest {
        "_catalog" => return Some(Route::Catalog),
        "_gc" => return Some(Route::Gc),
        _ => {}
    }
    if let Some(repo) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags {
            repo: repo.to_string(),
        });
    }
    if let Some(i) = rest.rfind("/blobs/uploads") {
        let repo = rest[..i].to_string();
        let tail = rest[i + "/blobs/uploads".len()..].trim_start_matches('/');
        return Some(Route::Upload {
            repo,
            id: (!tail.is_empty()).then(|| tail.to_string()),
        });
    }
    if let Some(i) = rest.rfind("/manifests/") {
        return Some(Route::Manifest {
            repo: rest[..i].to_string(),
            reference: rest[i + "/manifests/".len()..].to_string(),
        });
    }
    if let Some(i) = rest.rfind("/blobs/") {
        return Some(Route::Blob {
            repo: rest[..i].to_string(),
            digest: rest[i + "/blobs/".len()..].to_string(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_routes_with_slashed_names() {
        assert_eq!(parse("/v2/"), Some(Route::Base));
        assert_eq!(parse("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(
            parse("/v2/team/web/manifests/1.0"),
            Some(Route::Manifest {
                repo: "team/web".into(),
                reference: "1.0".into()
            })
        );
        assert_eq!(
            parse("/v2/web/blobs/sha256:ab"),
            Some(Route::Blob {
                repo: "web".into(),
                digest: "sha256:ab".into()
            })
        );
        assert_eq!(
            parse("/v2/a/b/blobs/uploads/"),
            Some(Route::Upload {
                repo: "a/b".into(),
                id: None
            })
        );
        assert_eq!(
            parse("/v2/a/blobs/uploads/123"),
            Some(Route::Upload {
                repo: "a".into(),
                id: Some("123".into())
            })
        );
        assert_eq!(
            parse("/v2/x/y/tags/list"),
            Some(Route::Tags { repo: "x/y".into() })
        );
        assert_eq!(parse("/v2/x/nothing"), None);
    }

    #[test]
    fn validates_repository_names() {
        assert!(valid_repo("web"));
        assert!(valid_repo("team/web-app_1.2"));
        assert!(!valid_repo("Web"));
        assert!(!valid_repo("web/"));
        assert!(!valid_repo("-web"));
        assert!(!valid_repo(""));
    }
}
