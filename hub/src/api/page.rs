//! `?limit=N&continue=TOKEN`: a list in pages, as `kubectl get` (500 at a
//! time) and informers ask for it. The token names the revision of the first
//! page and the last object sent; the next page holds the objects after it
//! in (namespace, name) order. Unlike Kubernetes, which serves every page
//! from the first page's snapshot, later pages show the store as it is when
//! they are read; each page's `resourceVersion` stays the first page's, so a
//! watch started from it replays every change made meanwhile.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{ApiError, ApiResult};

#[derive(Serialize, Deserialize)]
struct Token {
    /// The revision of the first page.
    rv: u64,
    /// `namespace/name` of the last object sent.
    after: String,
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Value>,
    /// The list's `resourceVersion`: the first page's.
    pub revision: u64,
    /// `metadata.continue`, when more follow.
    pub continue_token: Option<String>,
    /// `metadata.remainingItemCount`, when more follow.
    pub remaining: Option<usize>,
}

fn key(o: &Value) -> String {
    let meta = &o["metadata"];
    format!(
        "{}/{}",
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("")
    )
}

/// The page of `items` (a list at `revision`) that `limit` and `token` ask for.
pub fn paginate(
    mut items: Vec<Value>,
    revision: u64,
    limit: Option<usize>,
    token: Option<&str>,
) -> ApiResult<Page> {
    let mut revision = revision;
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        let parsed: Token = URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "continue token is not valid: pass the metadata.continue of the previous page unchanged",
                )
            })?;
        revision = parsed.rv;
        items.retain(|o| key(o) > parsed.after);
    }
    let limit = limit.filter(|l| *l > 0);
    let Some(limit) = limit.filter(|l| items.len() > *l) else {
        return Ok(Page {
            items,
            revision,
            continue_token: None,
            remaining: None,
        });
    };
    items.sort_by_cached_key(key);
    let remaining = items.len() - limit;
    items.truncate(limit);
    let after = items.last().map(key).unwrap_or_default();
    let token = serde_json::to_vec(&Token {
        rv: revision,
        after,
    })
    .expect("tokens serialize");
    Ok(Page {
        items,
        revision,
        continue_token: Some(URL_SAFE_NO_PAD.encode(token)),
        remaining: Some(remaining),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn objects(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({"metadata": {"namespace": "default", "name": format!("cm-{i:02}")}}))
            .collect()
    }

    #[test]
    fn pages_cover_every_object_once_in_order() {
        let mut seen = Vec::new();
        let mut token = None;
        let mut pages = 0;
        loop {
            let p = paginate(objects(7), 40 + pages, Some(3), token.as_deref()).unwrap();
            assert_eq!(
                p.revision, 40,
                "every page carries the first page's revision"
            );
            seen.extend(p.items.iter().map(key));
            pages += 1;
            match p.continue_token {
                Some(t) => {
                    assert_eq!(p.remaining, Some(7 - seen.len()));
                    token = Some(t);
                }
                None => break,
            }
        }
        assert_eq!(pages, 3);
        let expected: Vec<String> = objects(7).iter().map(key).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn no_limit_is_everything_and_bad_tokens_are_refused() {
        let p = paginate(objects(3), 5, None, None).unwrap();
        assert_eq!(p.items.len(), 3);
        assert!(p.continue_token.is_none());
        assert!(paginate(objects(3), 5, Some(2), Some("not-a-token")).is_err());
    }
}
