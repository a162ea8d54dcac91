//! What one EMF line counts: a [`Tally`] of records (all orgs, or one org), outcomes by the
//! report's own rule, times, failures by reason code, and plugin health.

use std::collections::BTreeMap;

use crate::plan::{PluginErrorKind, PluginRun, ShadowOutcome};
use crate::reason::ReasonCode;
use crate::report::{Outcome, RecordReport, Totals};

/// Plugin health of one line: all orgs, or one org.
#[derive(Debug, Default)]
pub(super) struct PluginTally {
    pub(super) decisions: u64,
    pub(super) traps: u64,
    pub(super) timeouts: u64,
    pub(super) err_answers: u64,
    pub(super) invalid_answers: u64,
    pub(super) fallbacks: u64,
    /// `GetObjectTagging` reads made for 0.2 plugins' `tags`.
    pub(super) tag_reads: u64,
    pub(super) decision_ms: Vec<u64>,
    /// Candidate plugins' answers, compared with the plugin's.
    pub(super) shadow_agree: u64,
    pub(super) shadow_disagree: u64,
    pub(super) shadow_failed: u64,
}

impl PluginTally {
    pub(super) fn add(&mut self, run: &PluginRun) {
        self.decisions += 1;
        self.decision_ms.push(run.decision_ms);
        match run.error {
            Some(PluginErrorKind::Trapped) => self.traps += 1,
            Some(PluginErrorKind::TimedOut) => self.timeouts += 1,
            Some(PluginErrorKind::ErrAnswer) => self.err_answers += 1,
            Some(PluginErrorKind::InvalidAnswer) => self.invalid_answers += 1,
            None => {}
        }
        self.fallbacks += u64::from(run.fallback);
        self.tag_reads += u64::from(run.tag_reads);
    }
}

/// The counts of one line: all orgs, or one org.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Counted by the report's own rule ([`Totals::count`]).
    pub(super) totals: Totals,
    pub(super) latencies_ms: Vec<u64>,
    pub(super) lags_ms: Vec<u64>,
    pub(super) failed_by_code: BTreeMap<ReasonCode, u64>,
    pub(super) plugin: PluginTally,
}

impl Tally {
    pub(super) fn add(&mut self, r: &RecordReport) {
        self.totals.count(r);
        match r.outcome {
            Outcome::Copied => {
                self.latencies_ms.push(r.ms);
                self.lags_ms.extend(r.lag_ms);
            }
            Outcome::Failed => {
                *self
                    .failed_by_code
                    .entry(r.reason_code.unwrap_or(ReasonCode::Other))
                    .or_default() += 1;
            }
            Outcome::Skipped | Outcome::Superseded | Outcome::Deleted => {}
        }
        if let Some(run) = &r.plugin {
            self.plugin.add(run);
        }
        if let Some(shadow) = &r.shadow {
            let p = &mut self.plugin;
            match shadow.outcome {
                ShadowOutcome::Agree => p.shadow_agree += 1,
                ShadowOutcome::Disagree => p.shadow_disagree += 1,
                ShadowOutcome::CandidateFailed => p.shadow_failed += 1,
            }
        }
    }
}
