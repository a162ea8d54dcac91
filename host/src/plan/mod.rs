//! The plan for one object: [`route`] (copy-loop check, owning org, suffix), then the org's
//! policy: plain suffix matching, or its plugin's answer checked against the org's buckets
//! with `onError` applied. [`plan_object`] serves the handler, backfill and `plan` alike.
//!
//! Pure but for the plugin call: [`apply_answer`] turns a plugin's answer into a
//! [`Decision`] without any I/O, so every path is unit-tested with a canned answer.

use std::time::Instant;

use crate::config::{Config, OnError, Org};
use crate::event::SourceObject;
use crate::policy::{Answer, Blame, DecisionError, OrgPlugins, Verdict, check_targets};
// Re-exported: callers (and tests) that name the plan's plugin record keep one path to it.
pub use crate::policy::{PluginErrorKind, PluginRun};
use crate::reason::ReasonCode;
use crate::route::{Route, Target, route};
use crate::suffix::SuffixSet;

mod ahead;
pub mod cases;

pub use ahead::PlanAhead;

/// What the org's policy (plugin, or plain suffix matching) decided for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Copy to these (checked) targets.
    Copy(Vec<Target>),
    /// Nothing to copy, with the reason.
    Skip(String),
    /// The record fails, with the kind of failure and the reason.
    Fail(Failed),
}

/// Why the plan fails a record: a stable [`ReasonCode`] for metrics and the text for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The kind of failure.
    pub code: ReasonCode,
    /// What happened, naming the org and plugin.
    pub reason: String,
    /// The host, not the org's plugin, is at fault (a plugin GET that kept failing, the
    /// engine, the instance pool): a later attempt may well succeed, and `onError` is not
    /// asked.
    pub retryable: bool,
}

/// The decision that fails a record with `code` and `reason`.
fn fail(code: ReasonCode, reason: String) -> Decision {
    Decision::Fail(Failed {
        code,
        reason,
        retryable: false,
    })
}

/// The decision that fails a record for a host-side reason: retryable.
fn fail_retryable(code: ReasonCode, reason: String) -> Decision {
    Decision::Fail(Failed {
        code,
        reason,
        retryable: true,
    })
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Routes `object` and applies its org's policy: the plain decision, or the plugin's
/// answer checked against the org's buckets. Returns the owning org, if any.
pub async fn plan_object<'c>(
    config: &'c Config,
    suffixes: &SuffixSet,
    plugins: &OrgPlugins,
    object: &SourceObject,
) -> (Option<&'c Org>, Decision) {
    let (customer, decision, _) = plan_object_with_run(config, suffixes, plugins, object).await;
    (customer, decision)
}

/// [`plan_object`], also handing back how the org's plugin fared ([`PluginRun`]) when one
/// was asked; the decision is the same.
pub async fn plan_object_with_run<'c>(
    config: &'c Config,
    suffixes: &SuffixSet,
    plugins: &OrgPlugins,
    object: &SourceObject,
) -> (Option<&'c Org>, Decision, Option<PluginRun>) {
    plan_object_asking(config, suffixes, plugins, object, Ask::Now).await
}

/// How a plan gets its plugin's answer.
#[derive(Clone, Copy)]
pub enum Ask<'a> {
    /// Hands this one decision to the blocking pool (backfill, `plan`).
    Now,
    /// Takes the answer asked ahead for the invocation's record `index` (the handler), or
    /// asks now if it has none.
    Ahead(&'a PlanAhead, usize),
}

/// What routing proposes for one object before the org's policy has its say.
pub struct Proposal<'c> {
    /// The owning org, if any.
    pub customer: Option<&'c Org>,
    /// The targets plain suffix matching proposes (none when the suffix is not selected).
    pub proposed: Vec<Target>,
    /// Why plain matching would skip it (empty when it proposes a target).
    pub skip_reason: String,
}

/// Routes `object`: its org, and what plain suffix matching proposes.
pub fn propose<'c>(config: &'c Config, suffixes: &SuffixSet, object: &SourceObject) -> Proposal<'c> {
    match route(config, suffixes, object) {
        Route::Skip { customer, reason } => Proposal {
            customer,
            proposed: Vec::new(),
            skip_reason: reason,
        },
        Route::Copy {
            customer,
            destination_key,
        } => Proposal {
            customer: Some(customer),
            proposed: vec![Target {
                bucket: customer.destination_bucket.clone(),
                key: destination_key,
            }],
            skip_reason: String::new(),
        },
    }
}

