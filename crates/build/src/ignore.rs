//! `.dockerignore` with docker's rules: patterns are anchored at the context root (`*.txt`
//! only matches at the top; `**` spans directories), `*` and `?` don't cross `/`, a leading
//! `/` and `./` are dropped, `!pattern` re-includes, the last matching line wins, and a
//! pattern that matches a directory excludes everything below it.
//!
//! globset gives exactly Go's `filepath.Match` semantics with `literal_separator`; the
//! `ignore` crate would not do: its gitignore rules match unanchored names at any depth.

use globset::{Glob, GlobBuilder, GlobMatcher};

use crate::error::{Error, Result};

/// One parsed `.dockerignore`.
#[derive(Debug, Default)]
pub struct IgnoreRules {
    rules: Vec<(GlobMatcher, bool)>,
}

/// A glob with docker's (Go filepath.Match + `**`) semantics.
pub fn docker_glob(pattern: &str) -> std::result::Result<GlobMatcher, globset::Error> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .empty_alternates(false)
        .build()
        .map(|g: Glob| g.compile_matcher())
}

/// Lexically clean a relative path: drop `.`, empty and leading `/` parts, apply `..`;
/// `None` when `..` would leave the root.
pub fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl IgnoreRules {
    /// Parse the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<IgnoreRules> {
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            // ".." can't leave the root in a pattern either: it just sticks at the top.
            let mut parts: Vec<&str> = Vec::new();
            for c in pat.split('/') {
                match c {
                    "" | "." => {}
                    ".." => {
                        parts.pop();
                    }
                    c => parts.push(c),
                }
            }
            let pat = parts.join("/");
            if pat.is_empty() {
                continue;
            }
            let m = docker_glob(&pat).map_err(|e| Error::Context {
                path: ".dockerignore".into(),
                message: format!("line {}: bad pattern {line:?}: {e}", i + 1),
            })?;
            rules.push((m, exception));
        }
        Ok(IgnoreRules { rules })
    }

    /// Whether any rule re-includes something (then excluded directories must still be
    /// walked).
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(_, e)| *e)
    }

    /// Whether `rel` (a cleaned path relative to the context root) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        if rel.is_empty() {
            return false;
        }
        let mut excluded = false;
        for (m, exception) in &self.rules {
            // The path itself or one of its parents.
            let mut hit = m.is_match(rel);
            if !hit {
                let mut p = rel;
                while let Some((parent, _)) = p.rsplit_once('/') {
                    if m.is_match(parent) {
                        hit = true;
                        break;
                    }
                    p = parent;
                }
            }
            if hit {
                excluded = !exception;
            }
        }
        excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_semantics() {
        let r = IgnoreRules::parse(
            "# comment\n*.log\n/build\nsecret/**\n!secret/keep.txt\ndocs/*/draft\n",
        )
        .expect("parse");
        assert!(r.excluded("a.log"));
        assert!(!r.excluded("sub/a.log"), "* does not cross /");
        assert!(r.excluded("build"));
        assert!(
            r.excluded("build/x/y"),
            "a matched dir excludes its contents"
        );
        assert!(r.excluded("secret/a"));
        assert!(!r.excluded("secret/keep.txt"), "exception wins when later");
        assert!(r.excluded("docs/v1/draft"));
        assert!(!r.excluded("docs/v1/final"));
        assert!(!r.excluded("src/main.rs"));
        let r = IgnoreRules::parse("**/*.tmp\n").expect("parse");
        assert!(r.excluded("a.tmp"));
        assert!(r.excluded("x/y/a.tmp"));
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("/a/./b/"), Some("a/b".into()));
        assert_eq!(clean("a/../b"), Some("b".into()));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("."), Some(String::new()));
    }
}
