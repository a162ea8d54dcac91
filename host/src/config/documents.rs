//! The org documents form of the configuration: a folder (`orgs/`) with one JSON document
//! per org, each an object with the fields of one `customers[]` entry, and optionally
//! [`DEFAULTS_DOCUMENT`] with the fields that are global in the single document (`retry`).
//!
//! Each document is parsed on its own, so one org's problems never touch another's; what
//! spans orgs (names, prefixes, buckets) is [`super::admit`]'s job.

use serde_json::Value;

use super::{
    ConfigDir, ConfigError, DEFAULT_RETRY, EntryName, FieldReader, MAX_RETRY, Org, kind, parse_customer,
};

/// The name of the document with the global fields, in the folder of org documents.
pub const DEFAULTS_DOCUMENT: &str = "_defaults.json";

/// The global fields: the single document's top level, less `customers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Extra attempts after the first for retryable S3 errors.
    pub retry: u32,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults { retry: DEFAULT_RETRY }
    }
}

/// `retry`, read from a top-level object (the single document's, or the defaults document).
pub(super) fn read_retry(fields: &mut FieldReader) -> u32 {
    fields.whole_number("retry", u64::from(DEFAULT_RETRY), 0..=u64::from(MAX_RETRY)) as u32
}

/// Parses one org's document; `origin` (its path or `s3://bucket/key`) names it in errors
/// and is where its relative plugin paths start.
pub fn parse_org_document(text: &str, origin: &str) -> Result<Org, ConfigError> {
    let fail = |problems: Vec<String>| ConfigError {
        origin: origin.to_string(),
        problems,
    };
    let value = json(text).map_err(|problem| fail(vec![problem]))?;
    let mut problems = Vec::new();
    match parse_customer(EntryName::Document, &value, &ConfigDir::of(origin), &mut problems) {
        Some(org) if problems.is_empty() => Ok(org),
        _ => Err(fail(problems)),
    }
}

/// Parses the defaults document ([`DEFAULTS_DOCUMENT`]).
pub fn parse_defaults(text: &str, origin: &str) -> Result<Defaults, ConfigError> {
    let fail = |problems: Vec<String>| ConfigError {
        origin: origin.to_string(),
        problems,
    };
    let value = json(text).map_err(|problem| fail(vec![problem]))?;
    let Value::Object(top) = value else {
        return Err(fail(vec![format!(
            "expected a JSON object with the global fields (\"retry\"), got {}",
            kind(&value)
        )]));
    };
    let mut problems = Vec::new();
    let mut fields = FieldReader::new(&top, "", &mut problems);
    let retry = read_retry(&mut fields);
    fields.finish();
    if problems.is_empty() {
        Ok(Defaults { retry })
    } else {
        Err(fail(problems))
    }
}

/// The JSON value of `text`, or the problem naming where it stops being JSON.
pub(super) fn json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("invalid JSON at line {} column {}: {e}", e.line(), e.column()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_org_document_is_one_customers_entry_named_by_its_org() {
        let org = parse_org_document(
            r#"{"org":"org1","destinationBucket":"org1-export","suffixes":["pdf"]}"#,
            "s3://cfg/orgs/org1.json",
        )
        .unwrap();
        assert_eq!((org.org.as_str(), org.prefix.as_str()), ("org1", "org1/"));
        let error = parse_org_document(
            r#"{"org":"org1","destinationBuckt":"x"}"#,
            "s3://cfg/orgs/org1.json",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "config s3://cfg/orgs/org1.json: org org1: unknown field \"destinationBuckt\"; did you mean \"destinationBucket\"?; org org1: destinationBucket is missing"
        );
        assert_eq!(
            parse_org_document("[1]", "orgs/a.json").unwrap_err().to_string(),
            "config orgs/a.json: org document: expected an object with \"org\" and \"destinationBucket\", got a list"
        );
        assert_eq!(
            parse_org_document("{", "orgs/a.json").unwrap_err().to_string(),
            "config orgs/a.json: invalid JSON at line 1 column 1: EOF while parsing an object at line 1 column 1"
        );
    }

    #[test]
    fn the_defaults_document_holds_the_global_fields() {
        assert_eq!(
            parse_defaults(r#"{"retry":3}"#, "d").unwrap(),
            Defaults { retry: 3 }
        );
        assert_eq!(parse_defaults("{}", "d").unwrap(), Defaults::default());
        let error = parse_defaults(r#"{"retry":11,"customers":[]}"#, "orgs/_defaults.json").unwrap_err();
        assert_eq!(error.problems.len(), 2, "{error}");
        assert!(error.problems.iter().any(|p| p.contains("customers")), "{error}");
    }
}
