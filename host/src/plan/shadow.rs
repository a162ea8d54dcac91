//! The shadow of a decision: an org's candidate plugin (`plugin.candidate`) asked the same
//! question as its plugin, in the org's lane right after it, and its answer compared with
//! the plugin's. Nothing here acts on the candidate's answer: the record's decision is the
//! plugin's alone, whatever the candidate did.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::config::Org;
use crate::policy::{
    DecisionError, LoadError, MAX_REASON_BYTES, Plugin, Shadow, ShadowOutcome, Verdict, check_targets,
    truncate,
};

/// At most this many disagreement lines are logged per invocation (the metric counts all).
pub const MAX_SHADOW_LINES: usize = 100;

/// How many disagreement lines an invocation has logged.
#[derive(Debug, Default)]
pub struct ShadowLines(AtomicUsize);

impl ShadowLines {
    /// Whether one more line may be logged (and counts it).
    fn take(&self) -> bool {
        self.0.fetch_add(1, Ordering::Relaxed) < MAX_SHADOW_LINES
    }
}

/// The shadow of a record the org's `plugin` decided with `answer`: `None` when the org
/// has no candidate, when the plugin did not answer with a verdict (nothing to compare), or
/// when the candidate was not asked (`shadow` is `None`: a decision asked outside the lane).
pub fn shadow(
    owner: &Org,
    plugin: &Plugin,
    answer: &Result<Verdict, DecisionError>,
    shadow: Option<Result<Verdict, DecisionError>>,
) -> Option<Shadow> {
    let candidate = plugin.candidate()?;
    let Ok(verdict) = answer else {
        return None;
    };
    let failed = |why: String| {
        Some(Shadow {
            outcome: ShadowOutcome::CandidateFailed,
            candidate: json!({"error": truncate(&why, MAX_REASON_BYTES)}),
        })
    };
    let candidate = match candidate {
        Err(error) => return failed(not_loaded(error)),
        Ok(candidate) => candidate,
    };
    match shadow? {
        Err(error) => failed(format!("plugin {} {error}", candidate.name())),
        Ok(theirs) => {
            if let Verdict::Copy(targets) = &theirs
                && let Err(why) = check_targets(owner, targets)
            {
                return failed(format!("plugin {} answer rejected: {why}", candidate.name()));
            }
            let outcome = if same_decision(verdict, &theirs) {
                ShadowOutcome::Agree
            } else {
                ShadowOutcome::Disagree
            };
            Some(Shadow {
                outcome,
                candidate: decision_json(&theirs),
            })
        }
    }
}

fn not_loaded(error: &LoadError) -> String {
    format!("not loaded: {error}")
}

/// Whether two verdicts decide the same: the same set of (bucket, key) targets, whatever
/// their order; a skip equals a skip with any reason. A WIT 0.2 target's own storage class
/// and tags (as a set) are part of it: a candidate that moves a copy to another class
/// disagrees. The shadow's comparison, and `plugin diff`'s.
pub fn same_decision(a: &Verdict, b: &Verdict) -> bool {
    targets_of(a) == targets_of(b)
}

/// One target as compared: bucket, key, its own class and its added tags.
type Compared<'a> = (&'a str, &'a str, Option<&'a str>, BTreeSet<(&'a str, &'a str)>);

/// A verdict as the set of its targets: a skip is no target.
fn targets_of(verdict: &Verdict) -> BTreeSet<Compared<'_>> {
    match verdict {
        Verdict::Copy(targets) => targets
            .iter()
            .map(|t| {
                (
                    t.bucket.as_str(),
                    t.key.as_str(),
                    t.options.storage_class.as_deref(),
                    t.options
                        .tags
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect(),
                )
            })
            .collect(),
        Verdict::Skip(_) => BTreeSet::new(),
    }
}

