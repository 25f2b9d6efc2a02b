//! Instruction flags (`--from=build`, `--link`, `--mount=…` repeated): the
//! ones an instruction accepts, their values, and clear errors for the rest.

use crate::Error;

/// How a flag takes values.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagType {
    /// `--name=value`, at most once.
    String,
    /// `--name=value`, any number of times.
    Strings,
    /// `--name` or `--name=true|false`.
    Bool,
}

/// Parsed flags of one instruction.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: Vec<(String, String)>,
}

impl Flags {
    /// Parses `words` (each starting with `--`) against `allowed`.
    pub fn parse(
        instruction: &str,
        words: &[String],
        allowed: &[(&str, FlagType)],
        line: usize,
        original: &str,
    ) -> Result<Flags, Error> {
        let mut flags = Flags::default();
        for word in words {
            let column = original.find(word.as_str()).map_or(1, |c| c + 1);
            let body = &word[2..];
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some((_, ty)) = allowed.iter().find(|(n, _)| *n == name) else {
                let known: Vec<String> = allowed.iter().map(|(n, _)| format!("--{n}")).collect();
                let hint = if known.is_empty() {
                    format!("{instruction} takes no flags")
                } else {
                    format!("{instruction} accepts {}", known.join(", "))
                };
                return Err(Error::syntax(line, format!("unknown flag: --{name}"))
                    .at_column(column)
                    .hint(hint));
            };
            let value = match (ty, value) {
                (FlagType::Bool, None) => "true".to_string(),
                (FlagType::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" | "false" => v.to_ascii_lowercase(),
                    _ => {
                        return Err(Error::syntax(
                            line,
                            format!("expecting boolean value for flag --{name}, not: {v}"),
                        )
                        .at_column(column)
                        .hint(format!("write --{name} or --{name}=false")));
                    }
                },
                (_, None) => {
                    return Err(
                        Error::syntax(line, format!("missing a value on flag: --{name}"))
                            .at_column(column)
                            .hint(format!("write --{name}=VALUE")),
                    );
                }
                (_, Some(v)) => v.to_string(),
            };
            if *ty != FlagType::Strings && flags.values.iter().any(|(n, _)| n == name) {
                return Err(
                    Error::syntax(line, format!("duplicate flag specified: --{name}"))
                        .at_column(column)
                        .hint("give the flag once"),
                );
            }
            flags.values.push((name.to_string(), value));
        }
        Ok(flags)
    }

    /// The value of a single-valued flag.
    pub fn string(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// All values of a repeatable flag, in order.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean flag (false when absent).
    pub fn bool(&self, name: &str) -> bool {
        self.string(name).is_some_and(|v| v == "true")
    }
}
