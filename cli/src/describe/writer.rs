//! Text laid out like `kubectl describe`: `Key:  value` lines whose values line
//! up within each run of consecutive key/value lines (as Go's tabwriter does).

/// Spaces between the widest key and its value.
const GAP: usize = 2;

#[derive(Debug, Clone)]
enum Line {
    /// `Key:` and a value, aligned with neighbours. An empty key continues the
    /// value of the line above (a second label, say).
    Field {
        indent: usize,
        key: String,
        value: String,
    },
    /// A line printed as is (section titles, tables, YAML).
    Text(String),
}

/// Collects lines, renders them aligned.
#[derive(Debug, Clone, Default)]
pub struct Describer {
    lines: Vec<Line>,
}

impl Describer {
    pub fn new() -> Self {
        Self::default()
    }

    /// `Key:  value` at `indent` (two spaces per level).
    pub fn field(&mut self, indent: usize, key: &str, value: impl Into<String>) {
        let value = value.into();
        let mut parts = value.split('\n');
        let first = parts.next().unwrap_or("").to_string();
        self.lines.push(Line::Field {
            indent,
            key: format!("{key}:"),
            value: first,
        });
        for more in parts {
            self.continuation(more);
        }
    }

    /// A further value for the field above, in the value column.
    pub fn continuation(&mut self, value: &str) {
        self.lines.push(Line::Field {
            indent: 0,
            key: String::new(),
            value: value.to_string(),
        });
    }

    /// `Title:` with nothing after it; the lines that follow are its content.
    pub fn section(&mut self, indent: usize, title: &str) {
        self.text(indent, &format!("{title}:"));
    }

    /// A line as is, indented.
    pub fn text(&mut self, indent: usize, text: &str) {
        self.lines
            .push(Line::Text(format!("{}{text}", "  ".repeat(indent))));
    }

    /// Each line of a block of text (a table, YAML), indented.
    pub fn block(&mut self, indent: usize, text: &str) {
        for l in text.lines() {
            self.text(indent, l);
        }
    }

    /// `Key:  k=v` with one pair per line, or `<none>`.
    pub fn pairs(&mut self, indent: usize, key: &str, pairs: &[(String, String)]) {
        if pairs.is_empty() {
            self.field(indent, key, "<none>");
            return;
        }
        for (i, (k, v)) in pairs.iter().enumerate() {
            let kv = format!("{k}={v}");
            if i == 0 {
                self.field(indent, key, kv);
            } else {
                self.continuation(&kv);
            }
        }
    }

    /// A blank line.
    pub fn blank(&mut self) {
        self.lines.push(Line::Text(String::new()));
    }

    /// The laid-out text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut i = 0;
        while i < self.lines.len() {
            if let Line::Text(t) = &self.lines[i] {
                out.push_str(t.trim_end());
                out.push('\n');
                i += 1;
                continue;
            }
            // A run of fields: align their values.
            let start = i;
            while i < self.lines.len() && matches!(self.lines[i], Line::Field { .. }) {
                i += 1;
            }
            let cell = |l: &Line| match l {
                Line::Field { indent, key, .. } => format!("{}{key}", "  ".repeat(*indent)),
                Line::Text(_) => String::new(),
            };
            let width = self.lines[start..i]
                .iter()
                .map(|l| cell(l).chars().count())
                .max()
                .unwrap_or(0);
            for l in &self.lines[start..i] {
                if let Line::Field { value, .. } = l {
                    let c = cell(l);
                    let line = if value.is_empty() {
                        c
                    } else {
                        let pad = width - c.chars().count() + GAP;
                        format!("{c}{}{value}", " ".repeat(pad))
                    };
                    out.push_str(line.trim_end());
                    out.push('\n');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_runs_of_fields_like_kubectl() {
        let mut d = Describer::new();
        d.field(0, "Name", "web");
        d.field(0, "Namespace", "default");
        d.pairs(
            0,
            "Labels",
            &[("app".into(), "web".into()), ("tier".into(), "fe".into())],
        );
        d.pairs(0, "Annotations", &[]);
        d.section(0, "Containers");
        d.section(1, "web");
        d.field(2, "Image", "nginx");
        d.field(2, "State", "Running");
        d.field(3, "Started", "2026-11-27T22:56:02Z");
        d.field(2, "Restart Count", "0");
        let expected = "\
Name:         web
Namespace:    default
Labels:       app=web
              tier=fe
Annotations:  <none>
Containers:
  web:
    Image:          nginx
    State:          Running
      Started:      2026-11-27T22:56:02Z
    Restart Count:  0
";
        assert_eq!(d.render(), expected);
    }

    #[test]
    fn multi_line_values_and_blocks() {
        let mut d = Describer::new();
        d.field(0, "Command", "sh\n-c");
        d.block(1, "a: 1\nb: 2\n");
        d.blank();
        assert_eq!(d.render(), "Command:  sh\n          -c\n  a: 1\n  b: 2\n\n");
    }
}