/// [`plan_object_with_run`], taking the plugin's answer as `ask` says.
pub async fn plan_object_asking<'c>(
    config: &'c Config,
    suffixes: &SuffixSet,
    plugins: &OrgPlugins,
    object: &SourceObject,
    ask: Ask<'_>,
) -> (Option<&'c Org>, Decision, Option<PluginRun>) {
    plan_proposal(propose(config, suffixes, object), plugins, object, ask).await
}

/// The org's policy over what routing already proposed for `object` (its [`propose`]).
pub async fn plan_proposal<'c>(
    proposal: Proposal<'c>,
    plugins: &OrgPlugins,
    object: &SourceObject,
    ask: Ask<'_>,
) -> (Option<&'c Org>, Decision, Option<PluginRun>) {
    let Proposal {
        customer,
        proposed,
        skip_reason,
    } = proposal;
    match customer {
        None => (None, Decision::Skip(skip_reason), None),
        Some(customer) => {
            let (decision, run) = decide(customer, plugins, object, proposed, skip_reason, ask).await;
            (Some(customer), decision, run)
        }
    }
}

/// Plain suffix matching's decision: copy to `proposed`, or skip with `skip_reason`.
fn plain(proposed: Vec<Target>, skip_reason: String) -> Decision {
    if proposed.is_empty() {
        Decision::Skip(skip_reason)
    } else {
        Decision::Copy(proposed)
    }
}

async fn decide(
    customer: &Org,
    plugins: &OrgPlugins,
    object: &SourceObject,
    proposed: Vec<Target>,
    skip_reason: String,
    ask: Ask<'_>,
) -> (Decision, Option<PluginRun>) {
    let Some(spec) = &customer.plugin else {
        return (plain(proposed, skip_reason), None);
    };
    let org = &customer.org;
    let plugin = match plugins.get(org) {
        Some(Ok(plugin)) => plugin,
        // A GET that kept failing, or the engine: tried again by a later invocation.
        Some(Err(error)) if error.is_transient() => {
            return (
                fail_retryable(ReasonCode::PluginNotLoaded, format!("org {org}: {error}")),
                None,
            );
        }
        Some(Err(error)) => {
            return (
                fail(ReasonCode::PluginNotLoaded, format!("org {org}: {error}")),
                None,
            );
        }
        None => {
            let reason = format!("org {org}: plugin {} is not loaded", spec.source);
            return (fail(ReasonCode::PluginNotLoaded, reason), None);
        }
    };
    let asked_ahead = match ask {
        Ask::Ahead(ahead, index) => ahead.answer(index, org, plugin).await,
        Ask::Now => None,
    };
    let (answer, elapsed) = match asked_ahead {
        Some(Answer { result, elapsed }) => (result, elapsed),
        None => {
            let started = Instant::now();
            let answer = plugin
                .clone()
                .decide_blocking(
                    org.clone(),
                    object.clone(),
                    proposed.clone(),
                    spec.settings.clone(),
                )
                .await;
            (answer, started.elapsed())
        }
    };
    let decision_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let error = match &answer {
        // The instruction budget is the time limit that decides (the same on every machine).
        Err(DecisionError::Timeout(_) | DecisionError::OutOfFuel(_)) => Some(PluginErrorKind::TimedOut),
        Err(DecisionError::Trap(_) | DecisionError::OutOfMemory(_)) => Some(PluginErrorKind::Trapped),
        Err(DecisionError::Refused(_)) => Some(PluginErrorKind::ErrAnswer),
        Err(DecisionError::AnswerTooLarge) => Some(PluginErrorKind::InvalidAnswer),
        // Not the plugin's doing: the host's failure is the record's, not the plugin's health.
        Err(DecisionError::Host(_)) | Ok(_) => None,
    };
    let on_error = customer
        .plugin
        .as_ref()
        .map_or(OnError::Fail, |spec| spec.on_error);
    let decision = apply_answer(customer, on_error, plugin.name(), proposed, skip_reason, answer);
    // An answer that decided to fail was rejected targets; a failed decision that did not
    // fail the record was `onError` (skip or default) stepping in.
    let (error, fallback) = match (error, &decision) {
        (None, Decision::Fail(_)) => (Some(PluginErrorKind::InvalidAnswer), false),
        (Some(kind), Decision::Fail(_)) => (Some(kind), false),
        (Some(kind), _) => (Some(kind), true),
        (None, _) => (None, false),
    };
    let run = PluginRun {
        decision_ms,
        error,
        fallback,
    };
    (decision, Some(run))
}

