//! How an org's plugin fared on one object: the record [`plan`](crate::plan) fills in when
//! it asks a plugin, [`report`](crate::report) carries (serde-skipped) and
//! [`metrics`](crate::metrics) counts as plugin health.
//!
//! It lives here, beside the plugins it describes and below every module that uses it, so
//! `plan`, `report` and `metrics` all import it downward: defined in `plan`, the report would
//! reach back into the step that fills it; defined in `report`, `plan` would. It holds plain
//! data only: no plugin, engine or S3 type, and no import from above `policy`.

/// How an org's plugin fared on one object, for the plugin-health metrics. Present only
/// when a plugin was asked (not when it is missing or failed to load: that is the record's
/// `PluginNotLoaded` failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginRun {
    /// Wall time of the decision, in milliseconds: asked now, as the record waited for it
    /// (queueing on the blocking pool included); asked ahead, its own time in the org's lane
    /// (from its instance-pool slot to its answer).
    pub decision_ms: u64,
    /// What went wrong with the decision, if anything.
    pub error: Option<PluginErrorKind>,
    /// The org's `onError` (`skip` or `default`) decided instead of the plugin.
    pub fallback: bool,
    /// `GetObjectTagging` reads the plugin made through `tags` (a 0.2 plugin, asked ahead).
    pub tag_reads: u32,
}

/// The ways a plugin decision goes wrong, as counted per org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginErrorKind {
    /// A trap: panic, `unreachable`, memory limit, a failed instantiation.
    Trapped,
    /// The decision's deadline passed.
    TimedOut,
    /// The plugin answered `err(message)`.
    ErrAnswer,
    /// The plugin answered targets the org may not use (refused whatever `onError` says).
    InvalidAnswer,
}

/// How an org's candidate plugin (`plugin.candidate`) answered the record its plugin
/// decided, compared with the plugin's answer: the report's `shadow`, and the
/// `PluginShadow*` metrics. Never acted on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Shadow {
    /// Whether the two decisions agree.
    pub outcome: ShadowOutcome,
    /// The candidate's decision: `{"copy": [{"bucket", "key"}, …]}`, `{"skip": reason}`, or
    /// `{"error": why}` when it failed; strings cut to 1 KiB.
    pub candidate: serde_json::Value,
}

/// The comparison of a candidate's decision with the plugin's: as sets of (bucket, key)
/// targets, order and repeats aside; a skip (or a copy to no target) equals any skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShadowOutcome {
    /// The same targets, or both skip.
    Agree,
    /// Different targets, or one copies where the other skips.
    Disagree,
    /// The candidate did not load, trapped, ran out of its budget, answered `err`, or
    /// answered what the org may not do.
    CandidateFailed,
}

impl ShadowOutcome {
    /// The outcome as the report spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ShadowOutcome::Agree => "agree",
            ShadowOutcome::Disagree => "disagree",
            ShadowOutcome::CandidateFailed => "candidate_failed",
        }
    }
}