/// A verdict as the report shows it: `{"copy": [...]}` or `{"skip": reason}` (cut to 1 KiB).
pub fn decision_json(verdict: &Verdict) -> Value {
    match verdict {
        Verdict::Copy(targets) => {
            json!({"copy": targets.iter().map(super::cases::CaseTarget::of).collect::<Vec<_>>()})
        }
        Verdict::Skip(reason) => json!({"skip": truncate(reason, MAX_REASON_BYTES)}),
    }
}

/// Logs a disagreement (org, key, both decisions cut to 1 KiB each), at most
/// [`MAX_SHADOW_LINES`] per invocation (`lines`).
pub fn log_disagreement(lines: &ShadowLines, org: &str, key: &str, verdict: &Verdict, shadow: &Shadow) {
    if shadow.outcome != ShadowOutcome::Disagree || !lines.take() {
        return;
    }
    let plugin = decision_json(verdict).to_string();
    let candidate = shadow.candidate.to_string();
    tracing::warn!(
        %org,
        %key,
        plugin = truncate(&plugin, MAX_REASON_BYTES),
        candidate = truncate(&candidate, MAX_REASON_BYTES),
        "candidate plugin disagrees with the org's plugin (not acted on)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Target;

    fn copy(targets: &[(&str, &str)]) -> Verdict {
        Verdict::Copy(
            targets
                .iter()
                .map(|(bucket, key)| Target::new(*bucket, *key))
                .collect(),
        )
    }

    #[test]
    fn targets_compare_as_sets_and_any_skip_equals_any_skip() {
        let ab = copy(&[("b1", "k1"), ("b2", "k2")]);
        let ba = copy(&[("b2", "k2"), ("b1", "k1"), ("b2", "k2")]);
        assert_eq!(targets_of(&ab), targets_of(&ba));
        assert_ne!(targets_of(&ab), targets_of(&copy(&[("b1", "k1")])));
        assert_ne!(
            targets_of(&ab),
            targets_of(&copy(&[("b1", "k1"), ("b2", "other")]))
        );
        let one = Verdict::Skip("one reason".into());
        let other = Verdict::Skip("another".into());
        assert_eq!(targets_of(&one), targets_of(&other));
        // A copy to no target is a skip.
        assert_eq!(targets_of(&copy(&[])), targets_of(&one));
        assert_ne!(targets_of(&ab), targets_of(&one));
    }

    #[test]
    fn a_targets_own_class_and_tags_are_part_of_the_decision() {
        let with = |class: Option<&str>, tags: &[(&str, &str)]| {
            Verdict::Copy(vec![Target {
                options: crate::route::TargetOptions {
                    storage_class: class.map(str::to_string),
                    tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                },
                ..Target::new("b", "k")
            }])
        };
        let plain = with(None, &[]);
        assert!(same_decision(&plain, &copy(&[("b", "k")])));
        assert!(!same_decision(&plain, &with(Some("STANDARD_IA"), &[])));
        assert!(!same_decision(
            &with(None, &[("t", "1")]),
            &with(None, &[("t", "2")])
        ));
        assert!(same_decision(
            &with(Some("GLACIER"), &[("a", "1"), ("b", "2")]),
            &with(Some("GLACIER"), &[("b", "2"), ("a", "1")])
        ));
        assert_eq!(
            decision_json(&with(Some("GLACIER"), &[("a", "1")])),
            json!({"copy": [{"bucket": "b", "key": "k", "storageClass": "GLACIER", "tags": {"a": "1"}}]})
        );
    }

    #[test]
    fn decisions_are_cut_to_1_kib_in_the_report() {
        let long = Verdict::Skip("x".repeat(5000));
        let json = decision_json(&long);
        assert_eq!(json["skip"].as_str().unwrap().len(), MAX_REASON_BYTES);
        assert_eq!(
            decision_json(&copy(&[("b", "k")])),
            json!({"copy": [{"bucket": "b", "key": "k"}]})
        );
    }

    #[test]
    fn at_most_100_disagreement_lines_per_invocation() {
        let lines = ShadowLines::default();
        let logged = (0..250).filter(|_| lines.take()).count();
        assert_eq!(logged, MAX_SHADOW_LINES);
    }
}