/// The decision that follows from a plugin's `answer`: its targets once checked against
/// the org's buckets (a violation fails the record whatever `onError` says), its skip, or,
/// when it failed, the org's `onError`: fail, skip, or plain suffix matching over `proposed`.
pub fn apply_answer(
    customer: &Org,
    on_error: OnError,
    plugin_name: &str,
    proposed: Vec<Target>,
    skip_reason: String,
    answer: Result<Verdict, DecisionError>,
) -> Decision {
    let org = &customer.org;
    match answer {
        Ok(Verdict::Copy(targets)) => match check_targets(customer, &targets) {
            Ok(()) if targets.is_empty() => Decision::Skip(format!("plugin {plugin_name} chose no targets")),
            Ok(()) => Decision::Copy(without_repeats(targets)),
            Err(why) => fail(
                ReasonCode::PluginInvalidAnswer,
                format!("org {org}: plugin {plugin_name} answer rejected: {why}"),
            ),
        },
        Ok(Verdict::Skip(reason)) => Decision::Skip(format!("plugin {plugin_name}: {reason}")),
        Err(error) => {
            let code = match error {
                DecisionError::Timeout(_) | DecisionError::OutOfFuel(_) => ReasonCode::PluginTimeout,
                DecisionError::AnswerTooLarge => ReasonCode::PluginInvalidAnswer,
                _ => ReasonCode::PluginError,
            };
            let reason = format!("org {org}: plugin {plugin_name} {error}");
            match error.blame() {
                Blame::Host => return fail_retryable(code, reason),
                Blame::Contract => return fail(code, reason),
                Blame::Plugin => {}
            }
            match on_error {
                OnError::Fail => fail(code, reason),
                OnError::Skip => Decision::Skip(format!("{reason} (onError: skip)")),
                OnError::Default => {
                    tracing::warn!(%org, %reason, "plugin failed; plain suffix matching decides (onError: default)");
                    plain(proposed, skip_reason)
                }
            }
        }
    }
}

