//! What a failed check reports, and how Kubernetes words and joins it:
//! `reason (detail), reason (detail)`, items quoted and joined with `, `,
//! nouns and verbs agreeing with the count.

use std::fmt;

/// One failed check: Kubernetes' short forbidden reason and its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `privileged`, `hostPath volumes`, ...
    pub reason: &'static str,
    /// `container "app" must not set securityContext.privileged=true`.
    pub detail: String,
}

/// The failed checks of one evaluation, in Kubernetes' order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The reasons alone, joined with `, ` (Kubernetes' `ForbiddenReason`).
    pub fn reasons(&self) -> String {
        let reasons: Vec<&str> = self.0.iter().map(|v| v.reason).collect();
        reasons.join(", ")
    }
}

/// `reason (detail), reason (detail)` (Kubernetes' `ForbiddenDetail`).
impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(v.reason)?;
            if !v.detail.is_empty() {
                write!(f, " ({})", v.detail)?;
            }
        }
        Ok(())
    }
}

/// `"a", "b"` (Go's `joinQuote`: plain double quotes, no escaping).
pub fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", inner.join("\", \""))
}

/// `singular` for one, `plural` otherwise.
pub fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 { singular } else { plural }
}

/// `container "a"` / `containers "a", "b"`.
pub fn containers<S: AsRef<str>>(names: &[S]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_as_kubernetes_aggregates() {
        let v = Violations(vec![
            Violation {
                reason: "hostPath volumes",
                detail: "volume \"root\"".into(),
            },
            Violation {
                reason: "privileged",
                detail: containers(&["a", "b"]) + " must not set securityContext.privileged=true",
            },
        ]);
        assert_eq!(
            v.to_string(),
            "hostPath volumes (volume \"root\"), privileged (containers \"a\", \"b\" must not set securityContext.privileged=true)"
        );
        assert_eq!(v.reasons(), "hostPath volumes, privileged");
        assert_eq!(join_quote::<&str>(&[]), "");
        assert_eq!(pluralize("uses", "use", 2), "use");
    }
}
