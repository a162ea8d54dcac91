//! Reconcile's account: every object a run met, and every destination object no source key
//! matched, counted per org in one class each ([`Tally`] → [`Reconciled`]).
//!
//! The classes are the run's own verdicts ([`ObjectResult`]): `in_place` (every target holds
//! this version, by `in_place::already_copied`), `missing` and `differs` (a target is absent,
//! or holds another version; the object's worse target decides), `pending` (a gap, but the
//! source was written within the grace period, or changed while the run looked at it),
//! `skipped` (not selected by the org's policy), `failed` (could not be checked) and
//! `extra` (a destination object under the org's prefix that no source key matches and no
//! decision named). Extras are counted and listed, never deleted.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::destination_listing::Leftovers;
use super::progress::Progress;
use super::queue::{RepairQueue, Sent};
use super::{BackfillError, BackfillOptions, Gap, ObjectOutcome, ObjectResult, Summary};
use crate::config::Config;
use crate::exporter::Exporter;
use crate::s3::RetryPolicy;

/// Keys kept per class and org, as examples.
pub const MAX_EXAMPLES: usize = 20;

/// Example keys of an org's gaps and extras (at most [`MAX_EXAMPLES`] each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Examples {
    /// Source keys with a missing target.
    pub missing: Vec<String>,
    /// Source keys with a target that holds another version.
    pub differs: Vec<String>,
    /// Destination keys no source object maps to.
    pub extra: Vec<String>,
}

/// One org's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OrgTally {
    /// The org.
    pub org: String,
    /// Source objects whose every target holds them.
    pub in_place: u64,
    /// Source objects with a missing target.
    pub missing: u64,
    /// Source objects with a target that holds another version.
    pub differs: u64,
    /// Source objects with a gap, written within the grace period (or changed meanwhile).
    pub pending: u64,
    /// Source objects the org's policy does not select.
    pub skipped: u64,
    /// Destination objects under the org's prefix no source object maps to.
    pub extra: u64,
    /// Source objects that could not be checked (the reason was printed).
    pub failed: u64,
    /// `--repair`: gaps copied.
    pub repaired: u64,
    /// `--repair`: gaps whose copy failed.
    pub repair_failed: u64,
    /// `--repair`: gaps whose source changed before the copy (its own event exports it).
    pub superseded: u64,
    /// Example keys.
    pub examples: Examples,
}

impl OrgTally {
    /// `org1: 12,345 in place, 3 missing, 1 differs, 2 pending, 40 skipped, 5 extra`, then
    /// what could not be checked and what a repair did, when any.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{}: {} in place, {} missing, {} differs, {} pending, {} skipped, {} extra",
            self.org,
            thousands(self.in_place),
            thousands(self.missing),
            thousands(self.differs),
            thousands(self.pending),
            thousands(self.skipped),
            thousands(self.extra)
        );
        if self.failed > 0 {
            line.push_str(&format!(", {} could not be checked", thousands(self.failed)));
        }
        if self.repaired + self.repair_failed + self.superseded > 0 {
            line.push_str(&format!(
                "; repaired {}, repair failed {}, superseded {}",
                thousands(self.repaired),
                thousands(self.repair_failed),
                thousands(self.superseded)
            ));
        }
        line
    }

    fn add(&mut self, other: &OrgTally) {
        self.in_place += other.in_place;
        self.missing += other.missing;
        self.differs += other.differs;
        self.pending += other.pending;
        self.skipped += other.skipped;
        self.extra += other.extra;
        self.failed += other.failed;
        self.repaired += other.repaired;
        self.repair_failed += other.repair_failed;
        self.superseded += other.superseded;
    }
}

/// The running account of a reconcile.
#[derive(Debug)]
pub struct Tally {
    orgs: BTreeMap<String, OrgTally>,
    /// `(bucket, key)` of every target a decision named under another key than the
    /// source's: a destination object there is not extra.
    rewritten: HashSet<(String, String)>,
}

impl Tally {
    /// An account with a line for each of `wanted` (every org of `config` when empty), also
    /// for an org none of whose objects the run meets.
    pub fn new(config: &Config, wanted: &[String]) -> Self {
        let orgs = config
            .customers
            .iter()
            .filter(|o| wanted.is_empty() || wanted.contains(&o.org))
            .map(|o| {
                let tally = OrgTally {
                    org: o.org.clone(),
                    ..OrgTally::default()
                };
                (o.org.clone(), tally)
            })
            .collect();
        Tally {
            orgs,
            rewritten: HashSet::new(),
        }
    }

    /// Counts one object of the run (an object of no wanted org counts nowhere).
    pub fn add(&mut self, result: &ObjectResult) {
        let Some(tally) = result.org.as_ref().and_then(|org| self.orgs.get_mut(org)) else {
            return;
        };
        let key = &result.listed.object.key;
        for target in result.targets.iter().filter(|t| t.key != *key) {
            self.rewritten.insert((target.bucket.clone(), target.key.clone()));
        }
        let example = |examples: &mut Vec<String>| {
            if examples.len() < MAX_EXAMPLES {
                examples.push(key.clone());
            }
        };
        match result.gap {
            Some(Gap::Missing) => {
                tally.missing += 1;
                example(&mut tally.examples.missing);
            }
            Some(Gap::Differs) => {
                tally.differs += 1;
                example(&mut tally.examples.differs);
            }
            None => {}
        }
        match (&result.outcome, result.gap) {
            (ObjectOutcome::InPlace, _) => tally.in_place += 1,
            (ObjectOutcome::Skipped(_), _) => tally.skipped += 1,
            (ObjectOutcome::Pending, _) | (ObjectOutcome::Superseded(_), None) => tally.pending += 1,
            (ObjectOutcome::Failed(_), None) => tally.failed += 1,
            (ObjectOutcome::Copied { .. }, Some(_)) => tally.repaired += 1,
            (ObjectOutcome::Failed(_), Some(_)) => tally.repair_failed += 1,
            (ObjectOutcome::Superseded(_), Some(_)) => tally.superseded += 1,
            (ObjectOutcome::WouldCopy(_), _) | (ObjectOutcome::Copied { .. }, None) => {}
        }
    }

