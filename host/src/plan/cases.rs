//! Tables of plugin test cases (`cases.json`, format in `plugins/README.md`) and running
//! them against a loaded plugin: what `artifact-export plugin test --cases` does.
//!
//! A case's answer goes through the host's own rule ([`super::apply_answer`]: the targets
//! checked against the case's org, then its `onError`), so a case never passes on an answer
//! the host would reject.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Decision, apply_answer};
use crate::config::{OnError, Org};
use crate::event::SourceObject;
use crate::policy::{DecisionError, Limits, Plugin, Usage, Verdict};
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
    /// The org's `destinationBucket` (default: the first proposed target's bucket, or
    /// `<org>-export`).
    #[serde(default)]
    pub destination_bucket: Option<String>,
    /// The org's `allowedBuckets`, besides the buckets of `proposed` (the host proposes only
    /// buckets the org has, so those are always allowed).
    #[serde(default)]
    pub allowed_buckets: Vec<String>,
    /// The org's `onError` for a failed decision (default: fail).
    #[serde(default)]
    pub on_error: CaseOnError,
    /// The expected answer.
    pub expect: Expect,
}

/// `onError` as written in a cases file.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseOnError {
    /// The record fails.
    #[default]
    Fail,
    /// The record is skipped.
    Skip,
    /// Plain suffix matching decides.
    Default,
}

impl From<CaseOnError> for OnError {
    fn from(on_error: CaseOnError) -> OnError {
        match on_error {
            CaseOnError::Fail => OnError::Fail,
            CaseOnError::Skip => OnError::Skip,
            CaseOnError::Default => OnError::Default,
        }
    }
}

impl Case {
    /// The org this case decides for, as the host would hold it: only its buckets matter to
    /// the answer check.
    fn org(&self) -> Org {
        let destination_bucket = self
            .destination_bucket
            .clone()
            .or_else(|| self.proposed.first().map(|t| t.bucket.clone()))
            .unwrap_or_else(|| format!("{}-export", self.org));
        Org {
            org: self.org.clone(),
            destination_bucket,
            prefix: format!("{}/", self.org),
            suffixes: None,
            plugin: None,
            allowed_buckets: self
                .proposed
                .iter()
                .map(|t| t.bucket.clone())
                .chain(self.allowed_buckets.iter().cloned())
                .collect(),
            role: None,
            storage_class: Default::default(),
            encryption: None,
            expected_bucket_owner: None,
            acl: None,
        }
    }

    fn proposed_targets(&self) -> Vec<Target> {
        self.proposed
            .iter()
            .map(|t| Target {
                bucket: t.bucket.clone(),
                key: t.key.clone(),
            })
            .collect()
    }

    /// What the host makes of `answer` for this case's org: [`apply_answer`].
    pub fn host_decision(&self, plugin_name: &str, answer: &Result<Verdict, DecisionError>) -> Decision {
        apply_answer(
            &self.org(),
            self.on_error.into(),
            plugin_name,
            self.proposed_targets(),
            "suffix not selected".into(),
            answer.clone(),
        )
    }
}

/// A target as written in a cases file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
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
    let (answer, usage) = decide_case(plugin, case);
    let host = case.host_decision(plugin.name(), &answer);
    (check(&case.expect, &answer, &host), usage)
}

/// Runs one case into a [`CaseReport`]: the decision, whether it was the expected one, and
/// what it used.
pub fn run_case_report(plugin: &Plugin, case: &Case) -> CaseReport {
    let (answer, usage) = decide_case(plugin, case);
    let host = case.host_decision(plugin.name(), &answer);
    let mismatch = check(&case.expect, &answer, &host).err();
    CaseReport {
        name: case.name.clone(),
        passed: mismatch.is_none(),
        mismatch,
        decision: decision_json(&answer),
        host_decision: describe_decision(&host),
        instructions: usage.instructions,
        peak_memory_bytes: usage.peak_memory_bytes,
        time_ms: usage.elapsed.as_secs_f64() * 1e3,
    }
}

fn decide_case(plugin: &Plugin, case: &Case) -> (Result<Verdict, DecisionError>, Usage) {
    let object = case_object(&case.key, case.size, case.event_time.as_deref());
    let proposed = case.proposed_targets();
    plugin.decide_measured(
        &case.org,
        &object,
        &proposed,
        &settings_text(case.settings.as_ref()),
    )
}

