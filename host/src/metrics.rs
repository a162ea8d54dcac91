//! Metrics without API calls: CloudWatch Embedded Metric Format (EMF) log lines built from
//! an invocation's [`Report`]. The Lambda runtime loop prints them on stdout; CloudWatch Logs
//! turns each line into metric data points, so publishing costs no request and no latency.
//!
//! Namespace [`NAMESPACE`]. Per invocation:
//!
//! - one **all-orgs** line without dimensions, counting *every* record, including those no
//!   org owns (skipped because no prefix matched, or failed before an org was known);
//! - one line per org that had a record, with the dimension `Org`.
//!
//! Records without an org are counted only in the all-orgs line, not under a placeholder org:
//! every placeholder (`-`, `none`, …) is also a valid org name. So per-org sums can be lower
//! than the all-orgs value; the difference is the unowned records.
//!
//! Metrics: `Copied`, `Skipped`, `Superseded`, `Failed` (Count), `BytesCopied` (Bytes) and
//! `CopyLatency` (Milliseconds, the `ms` of each copied record as an array of values, so
//! percentiles are exact). EMF takes at most [`MAX_VALUES`] values per metric in one line:
//! further latencies go into continuation lines (same dimensions, `CopyLatency` only), so no
//! value is dropped and the counts are never published twice.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::report::{Outcome, Report};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "ArtifactExport";

/// The dimension that names the org.
pub const ORG_DIMENSION: &str = "Org";

/// The most values EMF accepts for one metric in one line.
pub const MAX_VALUES: usize = 100;

/// The counts of one line: all orgs, or one org.
#[derive(Debug, Default)]
struct Tally {
    copied: u64,
    skipped: u64,
    superseded: u64,
    failed: u64,
    bytes_copied: u64,
    latencies_ms: Vec<u64>,
}

impl Tally {
    fn add(&mut self, outcome: Outcome, bytes: Option<u64>, ms: u64) {
        match outcome {
            Outcome::Copied => {
                self.copied += 1;
                self.bytes_copied += bytes.unwrap_or(0);
                self.latencies_ms.push(ms);
            }
            Outcome::Skipped => self.skipped += 1,
            Outcome::Superseded => self.superseded += 1,
            Outcome::Failed => self.failed += 1,
        }
    }
}

/// The EMF lines of one invocation, all-orgs line first, then one per org (sorted by name),
/// each followed by its latency continuation lines if any. Every string is one JSON object
/// without newlines, to be written as its own log line. `timestamp_ms`: milliseconds since
/// the Unix epoch.
pub fn emf_lines(report: &Report, timestamp_ms: u64) -> Vec<String> {
    let mut all = Tally::default();
    let mut per_org: BTreeMap<&str, Tally> = BTreeMap::new();
    for r in &report.records {
        all.add(r.outcome, r.bytes, r.ms);
        if let Some(org) = r.org.as_deref() {
            per_org.entry(org).or_default().add(r.outcome, r.bytes, r.ms);
        }
    }
    let mut lines = tally_lines(&all, None, timestamp_ms);
    for (org, tally) in &per_org {
        lines.extend(tally_lines(tally, Some(org), timestamp_ms));
    }
    lines
}

/// The line with the counts (and the first latencies), then latency-only continuation lines.
fn tally_lines(tally: &Tally, org: Option<&str>, timestamp_ms: u64) -> Vec<String> {
    let mut chunks = tally.latencies_ms.chunks(MAX_VALUES);
    let counts: [(&str, &str, u64); 5] = [
        ("Copied", "Count", tally.copied),
        ("Skipped", "Count", tally.skipped),
        ("Superseded", "Count", tally.superseded),
        ("Failed", "Count", tally.failed),
        ("BytesCopied", "Bytes", tally.bytes_copied),
    ];
    let mut first = Map::new();
    let mut definitions = Vec::new();
    for (name, unit, value) in counts {
        first.insert(name.into(), value.into());
        definitions.push(json!({"Name": name, "Unit": unit}));
    }
    if let Some(chunk) = chunks.next() {
        first.insert("CopyLatency".into(), json!(chunk));
        definitions.push(latency_definition());
    }
    let mut lines = vec![line(first, definitions, org, timestamp_ms)];
    for chunk in chunks {
        let mut members = Map::new();
        members.insert("CopyLatency".into(), json!(chunk));
        lines.push(line(members, vec![latency_definition()], org, timestamp_ms));
    }
    lines
}

