//! Metrics without API calls: CloudWatch Embedded Metric Format (EMF) log lines built from
//! an invocation's [`Report`]. The Lambda runtime loop prints them on stdout; CloudWatch Logs
//! turns each line into metric data points, so publishing costs no request and no latency.
//!
//! Namespace [`NAMESPACE`]. Per invocation, in this order:
//!
//! - the **all-orgs** line without dimensions, counting *every* record, including those no
//!   org owns (skipped because no prefix matched, or failed before an org was known);
//! - one line per failure reason code with the dimension `ReasonCode` (`Failed` only), for
//!   every code that occurred;
//! - per org that had a record (sorted by name): its line with the dimension `Org`, then one
//!   line per reason code of its failures with the dimensions `Org`, `ReasonCode`.
//!
//! Records without an org are counted only in the all-orgs and `ReasonCode` lines, not under
//! a placeholder org: every placeholder (`-`, `none`, …) is also a valid org name. So per-org
//! sums can be lower than the all-orgs value; the difference is the unowned records.
//!
//! Metrics: `Copied`, `Skipped`, `Superseded`, `Failed` (Count), `BytesCopied` (Bytes),
//! `CopyLatency` (Milliseconds, the `ms` of each copied record) and `ExportLag`
//! (Milliseconds, the `lagMs` of each copied record that has one: event time to completion).
//! Where a removal deleted exports: `Deleted` (Count; absent from lines without one).
//! Where a plugin decided (per org, and summed in the all-orgs line): `PluginDecisions`,
//! `PluginTraps`, `PluginTimeouts`, `PluginErrAnswers`, `PluginInvalidAnswers`,
//! `PluginFallbacks` (Count) and `PluginDecisionTime` (Milliseconds). Times are arrays of
//! values, one per record, so percentiles are exact.
//!
//! **Bounded output.** EMF takes at most [`MAX_METRICS`] metrics per directive, at most
//! [`MAX_DIMENSIONS`] dimensions per dimension set, at most [`MAX_VALUES`] values per metric,
//! and a line is one CloudWatch Logs event (at most 256 KB). The output is *split, never
//! capped*: each line carries at most 14 metrics (15 with `Deleted`) and 2 dimensions whatever the number of
//! orgs, because every org and every (org, code) pair gets lines of its own; value arrays go
//! 100 at a time, further values into continuation lines (same dimensions, the time metrics
//! only), so no value is dropped and no count is published twice. The longest line holds
//! three arrays of 100 integers, a few KB. An event touching 300 orgs thus prints a few
//! hundred small lines; the number of lines grows with the orgs and reason codes that
//! occurred (the codes are a closed set, [`ReasonCode`](crate::reason::ReasonCode)),
//! never with a per-line limit broken. The dimension values are org names, which the
//! config limits to 64 ASCII characters (CloudWatch takes 1024), and reason codes.

use std::collections::BTreeMap;

use crate::report::Report;

mod lines;
mod tally;
#[cfg(test)]
mod tests;

pub use lines::count_line;
use lines::{by_code_lines, tally_lines};
use tally::Tally;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "ArtifactExport";

/// The dimension that names the org.
pub const ORG_DIMENSION: &str = "Org";

/// The dimension that names a failure's [`ReasonCode`](crate::reason::ReasonCode).
pub const REASON_CODE_DIMENSION: &str = "ReasonCode";

/// The most values EMF accepts for one metric in one line.
pub const MAX_VALUES: usize = 100;

/// The most metrics EMF accepts in one directive.
pub const MAX_METRICS: usize = 100;

/// The most dimensions EMF (and CloudWatch) accepts in one dimension set.
pub const MAX_DIMENSIONS: usize = 30;

/// The name of the metric counting org documents refused ([`config_rejected_lines`]).
pub const CONFIG_REJECTED: &str = "ConfigRejected";

/// One EMF line per org with refused org documents: `ConfigRejected`, the number of its
/// refusals, by org.
pub fn config_rejected_lines(refusals: &[crate::config::Refusal], timestamp_ms: u64) -> Vec<String> {
    let mut per_org: BTreeMap<&str, u64> = BTreeMap::new();
    for refusal in refusals {
        *per_org.entry(refusal.org.as_str()).or_default() += 1;
    }
    per_org
        .into_iter()
        .map(|(org, count)| count_line(&[(CONFIG_REJECTED, count)], &[(ORG_DIMENSION, org)], timestamp_ms))
        .collect()
}

/// The EMF lines of one invocation, in the order the module documentation gives. Every
/// string is one JSON object without newlines, to be written as its own log line.
/// `timestamp_ms`: milliseconds since the Unix epoch.
pub fn emf_lines(report: &Report, timestamp_ms: u64) -> Vec<String> {
    let mut all = Tally::default();
    let mut per_org: BTreeMap<&str, Tally> = BTreeMap::new();
    for r in &report.records {
        all.add(r);
        if let Some(org) = r.org.as_deref() {
            per_org.entry(org).or_default().add(r);
        }
    }
    let mut lines = tally_lines(&all, &[], timestamp_ms);
    lines.extend(by_code_lines(&all, &[], timestamp_ms));
    for (org, tally) in &per_org {
        let org = [(ORG_DIMENSION, *org)];
        lines.extend(tally_lines(tally, &org, timestamp_ms));
        lines.extend(by_code_lines(tally, &org, timestamp_ms));
    }
    lines
}