/// `Ok` when `answer` is what `expect` asks for and the host takes it (`host`: what
/// [`apply_answer`] made of it), else the mismatch.
fn check(expect: &Expect, answer: &Result<Verdict, DecisionError>, host: &Decision) -> Result<(), String> {
    if let (Ok(_), Decision::Fail(refused)) = (answer, host) {
        // An answer the host rejects (a bucket the org may not write, too many targets, an
        // empty key) fails the record in production, whatever the case expected.
        return Err(format!(
            "the host rejects this answer ({}): {}",
            refused.code, refused.reason
        ));
    }
    let matches = match (expect, answer) {
        (Expect::Copy(expected), Ok(Verdict::Copy(targets))) => {
            expected.len() == targets.len()
                && expected
                    .iter()
                    .zip(targets)
                    .all(|(e, t)| e.bucket == t.bucket && e.key == t.key)
        }
        (Expect::Skip(text), Ok(Verdict::Skip(reason))) => reason.contains(text.as_str()),
        (Expect::Error(text), Err(DecisionError::Refused(message))) => message.contains(text.as_str()),
        _ => false,
    };
    if matches {
        return Ok(());
    }
    let expected = match expect {
        Expect::Copy(targets) => format!("copy {}", serde_json::to_string(targets).unwrap_or_default()),
        Expect::Skip(text) => format!("skip containing {text:?}"),
        Expect::Error(text) => format!("error containing {text:?}"),
    };
    Err(format!("expected {expected}, got {}", describe(answer)))
}

/// What one case of a cases file did: `plugin test --cases` prints it as text, or with
/// `--json` as part of a [`CasesReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseReport {
    /// The case's `name`.
    pub name: String,
    /// The decision was the expected one.
    pub passed: bool,
    /// What was expected and what came instead, when it did not pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<String>,
    /// The answer, in the form of a case's `expect` (see [`decision_json`]).
    pub decision: Value,
    /// What the host makes of the answer for the case's org (its buckets, its `onError`),
    /// as [`describe_decision`] writes it.
    pub host_decision: String,
    /// Instructions (fuel) used, instantiation included; `None` without metering.
    pub instructions: Option<u64>,
    /// The largest size the instance's linear memory reached, in bytes.
    pub peak_memory_bytes: u64,
    /// Wall-clock time of instantiation and call, in milliseconds.
    pub time_ms: f64,
}

/// `plugin test --cases --json`: every case against the limits in force, and the totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CasesReport {
    /// The limits each decision ran under, named as in the config.
    pub limits: LimitsReport,
    /// One entry per case, in file order.
    pub cases: Vec<CaseReport>,
    /// Cases that passed.
    pub passed: usize,
    /// Cases that did not.
    pub failed: usize,
    /// The most any case used, to compare with `limits` at a glance.
    pub max_used: MaxUsed,
}

/// A plugin's limits as the config names them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitsReport {
    /// `maxInstructions`.
    pub max_instructions: u64,
    /// `maxMemoryMiB`.
    #[serde(rename = "maxMemoryMiB")]
    pub max_memory_mib: u64,
    /// `timeoutMs`.
    pub timeout_ms: u64,
}

/// The largest use of each limit over all cases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MaxUsed {
    /// Most instructions of any case (`None` without metering).
    pub instructions: Option<u64>,
    /// Largest peak memory of any case, in bytes.
    pub peak_memory_bytes: u64,
    /// Longest time of any case, in milliseconds.
    pub time_ms: f64,
}

impl CasesReport {
    /// Totals and maxima of `cases`, run under `limits`.
    pub fn new(limits: &Limits, cases: Vec<CaseReport>) -> CasesReport {
        let passed = cases.iter().filter(|c| c.passed).count();
        let max_used = MaxUsed {
            instructions: cases.iter().filter_map(|c| c.instructions).max(),
            peak_memory_bytes: cases.iter().map(|c| c.peak_memory_bytes).max().unwrap_or(0),
            time_ms: cases.iter().map(|c| c.time_ms).fold(0.0, f64::max),
        };
        CasesReport {
            limits: LimitsReport {
                max_instructions: limits.max_instructions,
                max_memory_mib: limits.max_memory_bytes >> 20,
                timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
            },
            failed: cases.len() - passed,
            passed,
            cases,
            max_used,
        }
    }
}

