//! Tables of plugin test cases (`cases.json`, format in `plugins/README.md`) and running
//! them against a loaded plugin: what `artifact-export plugin test --cases` does.

use serde::Deserialize;
use serde_json::Value;

use super::{Plugin, Usage, Verdict};
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
    run_case_measured(plugin, case).0
}

/// [`run_case`], also reporting what the decision used.
pub fn run_case_measured(plugin: &Plugin, case: &Case) -> (Result<(), String>, Usage) {
    let object = case_object(&case.key, case.size, case.event_time.as_deref());
    let proposed: Vec<Target> = case
        .proposed
        .iter()
        .map(|t| Target {
            bucket: t.bucket.clone(),
            key: t.key.clone(),
        })
        .collect();
    let (answer, usage) = plugin.decide_measured(
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
        return (Ok(()), usage);
    }
    let expected = match &case.expect {
        Expect::Copy(targets) => format!("copy {}", serde_json::to_string(targets).unwrap_or_default()),
        Expect::Skip(text) => format!("skip containing {text:?}"),
        Expect::Error(text) => format!("error containing {text:?}"),
    };
    (Err(format!("expected {expected}, got {got}")), usage)
}

/// One line of what a decision used against the limits in force, for `plugin test`:
/// `instructions 123456 of 20000000 (0.6%), memory 1.1 of 16.0 MiB (6.9%), time 0.4 of 1000 ms (0.0%)`.
pub fn describe_usage(usage: &Usage, limits: &super::Limits) -> String {
    let percent = |used: f64, limit: f64| if limit > 0.0 { used / limit * 100.0 } else { 0.0 };
    let instructions = match usage.instructions {
        Some(used) => format!(
            "instructions {used} of {} ({:.1}%)",
            limits.max_instructions,
            percent(used as f64, limits.max_instructions as f64)
        ),
        None => "instructions not metered".to_string(),
    };
    let mib = |bytes: u64| bytes as f64 / f64::from(1u32 << 20);
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    format!(
        "{instructions}, memory {:.1} of {:.1} MiB ({:.1}%), time {:.1} of {:.0} ms ({:.1}%)",
        mib(usage.peak_memory_bytes),
        mib(limits.max_memory_bytes),
        percent(usage.peak_memory_bytes as f64, limits.max_memory_bytes as f64),
        ms(usage.elapsed),
        ms(limits.timeout),
        percent(ms(usage.elapsed), ms(limits.timeout)),
    )
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
    fn usage_is_shown_against_the_limits() {
        let limits = super::super::Limits {
            timeout: std::time::Duration::from_millis(1000),
            max_memory_bytes: 16 << 20,
            max_instructions: 1_000_000,
        };
        let usage = Usage {
            instructions: Some(250_000),
            peak_memory_bytes: 4 << 20,
            elapsed: std::time::Duration::from_millis(5),
        };
        assert_eq!(
            describe_usage(&usage, &limits),
            "instructions 250000 of 1000000 (25.0%), memory 4.0 of 16.0 MiB (25.0%), time 5.0 of 1000 ms (0.5%)"
        );
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
