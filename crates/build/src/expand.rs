//! Word processing as docker's builder does it (buildkit's `shell.Lex`): split an argument
//! string into words respecting quotes, and expand `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?msg}`, `${VAR?msg}` while removing
//! quotes and escapes. No crate implements these rules (they are neither POSIX sh nor
//! envsubst: no command substitution, no field splitting, docker's own escape character).

use std::collections::BTreeMap;

/// The variables visible to an instruction.
pub type Vars = BTreeMap<String, String>;

/// Split on unquoted whitespace; quotes and escapes stay in the words (buildkit's
/// `parseWords`, used for ENV, LABEL and ARG).
pub fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                word.push(c);
            }
            Some(q) if c == q => {
                quote = None;
                word.push(c);
            }
            _ if c == escape && quote != Some('\'') => {
                word.push(c);
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Remove quotes and escapes without expanding anything.
pub fn unquote(word: &str, escape: char) -> String {
    Lexer::new(word, escape, None)
        .word(None)
        .unwrap_or_else(|_| word.to_string())
}

/// Expand variables in `word` and remove its quotes and escapes.
pub fn process_word(word: &str, vars: &Vars, escape: char) -> Result<String, String> {
    Lexer::new(word, escape, Some(vars)).word(None)
}

/// `K=V K2="v 2"` (or the legacy `K some value`) into expanded pairs, as ENV and LABEL
/// take them. Every value sees the variables as they were before the instruction.
pub fn key_values(raw: &str, vars: &Vars, escape: char) -> Result<Vec<(String, String)>, String> {
    let words = split_words(raw, escape);
    let Some(first) = words.first() else {
        return Err("at least one argument is required".into());
    };
    if !first.contains('=') {
        // Legacy form: one name, the rest of the line is the value.
        let rest = raw.trim_start()[first.len()..].trim();
        if rest.is_empty() {
            return Err(format!(
                "can't find = in {first:?}: must be of the form name=value"
            ));
        }
        return Ok(vec![(
            process_word(first, vars, escape)?,
            process_word(rest, vars, escape)?,
        )]);
    }
    let mut out = Vec::new();
    for w in &words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "syntax error - can't find = in {w:?}: must be of the form name=value"
            ));
        };
        let k = process_word(k, vars, escape)?;
        if k.is_empty() {
            return Err("names can not be blank".into());
        }
        out.push((k, process_word(v, vars, escape)?));
    }
    Ok(out)
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: Option<&'a Vars>,
}

impl<'a> Lexer<'a> {
    fn new(s: &str, escape: char, vars: Option<&'a Vars>) -> Self {
        Lexer {
            chars: s.chars().collect(),
            pos: 0,
            escape,
            vars,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    /// Read until `stop` (unquoted; consumed) or the end.
    fn word(&mut self, stop: Option<char>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.next() {
            if Some(c) == stop {
                return Ok(out);
            }
            match c {
                '\'' => {
                    loop {
                        match self.next() {
                        Some('\'') => break,
                        Some(c) => out.push(c),
                        None => return Err("unexpected end of statement while looking for matching single-quote".into()),
                    }
                    }
                }
                '"' => {
                    loop {
                        match self.next() {
                        Some('"') => break,
                        Some('$') => out.push_str(&self.dollar()?),
                        Some(c) if c == self.escape => match self.peek() {
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                out.push(n);
                                self.pos += 1;
                            }
                            _ => out.push(c),
                        },
                        Some(c) => out.push(c),
                        None => return Err("unexpected end of statement while looking for matching double-quote".into()),
                    }
                    }
                }
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => match self.next() {
                    Some(n) => out.push(n),
                    None => out.push(c),
                },
                c => out.push(c),
            }
        }
        match stop {
            Some(s) => Err(format!("missing '{s}' in substitution")),
            None => Ok(out),
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.vars.and_then(|v| v.get(name).cloned())
    }

    fn dollar(&mut self) -> Result<String, String> {
        if self.vars.is_none() {
            // Quote removal only: keep the reference as written.
            return Ok("$".into());
        }
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err("bad substitution: empty variable name".into());
                }
                match self.next() {
                    Some('}') => Ok(self.lookup(&name).unwrap_or_default()),
                    Some(':') => {
                        let op = self.next().ok_or("missing '}' in substitution")?;
                        let word = self.word(Some('}'))?;
                        let v = self.lookup(&name).filter(|v| !v.is_empty());
                        self.apply(op, &name, v, word)
                    }
                    Some(op @ ('-' | '+' | '?')) => {
                        let word = self.word(Some('}'))?;
                        let v = self.lookup(&name);
                        self.apply(op, &name, v, word)
                    }
                    Some(c) => Err(format!("unsupported modifier ({c}) in substitution")),
                    None => Err("missing '}' in substitution".into()),
                }
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok(self.lookup(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    fn apply(
        &self,
        op: char,
        name: &str,
        v: Option<String>,
        word: String,
    ) -> Result<String, String> {
        match op {
            '-' => Ok(v.unwrap_or(word)),
            '+' => Ok(if v.is_some() { word } else { String::new() }),
            '?' => v.ok_or_else(|| {
                if word.is_empty() {
                    format!("{name}: is not allowed to be unset")
                } else {
                    format!("{name}: {word}")
                }
            }),
            c => Err(format!("unsupported modifier ({c}) in substitution")),
        }
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "1"), ("EMPTY", ""), ("P", "/app")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansion() {
        let v = vars();
        let p = |s: &str| process_word(s, &v, '\\').expect(s);
        assert_eq!(p("$A"), "1");
        assert_eq!(p("${A}x"), "1x");
        assert_eq!(p("${NOPE:-dflt}"), "dflt");
        assert_eq!(p("${EMPTY:-dflt}"), "dflt");
        assert_eq!(p("${EMPTY-dflt}"), "");
        assert_eq!(p("${A:+alt}"), "alt");
        assert_eq!(p("${NOPE:+alt}"), "");
        assert_eq!(p("${NOPE:-${P}/x}"), "/app/x");
        assert_eq!(p("'$A'"), "$A");
        assert_eq!(p("\"$A b\""), "1 b");
        assert_eq!(p("\\$A"), "$A");
        assert_eq!(p("a$"), "a$");
        assert!(process_word("${NOPE:?must be set}", &v, '\\').is_err());
        assert!(process_word("${A", &v, '\\').is_err());
    }

    #[test]
    fn env_forms() {
        let v = vars();
        assert_eq!(
            key_values("X=$A Y=\"a b\" Z=c\\ d", &v, '\\').expect("kv"),
            vec![
                ("X".into(), "1".into()),
                ("Y".into(), "a b".into()),
                ("Z".into(), "c d".into())
            ]
        );
        assert_eq!(
            key_values("X hello  world", &v, '\\').expect("legacy"),
            vec![("X".into(), "hello  world".into())]
        );
        assert!(key_values("X=1 Y", &v, '\\').is_err());
    }
}