fn latency_definition() -> Value {
    json!({"Name": "CopyLatency", "Unit": "Milliseconds"})
}

fn line(
    mut members: Map<String, Value>,
    metrics: Vec<Value>,
    org: Option<&str>,
    timestamp_ms: u64,
) -> String {
    let dimensions = match org {
        Some(org) => {
            members.insert(ORG_DIMENSION.into(), org.into());
            json!([[ORG_DIMENSION]])
        }
        // An empty dimension set: the metrics are published without dimensions.
        None => json!([[]]),
    };
    members.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": metrics,
            }],
        }),
    );
    Value::Object(members).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Trigger;
    use crate::report::RecordReport;

    const T: u64 = 1_764_000_000_000;

    fn record(org: Option<&str>, outcome: Outcome, bytes: Option<u64>, ms: u64) -> RecordReport {
        RecordReport {
            record: "Records[0]".into(),
            source_bucket: Some("shared-source".into()),
            key: Some("k".into()),
            org: org.map(str::to_string),
            outcome,
            destination_bucket: None,
            destination_key: None,
            reason: None,
            error_code: None,
            bytes,
            attempts: 1,
            ms,
            targets: Vec::new(),
            message_id: None,
            task_id: None,
            retryable: false,
        }
    }

    fn parse(lines: &[String]) -> Vec<Value> {
        lines
            .iter()
            .map(|l| {
                assert!(!l.contains('\n'), "one line each: {l}");
                serde_json::from_str(l).expect("each line is a JSON object")
            })
            .collect()
    }

    /// The directive of a line, checked against the EMF specification's rules: one
    /// directive, our namespace, every dimension and metric a member of the root object.
    fn directive(line: &Value) -> &Value {
        assert_eq!(line["_aws"]["Timestamp"], T);
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        let d = &directives[0];
        assert_eq!(d["Namespace"], NAMESPACE);
        for set in d["Dimensions"].as_array().unwrap() {
            for key in set.as_array().unwrap() {
                assert!(
                    line[key.as_str().unwrap()].is_string(),
                    "dimension {key} is a member"
                );
            }
        }
        for m in d["Metrics"].as_array().unwrap() {
            let value = &line[m["Name"].as_str().unwrap()];
            let ok = value.is_u64()
                || value
                    .as_array()
                    .is_some_and(|v| !v.is_empty() && v.len() <= MAX_VALUES && v.iter().all(Value::is_u64));
            assert!(
                ok,
                "metric {} has a number or 1..=100 numbers: {value}",
                m["Name"]
            );
        }
        d
    }

    fn metric_names(line: &Value) -> Vec<String> {
        directive(line)["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| format!("{}/{}", m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
            .collect()
    }

    #[test]
    fn all_orgs_line_then_one_per_org_with_counts_bytes_and_latencies() {
        let report = Report::new(
            Trigger::S3,
            vec![
                record(Some("org2"), Outcome::Copied, Some(100), 12),
                record(Some("org1"), Outcome::Copied, Some(1000), 30),
                record(Some("org1"), Outcome::Skipped, None, 1),
                record(Some("org1"), Outcome::Superseded, None, 5),
                record(Some("org2"), Outcome::Failed, None, 40),
                record(Some("org1"), Outcome::Copied, Some(24), 7),
                record(None, Outcome::Skipped, None, 0),
                record(None, Outcome::Failed, None, 0),
            ],
        );
        let lines = parse(&emf_lines(&report, T));
        assert_eq!(lines.len(), 3);

        let all = &lines[0];
        assert_eq!(directive(all)["Dimensions"], json!([[]]));
        assert!(all.get("Org").is_none());
        assert_eq!(
            metric_names(all),
            [
                "Copied/Count",
                "Skipped/Count",
                "Superseded/Count",
                "Failed/Count",
                "BytesCopied/Bytes",
                "CopyLatency/Milliseconds"
            ]
        );
        assert_eq!(all["Copied"], 3);
        assert_eq!(all["Skipped"], 2, "the unowned record counts here");
        assert_eq!(all["Superseded"], 1);
        assert_eq!(all["Failed"], 2, "the unowned failure counts here");
        assert_eq!(all["BytesCopied"], 1124);
        assert_eq!(all["CopyLatency"], json!([12, 30, 7]));

        let org1 = &lines[1];
        assert_eq!(directive(org1)["Dimensions"], json!([["Org"]]));
        assert_eq!(org1["Org"], "org1");
        assert_eq!(
            (
                &org1["Copied"],
                &org1["Skipped"],
                &org1["Superseded"],
                &org1["Failed"]
            ),
            (&json!(2), &json!(1), &json!(1), &json!(0))
        );
        assert_eq!(org1["BytesCopied"], 1024);
        assert_eq!(org1["CopyLatency"], json!([30, 7]));

        let org2 = &lines[2];
        assert_eq!(org2["Org"], "org2");
        assert_eq!((&org2["Copied"], &org2["Failed"]), (&json!(1), &json!(1)));
        assert_eq!(org2["BytesCopied"], 100);
        assert_eq!(org2["CopyLatency"], json!([12]));
    }

    #[test]
    fn no_copies_means_zero_counts_and_no_latency_metric() {
        let report = Report::new(
            Trigger::Sqs,
            vec![record(Some("org1"), Outcome::Skipped, None, 3)],
        );
        let lines = parse(&emf_lines(&report, T));
        assert_eq!(lines.len(), 2);
        for line in &lines {
            assert!(!metric_names(line).iter().any(|m| m.starts_with("CopyLatency")));
            assert!(line.get("CopyLatency").is_none());
            assert_eq!(line["Copied"], 0);
            assert_eq!(line["BytesCopied"], 0);
            assert_eq!(line["Skipped"], 1);
        }
    }

    #[test]
    fn an_empty_report_still_publishes_zeros() {
        let lines = parse(&emf_lines(&Report::new(Trigger::S3, Vec::new()), T));
        assert_eq!(lines.len(), 1, "only the all-orgs line");
        for name in ["Copied", "Skipped", "Superseded", "Failed", "BytesCopied"] {
            assert_eq!(lines[0][name], 0, "{name}");
        }
        directive(&lines[0]);
    }

    #[test]
    fn more_than_100_latencies_continue_on_latency_only_lines() {
        let records: Vec<RecordReport> = (0..250)
            .map(|i| record(Some("org1"), Outcome::Copied, Some(1), i))
            .collect();
        let lines = parse(&emf_lines(&Report::new(Trigger::S3, records), T));
        // all orgs: 100 + 100 + 50 values; org1: the same.
        assert_eq!(lines.len(), 6);
        for group in [&lines[0..3], &lines[3..6]] {
            assert_eq!(group[0]["Copied"], 250);
            assert_eq!(group[0]["BytesCopied"], 250);
            let mut all: Vec<u64> = Vec::new();
            for (i, line) in group.iter().enumerate() {
                let names = metric_names(line);
                if i > 0 {
                    assert_eq!(
                        names,
                        ["CopyLatency/Milliseconds"],
                        "continuations carry no counts"
                    );
                    assert!(line.get("Copied").is_none());
                }
                assert_eq!(line.get("Org"), group[0].get("Org"), "same dimensions");
                all.extend(
                    line["CopyLatency"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_u64().unwrap()),
                );
            }
            assert_eq!(
                all,
                (0..250).collect::<Vec<u64>>(),
                "no value dropped or repeated"
            );
        }
        assert!(lines[0].get("Org").is_none());
        assert_eq!(lines[3]["Org"], "org1");
    }

    #[test]
    fn org_names_are_escaped_as_json() {
        let report = Report::new(
            Trigger::S3,
            vec![record(Some("a\"b"), Outcome::Copied, Some(1), 2)],
        );
        let lines = parse(&emf_lines(&report, T));
        assert_eq!(lines[1]["Org"], "a\"b");
    }
}