/// `targets` with each repeated target left out after its first place: one decision copies
/// an object to one place once, however often the plugin named it.
fn without_repeats(targets: Vec<Target>) -> Vec<Target> {
    let mut unique: Vec<Target> = Vec::with_capacity(targets.len());
    for target in targets {
        if !unique.contains(&target) {
            unique.push(target);
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::policy::{LoadError, MAX_TARGETS};

    const PLUGIN: &str = "p.wasm";

    fn org(on_error: &str) -> Org {
        let text = format!(
            r#"{{"customers":[{{"org":"org1","destinationBucket":"org1-export","allowedBuckets":["org1-archive"],
                "plugin":{{"source":"/plugins/p.wasm","onError":"{on_error}"}}}}]}}"#
        );
        Config::parse(&text, "test.json").unwrap().customers.remove(0)
    }

    fn target(bucket: &str, key: &str) -> Target {
        Target {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    fn proposed() -> Vec<Target> {
        vec![target("org1-export", "org1/a.jpg")]
    }

    fn answer(on_error: &str, proposed: Vec<Target>, answer: Result<Verdict, DecisionError>) -> Decision {
        let org = org(on_error);
        let on_error = org.plugin.as_ref().unwrap().on_error;
        apply_answer(
            &org,
            on_error,
            PLUGIN,
            proposed,
            "suffix not selected".into(),
            answer,
        )
    }

    #[test]
    fn targets_in_the_orgs_buckets_are_copied() {
        let targets = vec![
            target("org1-export", "renamed/a.jpg"),
            target("org1-archive", "a.jpg"),
        ];
        assert_eq!(
            answer("fail", proposed(), Ok(Verdict::Copy(targets.clone()))),
            Decision::Copy(targets)
        );
    }

    #[test]
    fn identical_targets_are_copied_once() {
        let a = target("org1-export", "a.jpg");
        let b = target("org1-archive", "a.jpg");
        let answered = vec![a.clone(), b.clone(), a.clone(), b.clone(), a.clone()];
        assert_eq!(
            answer("fail", proposed(), Ok(Verdict::Copy(answered))),
            Decision::Copy(vec![a, b])
        );
    }

    #[test]
    fn no_targets_is_a_skip() {
        assert_eq!(
            answer("fail", proposed(), Ok(Verdict::Copy(Vec::new()))),
            Decision::Skip("plugin p.wasm chose no targets".into())
        );
    }

    #[test]
    fn a_skip_answer_names_the_plugin() {
        assert_eq!(
            answer("fail", proposed(), Ok(Verdict::Skip("drafts stay home".into()))),
            Decision::Skip("plugin p.wasm: drafts stay home".into())
        );
    }

    #[test]
    fn every_broken_answer_fails_whatever_on_error_says() {
        let too_many = vec![target("org1-export", "k"); MAX_TARGETS + 1];
        let cases = [
            (
                vec![target("org2-export", "org1/a.jpg")],
                "bucket \"org2-export\"",
            ),
            (too_many, "at most 32 are allowed"),
            (vec![target("org1-export", "")], "key is 0 bytes"),
            (
                vec![target("org1-export", &"k".repeat(1025))],
                "key is 1025 bytes",
            ),
        ];
        for on_error in ["fail", "skip", "default"] {
            for (targets, why) in &cases {
                match answer(on_error, proposed(), Ok(Verdict::Copy(targets.clone()))) {
                    Decision::Fail(Failed { code, reason, .. }) => {
                        assert_eq!(code, ReasonCode::PluginInvalidAnswer);
                        assert!(
                            reason.starts_with("org org1: plugin p.wasm answer rejected: ")
                                && reason.contains(why),
                            "{on_error}: {reason}"
                        )
                    }
                    other => panic!("{on_error}, {why}: expected a failure, got {other:?}"),
                }
            }
        }
    }

    fn failures() -> [DecisionError; 4] {
        [
            DecisionError::Timeout(Duration::from_millis(20)),
            DecisionError::OutOfMemory(16 << 20),
            DecisionError::Trap("unreachable".into()),
            DecisionError::Refused("bad settings".into()),
        ]
    }

    #[test]
    fn on_error_fail_fails_the_record() {
        for error in failures() {
            let text = error.to_string();
            let code = match error {
                DecisionError::Timeout(_) => ReasonCode::PluginTimeout,
                _ => ReasonCode::PluginError,
            };
            assert_eq!(
                answer("fail", proposed(), Err(error)),
                Decision::Fail(Failed {
                    code,
                    reason: format!("org org1: plugin p.wasm {text}"),
                    retryable: false,
                })
            );
        }
    }

    #[test]
    fn on_error_skip_skips_it() {
        for error in failures() {
            let text = error.to_string();
            assert_eq!(
                answer("skip", proposed(), Err(error)),
                Decision::Skip(format!("org org1: plugin p.wasm {text} (onError: skip)"))
            );
        }
    }

    #[test]
    fn on_error_default_lets_suffix_matching_decide() {
        for error in failures() {
            assert_eq!(
                answer("default", proposed(), Err(error)),
                Decision::Copy(proposed())
            );
        }
        assert_eq!(
            answer("default", Vec::new(), Err(DecisionError::Trap("x".into()))),
            Decision::Skip("suffix not selected".into())
        );
    }

    #[tokio::test]
    async fn an_org_without_a_loaded_plugin_fails() {
        let config = Config::parse(
            r#"{"customers":[{"org":"org1","destinationBucket":"org1-export","plugin":{"source":"/plugins/p.wasm"}},
                {"org":"org2","destinationBucket":"org2-export"}]}"#,
            "test.json",
        )
        .unwrap();
        let suffixes = SuffixSet::parse_list("jpg").unwrap();
        let object = |key: &str| SourceObject::created("src", key);
        let mut plugins = OrgPlugins::new();
        let (org, decision) = plan_object(&config, &suffixes, &plugins, &object("org1/a.jpg")).await;
        assert_eq!(org.map(|c| c.org.as_str()), Some("org1"));
        assert_eq!(
            decision,
            Decision::Fail(Failed {
                code: ReasonCode::PluginNotLoaded,
                reason: "org org1: plugin /plugins/p.wasm is not loaded".into(),
                retryable: false,
            })
        );
        let failure = LoadError::Invalid {
            plugin: "/plugins/p.wasm".into(),
            reason: "not a component".into(),
        };
        let text = failure.to_string();
        plugins = HashMap::from([("org1".to_string(), Err(failure))]);
        let (_, decision) = plan_object(&config, &suffixes, &plugins, &object("org1/a.jpg")).await;
        assert_eq!(
            decision,
            Decision::Fail(Failed {
                code: ReasonCode::PluginNotLoaded,
                reason: format!("org org1: {text}"),
                retryable: false,
            })
        );
        // The other org has no plugin: plain suffix matching, unaffected.
        let (_, decision) = plan_object(&config, &suffixes, &plugins, &object("org2/b.jpg")).await;
        assert_eq!(
            decision,
            Decision::Copy(vec![target("org2-export", "org2/b.jpg")])
        );
        let (_, decision) = plan_object(&config, &suffixes, &plugins, &object("org2/b.txt")).await;
        assert_eq!(
            decision,
            Decision::Skip("suffix not selected (exported: jpg)".into())
        );
    }
}
