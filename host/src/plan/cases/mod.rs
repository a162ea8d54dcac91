//! Tables of plugin test cases (`cases.json`, format in `plugins/README.md`) and running
//! them against a loaded plugin: what `artifact-export plugin test --cases` does.
//!
//! A case's answer goes through the host's own rule ([`super::apply_answer`]: the targets
//! checked against the case's org, then its `onError`), so a case never passes on an answer
//! the host would reject.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Decision, apply_answer};
use crate::config::{OnError, Org};
use crate::event::SourceObject;
use crate::policy::{DecisionError, Given, ObjectFacts, Plugin, Usage, Verdict, WitVersion};
use crate::route::{Target, TargetOptions};

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
    /// The facts of the source's HEAD a 0.2 plugin is given (ignored for a 0.1 plugin).
    #[serde(default)]
    pub object: Option<ObjectFacts>,
    /// What the host function `tags` answers a 0.2 plugin: the object's tags; absent, it
    /// answers an error (as on a server without tagging).
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    /// The expected answer.
    pub expect: Expect,
}

/// The facts a case gives a 0.2 plugin for an object of `size` bytes: its `object`, with
/// `contentLength` defaulting to `size` and `storageClass` to `STANDARD`.
pub fn case_facts(facts: Option<&ObjectFacts>, size: Option<u64>) -> ObjectFacts {
    let facts = facts.cloned().unwrap_or_default();
    ObjectFacts {
        content_length: facts.content_length.or(size),
        storage_class: facts.storage_class.or_else(|| Some("STANDARD".into())),
        ..facts
    }
}

/// What a case gives a 0.2 plugin beyond the event: its facts (defaults from its size when
/// it has none) and its tags.
pub fn case_given(
    facts: Option<&ObjectFacts>,
    size: Option<u64>,
    tags: Option<&BTreeMap<String, String>>,
) -> Given {
    let facts = case_facts(facts, size);
    let tags = tags.cloned();
    Given {
        facts: Some(Arc::new(facts)),
        tags: Some(Arc::new(move |_| match &tags {
            Some(tags) => Ok(tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            None => Err("this case gives no tags (add \"tags\": {…} to it)".to_string()),
        })),
    }
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
            deletes: Default::default(),
            object_lock: Default::default(),
        }
    }

    /// The targets plain suffix matching proposed for this case.
    pub fn proposed_targets(&self) -> Vec<Target> {
        self.proposed.iter().map(CaseTarget::to_target).collect()
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
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CaseTarget {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// The target's own storage class (0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Tags the target adds (0.2), compared as a set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl CaseTarget {
    /// `target` as a cases file writes it.
    pub fn of(target: &Target) -> CaseTarget {
        CaseTarget {
            bucket: target.bucket.clone(),
            key: target.key.clone(),
            storage_class: target.options.storage_class.clone(),
            tags: target.options.tags.iter().cloned().collect(),
        }
    }

    /// The target this describes.
    pub fn to_target(&self) -> Target {
        Target {
            options: TargetOptions {
                storage_class: self.storage_class.clone(),
                tags: self.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            },
            ..Target::new(self.bucket.clone(), self.key.clone())
        }
    }
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
        given: given_facts(plugin, case),
    }
}

/// The facts a case gives `plugin`: `None` for a 0.1 plugin, which is given none.
pub fn given_facts(plugin: &Plugin, case: &Case) -> Option<ObjectFacts> {
    (plugin.wit_version() >= WitVersion::V0_2).then(|| case_facts(case.object.as_ref(), case.size))
}

fn decide_case(plugin: &Plugin, case: &Case) -> (Result<Verdict, DecisionError>, Usage) {
    let object = case_object(&case.key, case.size, case.event_time.as_deref());
    let proposed = case.proposed_targets();
    plugin.decide_measured_given(
        &case.org,
        &object,
        &proposed,
        &settings_text(case.settings.as_ref()),
        &case_given(case.object.as_ref(), case.size, case.tags.as_ref()),
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
                && expected.iter().zip(targets).all(|(e, t)| *e == CaseTarget::of(t))
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

mod report;

pub use report::{
    CaseReport, CasesReport, LimitsReport, MaxUsed, decision_json, describe, describe_decision,
    describe_usage,
};

#[cfg(test)]
mod tests;
