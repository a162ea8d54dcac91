//! Tables of plugin test cases (`cases.json`, format in `plugins/README.md`) and running
//! them against a loaded plugin: what `artifact-export plugin test --cases` does.

use serde::Deserialize;
use serde_json::Value;

use super::{Plugin, Verdict};
use crate::event::SourceObject;
use crate::route::Target;

/// One case: an input and the expected decision.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Case {
    /// Shown when the case fails.
    pub name: String,
    /// Passed as `org`.
    pub org: String,
    /// The object key (decoded).
    pub key: String,
    /// Object size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// RFC 3339 event time.
    #[serde(default)]
    pub event_time: Option<String>,
    /// Settings: a JSON string is passed verbatim, anything else serialized.
    #[serde(default)]
    pub settings: Option<Value>,
    /// What plain suffix matching proposes.
    pub proposed: Vec<CaseTarget>,
    /// The expected answer.
    pub expect: Expect,
}

/// A target as written in a cases file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaseTarget {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
}

/// The expected answer of a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Expect {
    /// `ok(copy(targets))`, exactly these, in order.
    Copy(Vec<CaseTarget>),
    /// `ok(skip(reason))` with this text in the reason.
    Skip(String),
    /// `err(message)` with this text in the message.
    Error(String),
}

/// Parses a cases file; the error names the file and position.
pub fn parse_cases(text: &str, origin: &str) -> Result<Vec<Case>, String> {
    serde_json::from_str(text).map_err(|e| {
        format!(
            "cases {origin}: line {} column {}: {e}; expected a list of cases (see plugins/README.md)",
            e.line(),
            e.column()
        )
    })
}

/// The settings string a case hands to the plugin.
pub fn settings_text(settings: Option<&Value>) -> String {
    match settings {
        None => "{}".to_string(),
        Some(Value::String(raw)) => raw.clone(),
        Some(other) => other.to_string(),
    }
}

/// The object a case describes (bucket `source`, no ETag or version).
pub fn case_object(key: &str, size: Option<u64>, event_time: Option<&str>) -> SourceObject {
    SourceObject {
        bucket: "source".into(),
        key: key.to_string(),
        size,
        etag: None,
        version_id: None,
        event_time: event_time.map(str::to_string),
        event_name: "ObjectCreated:Put".into(),
    }
}

/// Runs one case; `Err` describes the mismatch.
pub fn run_case(plugin: &Plugin, case: &Case) -> Result<(), String> {
    let object = case_object(&case.key, case.size, case.event_time.as_deref());
    let proposed: Vec<Target> = case
        .proposed
        .iter()
        .map(|t| Target {
            bucket: t.bucket.clone(),
            key: t.key.clone(),
        })
        .collect();
    let answer = plugin.decide(
        &case.org,
        &object,
        &proposed,
        &settings_text(case.settings.as_ref()),
    );
    let got = describe(&answer);
    let matches = match (&case.expect, &answer) {
        (Expect::Copy(expected), Ok(Verdict::Copy(targets))) => {
            expected.len() == targets.len()
                && expected
                    .iter()
                    .zip(targets)
                    .all(|(e, t)| e.bucket == t.bucket && e.key == t.key)
        }
        (Expect::Skip(text), Ok(Verdict::Skip(reason))) => reason.contains(text.as_str()),
        (Expect::Error(text), Err(super::DecisionError::Refused(message))) => message.contains(text.as_str()),
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        let expected = match &case.expect {
            Expect::Copy(targets) => format!("copy {}", serde_json::to_string(targets).unwrap_or_default()),
            Expect::Skip(text) => format!("skip containing {text:?}"),
            Expect::Error(text) => format!("error containing {text:?}"),
        };
        Err(format!("expected {expected}, got {got}"))
    }
}

/// A one-line description of a decision, as the CLI prints it.
pub fn describe(answer: &Result<Verdict, super::DecisionError>) -> String {
    match answer {
        Ok(Verdict::Copy(targets)) => {
            let targets: Vec<CaseTarget> = targets
                .iter()
                .map(|t| CaseTarget {
                    bucket: t.bucket.clone(),
                    key: t.key.clone(),
                })
                .collect();
            format!("copy {}", serde_json::to_string(&targets).unwrap_or_default())
        }
        Ok(Verdict::Skip(reason)) => format!("skip {reason:?}"),
        Err(error) => format!("error: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_format() {
        let cases = parse_cases(
            r#"[{"name":"a","org":"o","key":"o/k.jpg","size":3,"eventTime":"2026-01-01T00:00:00Z",
                 "settings":{"x":1},"proposed":[{"bucket":"b","key":"o/k.jpg"}],"expect":{"skip":"why"}},
                {"name":"b","org":"o","key":"k","settings":"not json","proposed":[],"expect":{"error":"settings"}}]"#,
            "c.json",
        )
        .unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(settings_text(cases[0].settings.as_ref()), r#"{"x":1}"#);
        assert_eq!(settings_text(cases[1].settings.as_ref()), "not json");
        assert_eq!(settings_text(None), "{}");
    }

    #[test]
    fn bad_files_name_the_position() {
        let err = parse_cases(r#"[{"name":"a"}]"#, "c.json").unwrap_err();
        assert!(err.starts_with("cases c.json: line 1 column"), "{err}");
        let err = parse_cases(
            r#"[{"name":"a","org":"o","key":"k","proposed":[],"expect":{"maybe":1}}]"#,
            "c.json",
        )
        .unwrap_err();
        assert!(err.contains("unknown variant `maybe`"), "{err}");
    }
}
