//! Variable expansion the way BuildKit's shell lexer does it for the
//! instructions that expand (FROM, COPY/ADD, ENV, ARG, LABEL, EXPOSE, USER,
//! VOLUME, WORKDIR, STOPSIGNAL and their flags): `$VAR`, `${VAR}`,
//! `${VAR:-x}`, `${VAR-x}`, `${VAR:+x}`, `${VAR+x}`, `${VAR:?msg}`,
//! `${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`,
//! `${VAR/pat/repl}`, `${VAR//pat/repl}`;
//! the escape character makes the next character literal, single quotes
//! never expand, double quotes expand and only `\"`, `\$` and `\\` escape.
//!
//! The lexer also splits into words (whitespace outside quotes), which the
//! parser uses to find heredoc markers.

/// Expansion failed: unbalanced quotes, `${…}` syntax, or `${X:?message}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExpandError(pub String);

/// Where variable values come from.
pub trait Vars {
    /// The value of `name`, `None` if it is not set.
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Vars for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// No variables at all.
pub(crate) fn no_vars(_: &str) -> Option<String> {
    None
}

/// Lexer settings; [`Lexer::new`] gives BuildKit's defaults.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    escape: char,
    /// Keep quote characters in the output.
    raw_quotes: bool,
    /// Keep escape characters in the output.
    raw_escapes: bool,
    /// Leave `$X` / `${X…}` as written when X is unset.
    skip_unset: bool,
    /// Treat quotes as ordinary characters (heredoc bodies).
    skip_quotes: bool,
}

impl Lexer {
    /// A lexer with escape character `escape` (`\` or `` ` ``).
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
        }
    }

    /// The lexer BuildKit uses to find heredoc markers in a line.
    pub(crate) fn for_heredoc_markers() -> Self {
        Lexer {
            escape: '\\',
            raw_quotes: true,
            raw_escapes: true,
            skip_unset: true,
            skip_quotes: false,
        }
    }

    /// The lexer for heredoc names (quotes removed or kept, unset kept).
    pub(crate) fn for_heredoc_name(raw_quotes: bool) -> Self {
        Lexer {
            raw_quotes,
            skip_unset: true,
            ..Lexer::new('\\')
        }
    }

    /// The lexer for heredoc bodies that expand: quotes are plain text.
    pub(crate) fn for_heredoc_body() -> Self {
        Lexer {
            skip_quotes: true,
            ..Lexer::new('\\')
        }
    }

    /// Expands `word` into one string (whitespace kept).
    pub fn expand(&self, word: &str, vars: &dyn Vars) -> Result<String, ExpandError> {
        Ok(self.run(word, vars).map_err(ExpandError)?.0)
    }

    /// Expands `word` and splits it into words at unquoted whitespace.
    pub fn words(&self, word: &str, vars: &dyn Vars) -> Result<Vec<String>, ExpandError> {
        Ok(self.run(word, vars).map_err(ExpandError)?.1)
    }

    fn run(&self, word: &str, vars: &dyn Vars) -> Result<(String, Vec<String>), String> {
        let mut sw = ShellWord {
            lex: *self,
            chars: word.chars().collect(),
            pos: 0,
            vars,
        };
        let mut words = Words::default();
        let result = sw.process_stop_on(None, self.raw_escapes, Some(&mut words))?;
        Ok((result, words.finish()))
    }
}

#[derive(Default)]
struct Words {
    words: Vec<String>,
    current: String,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            self.end();
        } else {
            self.current.push(ch);
            self.in_word = true;
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.current.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.current.push_str(s);
        self.in_word = true;
    }
    fn end(&mut self) {
        if self.in_word {
            self.words.push(std::mem::take(&mut self.current));
            self.in_word = false;
        }
    }
    fn finish(mut self) -> Vec<String> {
        self.end();
        self.words
    }
}