    /// The account once the run is over: `leftovers`' objects that no decision named are
    /// each org's extras.
    pub fn finish(mut self, config: &Config, leftovers: &Leftovers) -> Reconciled {
        for unmatched in &leftovers.unmatched {
            let Some(org) = config.org_named(&unmatched.org) else {
                continue;
            };
            let named = (org.destination_bucket.clone(), unmatched.key.clone());
            let Some(tally) = self.orgs.get_mut(&org.org) else {
                continue;
            };
            if self.rewritten.contains(&named) {
                continue;
            }
            tally.extra += 1;
            if tally.examples.extra.len() < MAX_EXAMPLES {
                tally.examples.extra.push(unmatched.key.clone());
            }
        }
        let mut extras_unknown: Vec<String> = leftovers
            .unknown
            .iter()
            .filter(|org| self.orgs.contains_key(*org))
            .cloned()
            .collect();
        extras_unknown.dedup();
        Reconciled {
            orgs: self.orgs.into_values().collect(),
            extras_unknown,
        }
    }
}

/// A finished reconcile's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    /// Each org's counts, by org name.
    pub orgs: Vec<OrgTally>,
    /// Orgs whose destination could not be listed: their extras are not known.
    pub extras_unknown: Vec<String>,
}

impl Reconciled {
    /// Whether no org has a `missing` or `differs` object, and every object was checked.
    pub fn complete(&self) -> bool {
        self.orgs
            .iter()
            .all(|o| o.missing == 0 && o.differs == 0 && o.failed == 0)
    }

    /// Whether every gap found was repaired (copied, or superseded by a newer version) and
    /// every object was checked.
    pub fn repaired(&self) -> bool {
        self.orgs.iter().all(|o| {
            o.failed == 0 && o.repair_failed == 0 && o.repaired + o.superseded == o.missing + o.differs
        })
    }

    /// The sum over every org, named `total`.
    pub fn total(&self) -> OrgTally {
        let mut total = OrgTally {
            org: "total".into(),
            ..OrgTally::default()
        };
        for org in &self.orgs {
            total.add(org);
        }
        total
    }

    /// The `--json` document:
    /// `{"complete": bool, "orgs": [{"org", "in_place", "missing", …, "examples"}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "complete": self.complete(),
            "orgs": self.orgs,
            "extras_unknown": self.extras_unknown,
        })
    }
}

/// A finished reconcile run: its account, the run's summary, and what went to the queue.
#[derive(Debug)]
pub struct Reconciliation {
    /// The account.
    pub reconciled: Reconciled,
    /// The run (interrupted, a listing that failed, counts).
    pub summary: Summary,
    /// With a repair queue: what was sent.
    pub sent: Option<Sent>,
}

/// Runs a reconcile (`options` with `ReconcileOptions`) and accounts for it; with
/// `repair_queue`, each gap is sent to that SQS queue as it is found. `on_result` sees every
/// object too (the CLI's manifest and failure lines). The command line and the function's
/// scheduled reconcile both run this.
pub async fn reconcile(
    exporter: &Exporter,
    options: &BackfillOptions,
    repair_queue: Option<&str>,
    progress: Arc<Progress>,
    stop: impl Future<Output = ()>,
    mut on_result: impl FnMut(&ObjectResult),
) -> Result<Reconciliation, BackfillError> {
    let config = exporter.config().await?;
    let queue = match repair_queue {
        Some(url) => {
            let retry = RetryPolicy::new(config.retry, exporter.settings().retry_base_delay);
            Some(RepairQueue::start(
                exporter.client(),
                exporter.credentials().cloned(),
                url,
                retry,
            )?)
        }
        None => None,
    };
    let to_queue = queue.as_ref().map(RepairQueue::sender);
    let tally = Mutex::new(Tally::new(&config, &options.orgs));
    let summary = super::run(exporter, options, progress, stop, |result| {
        tally.lock().unwrap_or_else(|p| p.into_inner()).add(result);
        if let (Some(_), Some(org), Some(to_queue)) = (result.gap, &result.org, &to_queue) {
            // The sending task ends only after the run: the channel is open.
            let _ = to_queue.send((org.clone(), result.listed.object.clone()));
        }
        on_result(result);
    })
    .await?;
    drop(to_queue);
    let sent = match queue {
        Some(queue) => Some(queue.finish().await),
        None => None,
    };
    let reconciled = tally
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .finish(&config, &summary.leftovers);
    Ok(Reconciliation {
        reconciled,
        summary,
        sent,
    })
}

/// `12345` as `12,345` (also `plugin diff`'s counts).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_written_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
        let tally = OrgTally {
            org: "org1".into(),
            in_place: 12_345,
            missing: 3,
            differs: 1,
            pending: 2,
            skipped: 40,
            extra: 5,
            ..OrgTally::default()
        };
        assert_eq!(
            tally.line(),
            "org1: 12,345 in place, 3 missing, 1 differs, 2 pending, 40 skipped, 5 extra"
        );
    }
}
