//! What running a cases file reports: per case, and the limits against the largest use
//! (`plugin test` prints it as text or `--json`), and how decisions are written for people.

use serde::Serialize;
use serde_json::Value;

use super::CaseTarget;
use crate::plan::Decision;
use crate::policy::{DecisionError, Limits, Usage, Verdict};

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
    /// The facts of the source's HEAD the plugin was given: only a 0.2 plugin is given any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given: Option<crate::policy::ObjectFacts>,
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
            "copy": targets.iter().map(CaseTarget::of).collect::<Vec<_>>()
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
            let targets: Vec<CaseTarget> = targets.iter().map(CaseTarget::of).collect();
            format!("copy {}", serde_json::to_string(&targets).unwrap_or_default())
        }
        Ok(Verdict::Skip(reason)) => format!("skip {reason:?}"),
        Err(error) => format!("error: {error}"),
    }
}