struct ShellWord<'a> {
    lex: Lexer,
    chars: Vec<char>,
    pos: usize,
    vars: &'a dyn Vars,
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes until `stop` (consumed) or the end; `raw_escapes` keeps
    /// escape characters (needed inside `${X#pat}` patterns).
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
        mut words: Option<&mut Words>,
    ) -> Result<String, String> {
        let mut result = String::new();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok(result);
            }
            let special = match ch {
                '$' => Some(self.process_dollar()?),
                '<' => Some(self.process_possible_heredoc()),
                '\'' if !self.lex.skip_quotes => Some(self.process_single_quote()?),
                '"' if !self.lex.skip_quotes => Some(self.process_double_quote()?),
                _ => None,
            };
            if let Some(tmp) = special {
                result.push_str(&tmp);
                if let Some(w) = words.as_deref_mut() {
                    if ch == '$' {
                        w.add_string(&tmp);
                    } else {
                        w.add_raw_string(&tmp);
                    }
                }
                continue;
            }
            self.next();
            if ch == self.lex.escape {
                if raw_escapes {
                    result.push(ch);
                    if let Some(w) = words.as_deref_mut() {
                        w.add_raw_char(ch);
                    }
                }
                let Some(escaped) = self.next() else { break };
                if let Some(w) = words.as_deref_mut() {
                    w.add_raw_char(escaped);
                }
                result.push(escaped);
            } else {
                if let Some(w) = words.as_deref_mut() {
                    w.add_char(ch);
                }
                result.push(ch);
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok(result)
    }

    fn process_single_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next().unwrap_or('\'');
        if self.lex.raw_quotes {
            result.push(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next().unwrap_or('"');
        if self.lex.raw_quotes {
            result.push(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    );
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.lex.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut result = String::from("<<");
        while let Some(c) = self.peek().filter(|c| *c == ' ' || *c == '\t') {
            result.push(c);
            self.next();
        }
        result
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && "@*#?-$!0".contains(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn process_dollar(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.vars.get(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut modifier = ch.to_string();
        let mut null_is_unset = false;
        match ch {
            '}' => {
                return Ok(match self.vars.get(&name) {
                    Some(v) => v,
                    None if self.lex.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                });
            }
            '/' => return self.process_replace(&name),
            ':' => {
                null_is_unset = true;
                ch = self.next().ok_or("syntax error: missing '}'")?;
                modifier.push(ch);
            }
            _ => {}
        }
        if !matches!(ch, '+' | '-' | '?' | '#' | '%') {
            return Err(format!(
                "unsupported modifier ({modifier}) in substitution ${{{name}{modifier}…}}"
            ));
        }
        let pattern_mod = ch == '#' || ch == '%';
        if null_is_unset && pattern_mod {
            return Err(format!("unsupported modifier ({modifier}) in substitution"));
        }
        let word = self
            .process_stop_on(Some('}'), pattern_mod, None)
            .map_err(|e| {
                if self.peek().is_none() {
                    "syntax error: missing '}'".to_string()
                } else {
                    e
                }
            })?;
        let value = self.vars.get(&name);
        if self.lex.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let set = value.is_some();
        let value = value.unwrap_or_default();
        let unset = !set || (null_is_unset && value.is_empty());
        Ok(match ch {
            '-' => {
                if unset {
                    word
                } else {
                    value
                }
            }
            '+' => {
                if unset {
                    String::new()
                } else {
                    word
                }
            }
            '?' => {
                if !set {
                    let msg = if word.is_empty() {
                        "is not allowed to be unset"
                    } else {
                        &word
                    };
                    return Err(format!("{name}: {msg}"));
                }
                if null_is_unset && value.is_empty() {
                    let msg = if word.is_empty() {
                        "is not allowed to be empty"
                    } else {
                        &word
                    };
                    return Err(format!("{name}: {msg}"));
                }
                value
            }
            _ => {
                let (greedy, pat) = match word.strip_prefix(ch) {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, word),
                };
                crate::shell_pattern::trim(&value, &pat, ch == '#', greedy)
            }
        })
    }
}

impl ShellWord<'_> {
    /// `${X/pat/repl}` (first match) and `${X//pat/repl}` (all matches);
    /// `*` in the pattern is greedy, as in BuildKit.
    fn process_replace(&mut self, name: &str) -> Result<String, String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let missing = |sw: &Self, e: String, what: &str| {
            if sw.peek().is_none() {
                format!("syntax error: missing '{what}' in ${{}}")
            } else {
                e
            }
        };
        let pattern = self
            .process_stop_on(Some('/'), true, None)
            .map_err(|e| missing(self, e, "/"))?;
        let replacement = self
            .process_stop_on(Some('}'), true, None)
            .map_err(|e| missing(self, e, "}"))?;
        let Some(value) = self.vars.get(name) else {
            if self.lex.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        Ok(crate::shell_pattern::replace(
            &value,
            &pattern,
            &replacement,
            all,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("apple".into()),
            "EMPTY" => Some(String::new()),
            "P" => Some("/usr/local/lib/file.tar.gz".into()),
            "SP" => Some("a b".into()),
            _ => None,
        }
    }

    fn x(word: &str) -> String {
        Lexer::new('\\').expand(word, &env).unwrap()
    }

    fn err(word: &str) -> String {
        Lexer::new('\\').expand(word, &env).unwrap_err().0
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(x("$A"), "apple");
        assert_eq!(x("${A}s"), "apples");
        assert_eq!(x("$As"), "");
        assert_eq!(x("x$UNSET/y"), "x/y");
        assert_eq!(x("a$"), "a$");
        assert_eq!(x("$1x"), "x");
    }

    #[test]
    fn default_and_alternative_modifiers() {
        assert_eq!(x("${UNSET:-d}"), "d");
        assert_eq!(x("${EMPTY:-d}"), "d");
        assert_eq!(x("${EMPTY-d}"), "");
        assert_eq!(x("${UNSET-d}"), "d");
        assert_eq!(x("${A:-d}"), "apple");
        assert_eq!(x("${A:+alt}"), "alt");
        assert_eq!(x("${EMPTY:+alt}"), "");
        assert_eq!(x("${EMPTY+alt}"), "alt");
        assert_eq!(x("${UNSET+alt}"), "");
        assert_eq!(x("${UNSET:-$A}"), "apple");
    }

    #[test]
    fn required_modifier_errors_with_message() {
        assert_eq!(err("${UNSET:?need it}"), "UNSET: need it");
        assert_eq!(err("${UNSET?}"), "UNSET: is not allowed to be unset");
        assert_eq!(err("${EMPTY:?}"), "EMPTY: is not allowed to be empty");
        assert_eq!(x("${EMPTY?}"), "");
        assert_eq!(x("${A:?x}"), "apple");
    }

    #[test]
    fn prefix_and_suffix_trimming() {
        assert_eq!(x("${P#*/}"), "usr/local/lib/file.tar.gz");
        assert_eq!(x("${P##*/}"), "file.tar.gz");
        assert_eq!(x("${P%.*}"), "/usr/local/lib/file.tar");
        assert_eq!(x("${P%%.*}"), "/usr/local/lib/file");
        assert_eq!(x("${A#x}"), "apple");
    }

    #[test]
    fn pattern_replacement() {
        assert_eq!(x("${A/p/P}"), "aPple");
        assert_eq!(x("${A//p/P}"), "aPPle");
        assert_eq!(x("${P/*./X}"), "Xgz");
        assert_eq!(x("${P//l/L}"), "/usr/LocaL/Lib/fiLe.tar.gz");
        assert_eq!(x("${A/zz/y}"), "apple");
        assert_eq!(x("${UNSET/a/b}"), "");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$A'"), "$A");
        assert_eq!(x("\"$A\""), "apple");
        assert_eq!(x("\\$A"), "$A");
        assert_eq!(x("\"\\$A \\x\""), "$A \\x");
        assert_eq!(x("a\\ b"), "a b");
        assert_eq!(Lexer::new('`').expand("`$A \\", &env).unwrap(), "$A \\");
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(err("${A"), "syntax error: missing '}'");
        assert_eq!(err("${}"), "syntax error: bad substitution");
        assert_eq!(err("${A/x}"), "syntax error: missing '/' in ${}");
        assert_eq!(err("${A/x/y"), "syntax error: missing '}' in ${}");
        assert!(err("${A!x}").contains("unsupported modifier (!)"));
        assert!(err("'open").contains("single-quote"));
        assert!(err("\"open").contains("double-quote"));
    }

    #[test]
    fn words_split_outside_quotes_and_after_expansion() {
        let l = Lexer::new('\\');
        assert_eq!(
            l.words("a 'b c' $SP", &env).unwrap(),
            ["a", "b c", "a", "b"]
        );
        let h = Lexer::for_heredoc_markers();
        assert_eq!(
            h.words("cat <<'EOF' > $OUT", &env).unwrap(),
            ["cat", "<<'EOF'", ">", "$OUT"]
        );
        assert_eq!(
            h.words("python3 << EOF", &env).unwrap(),
            ["python3", "<< EOF"]
        );
    }
}
