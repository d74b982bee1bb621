//! Image references: `name[:tag]`, `name@sha256:...`, or an image id (prefix).

use crate::error::{Error, Result};

/// What a user-supplied reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `name:tag` (tag defaulted to `latest`).
    Tagged(String),
    /// `name@sha256:<hex>` or `sha256:<hex>`: a manifest or config digest.
    Digest(String),
    /// Hex digits that may prefix an image (config) or manifest digest.
    IdPrefix(String),
}

fn valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':')
}

/// Split a reference into name and tag (default `latest`).
pub fn split_tag(r: &str) -> (&str, &str) {
    match r.rfind(':') {
        Some(i) if !r[i + 1..].contains('/') => (&r[..i], &r[i + 1..]),
        _ => (r, "latest"),
    }
}

/// `name[:tag]` → `name:tag`, checking the characters.
pub fn normalize_tag(r: &str) -> Result<String> {
    let bad = || Error::InvalidReference(r.to_string());
    if r.is_empty() || r.len() > 255 || !r.chars().all(valid_name_char) {
        return Err(bad());
    }
    let (name, tag) = split_tag(r);
    if name.is_empty()
        || tag.is_empty()
        || tag.len() > 128
        || tag.contains('/')
        || name.starts_with('/')
        || name.ends_with('/')
        || name.contains("//")
    {
        return Err(bad());
    }
    Ok(format!("{name}:{tag}"))
}

/// Parse what the user typed.
pub fn parse(r: &str) -> Result<Reference> {
    if let Some((_, d)) = r.split_once('@') {
        return Ok(Reference::Digest(d.to_string()));
    }
    if r.starts_with("sha256:") {
        return Ok(Reference::Digest(r.to_string()));
    }
    if r.len() >= 4 && r.len() <= 64 && r.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Ok(Reference::IdPrefix(r.to_string()));
    }
    normalize_tag(r).map(Reference::Tagged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            normalize_tag("busybox").ok().as_deref(),
            Some("busybox:latest")
        );
        assert_eq!(
            normalize_tag("localhost:5000/a/b:1.0").ok().as_deref(),
            Some("localhost:5000/a/b:1.0")
        );
        assert_eq!(
            normalize_tag("localhost:5000/a").ok().as_deref(),
            Some("localhost:5000/a:latest")
        );
        assert!(normalize_tag("bad name").is_err());
        assert!(normalize_tag("x:").is_err());
        assert_eq!(
            parse("abcd1234").ok(),
            Some(Reference::IdPrefix("abcd1234".into()))
        );
        assert!(matches!(parse("a@sha256:00"), Ok(Reference::Digest(_))));
    }
}
