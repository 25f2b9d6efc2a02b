//! Name and label syntax checks (DNS-1123, qualified names), with Kubernetes' rules.
//! Each returns `Err(reason)` for use in field errors.

/// DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
/// Used for namespaces, service names, container and port names.
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 63 {
        return Err(format!(
            "must be no more than 63 characters (is {})",
            s.len()
        ));
    }
    if !is_label_body(s) {
        return Err(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters \
             or '-', and must start and end with an alphanumeric character (e.g. 'my-name')"
                .into(),
        );
    }
    Ok(())
}

/// DNS-1123 subdomain: dot-separated labels, at most 253 characters.
/// Used for most object names (pods, deployments, configmaps, ...).
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 253 {
        return Err(format!(
            "must be no more than 253 characters (is {})",
            s.len()
        ));
    }
    if !s.split('.').all(is_label_body) {
        return Err(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
             characters, '-' or '.', and must start and end with an alphanumeric character \
             (e.g. 'example.com')"
                .into(),
        );
    }
    Ok(())
}

fn is_label_body(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The name part of a qualified name: `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, ≤ 63.
fn qualified_name_part(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("name part must not be empty".into());
    }
    if s.len() > 63 {
        return Err("name part must be no more than 63 characters".into());
    }
    let b = s.as_bytes();
    let ok = b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if !ok {
        return Err(
            "name part must consist of alphanumeric characters, '-', '_' or '.', \
             and must start and end with an alphanumeric character"
                .into(),
        );
    }
    Ok(())
}

/// A label or annotation key: optional DNS subdomain prefix and `/`, then a name part.
pub fn label_key(s: &str) -> Result<(), String> {
    match s.split_once('/') {
        Some((prefix, name)) => {
            dns1123_subdomain(prefix).map_err(|e| format!("prefix part {e}"))?;
            qualified_name_part(name)
        }
        None => qualified_name_part(s),
    }
}

/// A label value: empty, or a name part (≤ 63, alphanumeric at both ends).
pub fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    qualified_name_part(s).map_err(|e| e.replace("name part", "label value"))
}

/// An environment variable name (C identifier-ish, as Kubernetes allows: `[-._a-zA-Z][-._a-zA-Z0-9]*`).
pub fn env_var_name(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(
            "a valid environment variable name must consist of alphabetic characters, \
             digits, '_', '-', or '.', and must not start with a digit"
                .into(),
        )
    }
}

/// A ConfigMap/Secret data key: `[-._a-zA-Z0-9]+`, ≤ 253.
pub fn config_key(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 253 {
        return Err("must be 1 to 253 characters".into());
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Err(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'".into(),
        );
    }
    if s == "." || s == ".." {
        return Err("must not be '.' or '..'".into());
    }
    Ok(())
}

/// An IANA service name (`IANA_SVC_NAME`), as used for container port names and
/// named ports: at most 15 characters, lowercase letters, digits and '-', at least
/// one letter, no '-' at either end and no "--".
pub fn iana_svc_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 15 {
        return Err(format!(
            "must be no more than 15 characters (is {})",
            s.len()
        ));
    }
    let b = s.as_bytes();
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    {
        return Err(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into(),
        );
    }
    if s.contains("--") {
        return Err("must not contain consecutive hyphens".into());
    }
    if !b.iter().any(|c| c.is_ascii_lowercase()) {
        return Err("must contain at least one letter (a-z)".into());
    }
    if b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Err("must not begin or end with a hyphen".into());
    }
    Ok(())
}

/// A relative path without `..` elements (volume item paths, `subPath`).
pub fn relative_path(s: &str) -> Result<(), String> {
    if s.starts_with('/') {
        return Err("must be a relative path".into());
    }
    if s.split('/').any(|part| part == "..") {
        return Err("must not contain '..'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_and_subdomains() {
        assert!(dns1123_label("web-1").is_ok());
        assert!(dns1123_label("Web").is_err());
        assert!(dns1123_label("-web").is_err());
        assert!(dns1123_label("web.x").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1123_subdomain("web.example-1.com").is_ok());
        assert!(dns1123_subdomain("web..com").is_err());
        assert!(dns1123_subdomain("").is_err());
    }

    #[test]
    fn label_keys_and_values() {
        assert!(label_key("app").is_ok());
        assert!(label_key("bramble.dev/role").is_ok());
        assert!(label_key("app.kubernetes.io/name").is_ok());
        assert!(label_key("/x").is_err());
        assert!(label_key("a/b/c").is_err());
        assert!(label_key("bad key").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3").is_ok());
        assert!(label_value("-x").is_err());
        assert!(label_value(&"a".repeat(64)).is_err());
    }

    #[test]
    fn env_and_config_keys() {
        assert!(env_var_name("HTTP_PORT").is_ok());
        assert!(env_var_name("1X").is_err());
        assert!(config_key("app.conf").is_ok());
        assert!(config_key("..").is_err());
        assert!(config_key("a/b").is_err());
    }

    #[test]
    fn iana_service_names_and_relative_paths() {
        assert!(iana_svc_name("http").is_ok());
        assert!(iana_svc_name("web-8080").is_ok());
        assert!(iana_svc_name("8080").is_err());
        assert!(iana_svc_name("HTTP").is_err());
        assert!(iana_svc_name("a--b").is_err());
        assert!(iana_svc_name("-http").is_err());
        assert!(iana_svc_name("a-very-long-port-name").is_err());
        assert!(iana_svc_name("").is_err());
        assert!(relative_path("conf/app.yaml").is_ok());
        assert!(relative_path("/etc/x").is_err());
        assert!(relative_path("a/../b").is_err());
    }
}
