//! Validation of names that end up in Vault URLs. Everything is checked before any
//! I/O: a path either is a plain relative path of safe segments or it is refused.

use thiserror::Error;

pub const MAX_PATH_LEN: usize = 512;
pub const MAX_NAME_LEN: usize = 128;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PathError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {0} bytes")]
    TooLong(usize),
    #[error("must be relative (no leading '/')")]
    Absolute,
    #[error("has an empty segment ('//' or a trailing '/')")]
    EmptySegment,
    #[error("has a '.' or '..' segment")]
    DotSegment,
    #[error("contains a control character")]
    Control,
    #[error("contains '%', '\\\\', '?' or '#' (no encoded or query tricks)")]
    Forbidden,
    #[error("contains characters other than letters, digits and . _ - @ + = , :")]
    BadChar,
}

fn check_segment(seg: &str) -> Result<(), PathError> {
    if seg.is_empty() {
        return Err(PathError::EmptySegment);
    }
    if seg == "." || seg == ".." {
        return Err(PathError::DotSegment);
    }
    for c in seg.chars() {
        if c.is_control() {
            return Err(PathError::Control);
        }
        if matches!(c, '%' | '\\' | '?' | '#') {
            return Err(PathError::Forbidden);
        }
        if !(c.is_ascii_alphanumeric()
            || matches!(c, '.' | '_' | '-' | '@' | '+' | '=' | ',' | ':' | ' '))
        {
            return Err(PathError::BadChar);
        }
    }
    Ok(())
}

/// A KV path like `app/db/password`.
pub fn validate_path(p: &str) -> Result<(), PathError> {
    if p.is_empty() {
        return Err(PathError::Empty);
    }
    if p.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong(MAX_PATH_LEN));
    }
    if p.starts_with('/') {
        return Err(PathError::Absolute);
    }
    p.split('/').try_for_each(check_segment)
}

/// A list prefix: empty (the namespace root) or a path, optionally ending in '/'.
pub fn validate_prefix(p: &str) -> Result<(), PathError> {
    match p.strip_suffix('/') {
        _ if p.is_empty() => Ok(()),
        Some(inner) => validate_path(inner),
        None => validate_path(p),
    }
}

/// A single name: transit key, role, etc. No '/' at all.
pub fn validate_name(n: &str) -> Result<(), PathError> {
    if n.is_empty() {
        return Err(PathError::Empty);
    }
    if n.len() > MAX_NAME_LEN {
        return Err(PathError::TooLong(MAX_NAME_LEN));
    }
    if n.contains('/') {
        return Err(PathError::BadChar);
    }
    check_segment(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_paths() {
        for ok in ["a", "app/db/password", "a.b/c-d_e", "x@y"] {
            assert_eq!(validate_path(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_prefix(""), Ok(()));
        assert_eq!(validate_prefix("app/"), Ok(()));
    }

    #[test]
    fn rejects_attacks() {
        let cases = [
            ("", PathError::Empty),
            ("/etc/passwd", PathError::Absolute),
            ("a//b", PathError::EmptySegment),
            ("a/", PathError::EmptySegment),
            ("../agentB/x", PathError::DotSegment),
            ("a/./b", PathError::DotSegment),
            ("a/..", PathError::DotSegment),
            ("%2e%2e/x", PathError::Forbidden),
            ("a\\..\\b", PathError::Forbidden),
            ("a?list=true", PathError::Forbidden),
            ("a#frag", PathError::Forbidden),
            ("a\u{0}b", PathError::Control),
            ("a\nb", PathError::Control),
            ("caf\u{e9}", PathError::BadChar),
        ];
        for (input, want) in cases {
            assert_eq!(validate_path(input), Err(want), "{input:?}");
        }
        assert_eq!(
            validate_path(&"a".repeat(MAX_PATH_LEN + 1)),
            Err(PathError::TooLong(MAX_PATH_LEN))
        );
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("..").is_err());
    }
}
