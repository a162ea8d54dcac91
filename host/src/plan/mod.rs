//! The plan for one object: over what routing proposed ([`propose`]: copy-loop check,
//! owning org, suffix), the org's policy: plain suffix matching, or its plugin's answer
//! checked against the org's buckets with `onError` applied. [`plan`] serves the handler,
//! backfill and `plan` alike.
//!
//! Pure but for the plugin call: [`apply_answer`] turns a plugin's answer into a
//! [`Decision`] without any I/O, so every path is unit-tested with a canned answer.

use std::time::Instant;

use crate::config::{OnError, Org};
use crate::event::SourceObject;
use crate::policy::{Answer, Blame, DecisionError, Given, PluginLoad, Verdict, check_targets};
// Re-exported: callers (and tests) that name the plan's plugin record keep one path to it.
pub use crate::policy::{PluginErrorKind, PluginRun};
use crate::reason::ReasonCode;
#[cfg(doc)]
use crate::route::propose;
use crate::route::{Proposal, Target};

mod ahead;
pub mod cases;
mod shadow;

pub use crate::policy::{Shadow, ShadowOutcome};
pub use ahead::PlanAhead;
pub use shadow::{MAX_SHADOW_LINES, same_decision};

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

/// How a plan gets its plugin's answer for `object`.
#[derive(Clone, Copy)]
pub enum Ask<'a> {
    /// Hands this one decision to the blocking pool (backfill, `plan`), given nothing
    /// beyond the event.
    Now(&'a SourceObject),
    /// [`Ask::Now`] for a 0.2 plugin's decision, given the source's HEAD facts and tags
    /// (backfill).
    Given {
        /// The object.
        object: &'a SourceObject,
        /// What the plugin is given beyond the event.
        given: &'a Given,
    },
    /// Takes the answer asked ahead for the invocation's record `index` (the handler), or
    /// asks now if it has none.
    Ahead {
        /// The invocation's decisions, asked ahead.
        ahead: &'a PlanAhead,
        /// The record's index in the invocation.
        index: usize,
        /// The record's object.
        object: &'a SourceObject,
        /// What a 0.2 plugin is given beyond the event (the source's HEAD facts, its tags).
        given: &'a Given,
    },
}

impl<'a> Ask<'a> {
    fn object(&self) -> &'a SourceObject {
        match *self {
            Ask::Now(object) | Ask::Given { object, .. } | Ask::Ahead { object, .. } => object,
        }
    }
}

/// A plan: the org's policy's decision, and how its plugin fared when one was asked.
#[derive(Debug)]
pub struct Planned {
    /// What to do with the object.
    pub decision: Decision,
    /// The plugin's run (time, error, fallback); `None` without a plugin.
    pub run: Option<PluginRun>,
    /// How the org's candidate plugin answered the same question (never acted on); `None`
    /// without a candidate, or when it was not asked (only live events' decisions, asked
    /// ahead in the org's lane, ask it).
    pub shadow: Option<Shadow>,
}

/// The one plan of an object, for the handler, backfill and `plan` alike: the org's policy
/// over what routing proposed ([`propose`]): plain suffix matching, or `plugin`'s answer
/// (the org's plugin as loaded, `None` when it has none) checked against the org's buckets.
pub async fn plan(proposal: Proposal<'_>, plugin: Option<&PluginLoad>, ask: Ask<'_>) -> Planned {
    let Proposal {
        org,
        proposed,
        skip_reason,
    } = proposal;
    match org {
        None => Planned {
            decision: Decision::Skip(skip_reason),
            run: None,
            shadow: None,
        },
        Some(org) => decide(org, plugin, proposed, skip_reason, ask).await,
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
    owner: &Org,
    plugin: Option<&PluginLoad>,
    proposed: Vec<Target>,
    skip_reason: String,
    ask: Ask<'_>,
) -> Planned {
    let Some(spec) = &owner.plugin else {
        return Planned {
            decision: plain(proposed, skip_reason),
            run: None,
            shadow: None,
        };
    };
    let org = &owner.org;
    let not_loaded = |decision| Planned {
        decision,
        run: None,
        shadow: None,
    };
    let plugin = match plugin {
        Some(Ok(plugin)) => plugin,
        // A GET that kept failing, or the engine: tried again by a later invocation.
        Some(Err(error)) if error.is_transient() => {
            return not_loaded(fail_retryable(
                ReasonCode::PluginNotLoaded,
                format!("org {org}: {error}"),
            ));
        }
        Some(Err(error)) => {
            return not_loaded(fail(ReasonCode::PluginNotLoaded, format!("org {org}: {error}")));
        }
        None => {
            let reason = format!("org {org}: plugin {} is not loaded", spec.source);
            return not_loaded(fail(ReasonCode::PluginNotLoaded, reason));
        }
    };
    let (asked_ahead, given) = match ask {
        Ask::Ahead {
            ahead, index, given, ..
        } => (ahead.answer(index, plugin, given).await, given.clone()),
        Ask::Now(_) => (None, Given::default()),
        Ask::Given { given, .. } => (None, given.clone()),
    };
    let (answer, elapsed, candidate_answer, tag_reads) = match asked_ahead {
        Some(Answer {
            result,
            elapsed,
            shadow,
            tag_reads,
        }) => (result, elapsed, shadow, tag_reads),
        None => {
            let started = Instant::now();
            let answer = plugin
                .clone()
                .decide_blocking(
                    org.clone(),
                    ask.object().clone(),
                    proposed.clone(),
                    spec.settings.clone(),
                    given,
                )
                .await;
            // A blocking decision's tag reads are not counted apart (backfill, `plan`).
            (answer, started.elapsed(), None, 0)
        }
    };
    let shadow = shadow::shadow(owner, plugin, &answer, candidate_answer);
    if let (Some(shadow), Ok(verdict), Ask::Ahead { ahead, object, .. }) = (&shadow, &answer, ask) {
        shadow::log_disagreement(ahead.shadow_lines(), org, &object.key, verdict, shadow);
    }
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
    let decision = apply_answer(owner, spec.on_error, plugin.name(), proposed, skip_reason, answer);
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
        tag_reads,
    };
    Planned {
        decision,
        run: Some(run),
        shadow,
    }
}

/// The decision that follows from a plugin's `answer`: its targets once checked against
/// the org's buckets (a violation fails the record whatever `onError` says), its skip, or,
/// when it failed, the org's `onError`: fail, skip, or plain suffix matching over `proposed`.
pub fn apply_answer(
    owner: &Org,
    on_error: OnError,
    plugin_name: &str,
    proposed: Vec<Target>,
    skip_reason: String,
    answer: Result<Verdict, DecisionError>,
) -> Decision {
    let org = &owner.org;
    match answer {
        Ok(Verdict::Copy(targets)) => match check_targets(owner, &targets) {
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
mod tests;
