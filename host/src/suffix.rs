//! File-suffix selection: which keys are exported, decided by their extension.
//!
//! A suffix matches on a dot boundary and ignores ASCII case, so `jpg` selects
//! `photo.JPG` but not `xjpg`, and a multi-part suffix such as `tar.gz` works.

use std::fmt;

/// A parsed, normalised list of suffixes (lowercase, without the leading dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuffixSet {
    suffixes: Vec<String>,
}

/// Why a suffix list could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SuffixError {
    /// The list holds no suffix at all.
    #[error("expected at least one suffix (e.g. \"jpg,pdf\"), got an empty list")]
    Empty,
    /// One entry is not a usable suffix.
    #[error(
        "suffix {0:?} is not valid: expected letters, digits, '-', '_' or inner dots (e.g. \"jpg\" or \"tar.gz\")"
    )]
    Invalid(String),
}

impl SuffixSet {
    /// Parses a comma-separated list such as `"jpg, .PDF,indd"`.
    pub fn parse_list(list: &str) -> Result<Self, SuffixError> {
        Self::from_items(list.split(','))
    }

    /// Builds a set from individual entries; each may carry a leading dot and any case.
    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, SuffixError> {
        let mut suffixes = Vec::new();
        for raw in items {
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let bare = trimmed.strip_prefix('.').unwrap_or(trimmed);
            let valid = !bare.is_empty()
                && !bare.starts_with('.')
                && !bare.ends_with('.')
                && !bare.contains("..")
                && bare
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                return Err(SuffixError::Invalid(trimmed.to_string()));
            }
            let lower = bare.to_ascii_lowercase();
            if !suffixes.contains(&lower) {
                suffixes.push(lower);
            }
        }
        if suffixes.is_empty() {
            return Err(SuffixError::Empty);
        }
        Ok(Self { suffixes })
    }

    /// Returns the suffix of this set that `key` ends with, if any.
    pub fn matching(&self, key: &str) -> Option<&str> {
        self.suffixes
            .iter()
            .find(|suffix| key_has_suffix(key, suffix))
            .map(String::as_str)
    }

    /// The normalised suffixes, in the order first given.
    pub fn as_slice(&self) -> &[String] {
        &self.suffixes
    }
}

impl fmt::Display for SuffixSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.suffixes.join(","))
    }
}

/// True when `key` ends with `.{suffix}` (ASCII case-insensitive) and has a file name before it.
fn key_has_suffix(key: &str, suffix: &str) -> bool {
    let key = key.as_bytes();
    let suffix = suffix.as_bytes();
    if key.len() < suffix.len() + 2 {
        return false;
    }
    let dot = key.len() - suffix.len() - 1;
    key[dot] == b'.'
        && key[dot + 1..].eq_ignore_ascii_case(suffix)
        // A bare ".jpg" file name, or "dir/.jpg", is a hidden file, not a jpg.
        && key[dot - 1] != b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(list: &str) -> SuffixSet {
        SuffixSet::parse_list(list).unwrap()
    }

    #[test]
    fn parses_mixed_spelling() {
        assert_eq!(set("jpg, .PDF,indd").as_slice(), ["jpg", "pdf", "indd"]);
        assert_eq!(set(" xml ,, xml ").as_slice(), ["xml"]);
    }

    #[test]
    fn rejects_empty_and_invalid() {
        assert_eq!(SuffixSet::parse_list(" , "), Err(SuffixError::Empty));
        assert_eq!(SuffixSet::parse_list(""), Err(SuffixError::Empty));
        assert!(matches!(SuffixSet::parse_list("jpg,p df"), Err(SuffixError::Invalid(s)) if s == "p df"));
        assert!(matches!(SuffixSet::parse_list("."), Err(SuffixError::Invalid(_))));
        assert!(matches!(
            SuffixSet::parse_list("tar..gz"),
            Err(SuffixError::Invalid(_))
        ));
        assert!(matches!(
            SuffixSet::parse_list("*.jpg"),
            Err(SuffixError::Invalid(_))
        ));
    }

    #[test]
    fn matches_on_dot_boundary_ignoring_case() {
        let s = set("jpg,tar.gz");
        assert_eq!(s.matching("org1/a/x.JPG"), Some("jpg"));
        assert_eq!(s.matching("org1/a/x.jpg"), Some("jpg"));
        assert_eq!(s.matching("org1/a/xjpg"), None);
        assert_eq!(s.matching("org1/a/x.jpeg"), None);
        assert_eq!(s.matching("org1/a/x.jpg.tmp"), None);
        assert_eq!(s.matching("org1/backup.tar.gz"), Some("tar.gz"));
        assert_eq!(s.matching("org1/backup.gz"), None);
        assert_eq!(s.matching("org1/.jpg"), None);
        assert_eq!(s.matching(".jpg"), None);
        assert_eq!(s.matching("a.jpg"), Some("jpg"));
    }

    #[test]
    fn non_ascii_keys_do_not_panic() {
        let s = set("pdf");
        assert_eq!(s.matching("org1/é.pdf"), Some("pdf"));
        assert_eq!(s.matching("é"), None);
        assert_eq!(s.matching("ééé.PDF"), Some("pdf"));
    }
}
