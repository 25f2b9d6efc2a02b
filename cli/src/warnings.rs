//! The hub's `Warning` response headers (RFC 7234 `299 - "text"`, as the
//! Kubernetes API server sends them, e.g. Pod Security's "would violate"),
//! printed to stderr as kubectl prints them: `Warning: text`.

/// The text of one `Warning` header value, or `None` if it is not a
/// `299` warning.
pub fn text(value: &str) -> Option<String> {
    let rest = value.trim().strip_prefix("299")?.trim_start();
    let rest = rest.strip_prefix('-')?.trim_start();
    let quoted = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

/// Prints every `299` warning of `response` to stderr.
pub fn print<B>(response: &ureq::http::Response<B>) {
    for v in response.headers().get_all("warning") {
        if let Some(t) = v.to_str().ok().and_then(text) {
            eprintln!("Warning: {t}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_warnings_are_unquoted() {
        assert_eq!(
            text(
                r#"299 - "would violate PodSecurity \"restricted:latest\": runAsNonRoot != true""#
            ),
            Some(r#"would violate PodSecurity "restricted:latest": runAsNonRoot != true"#.into())
        );
        assert_eq!(text("199 - \"misc\""), None);
        assert_eq!(text("299 - unquoted"), None);
        assert_eq!(text("299 - \"cut"), None);
    }
}
