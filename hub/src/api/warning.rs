//! Kubernetes' warnings to clients: `Warning: 299 - "text"` response
//! headers, one per warning (kubectl prints each as `Warning: text`).

use axum::http::HeaderValue;
use axum::http::header::WARNING;
use axum::response::Response;

/// `299 - "text"` with `"` and `\` escaped and control characters
/// replaced by spaces (Kubernetes refuses them in warnings).
pub fn header_value(text: &str) -> Option<HeaderValue> {
    let mut quoted = String::with_capacity(text.len() + 8);
    quoted.push_str("299 - \"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            c if c.is_control() => quoted.push(' '),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    HeaderValue::from_bytes(quoted.as_bytes()).ok()
}

/// `resp` with one `Warning` header per entry of `warnings`.
pub fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        if let Some(v) = header_value(w) {
            resp.headers_mut().append(WARNING, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        let v = header_value("would violate PodSecurity \"restricted:latest\": a\\b\nc").unwrap();
        assert_eq!(
            v.to_str().unwrap(),
            "299 - \"would violate PodSecurity \\\"restricted:latest\\\": a\\\\b c\""
        );
    }
}