/// An answer as JSON, in the form of a case's `expect`: `{"copy": [{"bucket", "key"}, …]}`,
/// `{"skip": reason}`, `{"error": message}` (an `err` answer); or `{"failed": why}` when
/// there was no answer (a trap, a limit, the host).
pub fn decision_json(answer: &Result<Verdict, DecisionError>) -> Value {
    match answer {
        Ok(Verdict::Copy(targets)) => serde_json::json!({
            "copy": targets
                .iter()
                .map(|t| serde_json::json!({"bucket": t.bucket, "key": t.key}))
                .collect::<Vec<_>>()
        }),
        Ok(Verdict::Skip(reason)) => serde_json::json!({ "skip": reason }),
        Err(DecisionError::Refused(message)) => serde_json::json!({ "error": message }),
        Err(error) => serde_json::json!({ "failed": error.to_string() }),
    }
}

/// One line of what a decision used against the limits in force, for `plugin test`:
/// `instructions 123456 of 20000000 (0.6%), memory 1.1 of 16.0 MiB (6.9%), time 0.4 of 1000 ms (0.0%)`.
pub fn describe_usage(usage: &Usage, limits: &Limits) -> String {
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

/// A one-line description of what the host decided: `copy [...]`, `skip "reason"` or
/// `fail (Code): reason`.
pub fn describe_decision(decision: &Decision) -> String {
    match decision {
        Decision::Copy(targets) => describe(&Ok(Verdict::Copy(targets.clone()))),
        Decision::Skip(reason) => format!("skip {reason:?}"),
        Decision::Fail(failed) => format!("fail ({}): {}", failed.code, failed.reason),
    }
}

/// A one-line description of a decision, as the CLI prints it.
pub fn describe(answer: &Result<Verdict, DecisionError>) -> String {
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
        let limits = Limits {
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
    fn a_report_totals_the_cases_and_keeps_the_largest_use() {
        let limits = Limits {
            timeout: std::time::Duration::from_millis(1000),
            max_memory_bytes: 16 << 20,
            max_instructions: 1_000_000,
        };
        let case = |name: &str, passed: bool, instructions: u64, memory: u64, time_ms: f64| CaseReport {
            name: name.into(),
            passed,
            mismatch: (!passed).then(|| "expected skip".to_string()),
            decision: decision_json(&Ok(Verdict::Skip("why".into()))),
            host_decision: "skip \"why\"".into(),
            instructions: Some(instructions),
            peak_memory_bytes: memory,
            time_ms,
        };
        let report = CasesReport::new(
            &limits,
            vec![
                case("a", true, 10, 3 << 20, 0.5),
                case("b", false, 7, 5 << 20, 0.25),
            ],
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["limits"],
            serde_json::json!({"maxInstructions": 1_000_000, "maxMemoryMiB": 16, "timeoutMs": 1000})
        );
        assert_eq!(
            (json["passed"].as_u64(), json["failed"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(
            json["maxUsed"],
            serde_json::json!({"instructions": 10, "peakMemoryBytes": 5 << 20, "timeMs": 0.5})
        );
        assert_eq!(json["cases"][0]["decision"], serde_json::json!({"skip": "why"}));
        assert!(json["cases"][0].get("mismatch").is_none());
        assert_eq!(json["cases"][1]["mismatch"], "expected skip");
    }

    #[test]
    fn decisions_are_written_like_expectations() {
        let copy = decision_json(&Ok(Verdict::Copy(vec![Target {
            bucket: "b".into(),
            key: "k".into(),
        }])));
        assert_eq!(copy, serde_json::json!({"copy": [{"bucket": "b", "key": "k"}]}));
        let refused = decision_json(&Err(super::DecisionError::Refused("bad settings".into())));
        assert_eq!(refused, serde_json::json!({"error": "bad settings"}));
        let trapped = decision_json(&Err(super::DecisionError::OutOfFuel(5)));
        assert_eq!(
            trapped,
            serde_json::json!({"failed": "used up its budget of 5 instructions (maxInstructions)"})
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
