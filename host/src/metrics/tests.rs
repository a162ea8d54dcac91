use serde_json::{Value, json};

use super::*;
use crate::event::Trigger;
use crate::plan::{PluginErrorKind, PluginRun};
use crate::reason::ReasonCode;
use crate::report::{Outcome, RecordReport};

const T: u64 = 1_764_000_000_000;

fn record(org: Option<&str>, outcome: Outcome, bytes: Option<u64>, ms: u64) -> RecordReport {
    RecordReport {
        record: "Records[0]".into(),
        source_bucket: Some("shared-source".into()),
        key: Some("k".into()),
        org: org.map(str::to_string),
        object: None,
        proposed: None,
        outcome,
        destination_bucket: None,
        destination_key: None,
        reason: None,
        error_code: None,
        reason_code: None,
        bytes,
        attempts: 1,
        checksum: None,
        ms,
        lag_ms: None,
        plugin: None,
        shadow: None,
        targets: Vec::new(),
        message_id: None,
        task_id: None,
        retryable: false,
        change: None,
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
    let sets = d["Dimensions"].as_array().unwrap();
    assert_eq!(sets.len(), 1, "one dimension set per line");
    for set in sets {
        assert!(set.as_array().unwrap().len() <= MAX_DIMENSIONS);
        for key in set.as_array().unwrap() {
            assert!(
                line[key.as_str().unwrap()].is_string(),
                "dimension {key} is a member"
            );
        }
    }
    assert!(d["Metrics"].as_array().unwrap().len() <= MAX_METRICS);
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
    // all orgs, Failed by ReasonCode (Other: no path gave these a code), org1, org2,
    // org2's Failed by ReasonCode.
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[1]["ReasonCode"], "Other");
    assert_eq!(lines[1]["Failed"], 2);
    assert_eq!(lines[4]["ReasonCode"], "Other");
    assert_eq!(
        (&lines[4]["Org"], &lines[4]["Failed"]),
        (&json!("org2"), &json!(1))
    );
    let lines = [lines[0].clone(), lines[2].clone(), lines[3].clone()];

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

fn dims(line: &Value) -> Value {
    directive(line)["Dimensions"].clone()
}

#[test]
fn export_lag_counts_only_copies_that_have_one() {
    let mut with_lag = record(Some("org1"), Outcome::Copied, Some(1), 12);
    with_lag.lag_ms = Some(900);
    let mut other_org = record(Some("org2"), Outcome::Copied, Some(1), 5);
    other_org.lag_ms = Some(40);
    // A Batch Operations task or a record without eventTime: copied, no lag.
    let no_lag = record(Some("org1"), Outcome::Copied, Some(1), 7);
    let lines = parse(&emf_lines(
        &Report::new(Trigger::S3, vec![with_lag, no_lag, other_org]),
        T,
    ));
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["ExportLag"], json!([900, 40]));
    assert!(metric_names(&lines[0]).contains(&"ExportLag/Milliseconds".to_string()));
    assert_eq!(
        (&lines[1]["Org"], &lines[1]["ExportLag"]),
        (&json!("org1"), &json!([900]))
    );
    assert_eq!(lines[1]["CopyLatency"], json!([12, 7]), "latency for every copy");
    assert_eq!(lines[2]["ExportLag"], json!([40]));

    let lines = parse(&emf_lines(
        &Report::new(
            Trigger::BatchOperations,
            vec![record(Some("org1"), Outcome::Copied, Some(1), 7)],
        ),
        T,
    ));
    for line in &lines {
        assert!(line.get("ExportLag").is_none());
        assert!(!metric_names(line).iter().any(|m| m.starts_with("ExportLag")));
    }
}

fn failed(org: Option<&str>, code: ReasonCode) -> RecordReport {
    let mut r = record(org, Outcome::Failed, None, 1);
    r.reason_code = Some(code);
    r
}

#[test]
fn failures_are_counted_by_reason_code_overall_and_per_org() {
    let report = Report::new(
        Trigger::S3,
        vec![
            failed(Some("org1"), ReasonCode::AccessDenied),
            failed(Some("org1"), ReasonCode::AccessDenied),
            failed(Some("org1"), ReasonCode::PluginTimeout),
            failed(Some("org2"), ReasonCode::AccessDenied),
            failed(None, ReasonCode::InvalidRecord),
        ],
    );
    let lines = parse(&emf_lines(&report, T));
    let by: Vec<(Value, Value, Value, Value)> = lines
        .iter()
        .map(|l| {
            (
                dims(l),
                l.get("Org").cloned().unwrap_or(Value::Null),
                l.get("ReasonCode").cloned().unwrap_or(Value::Null),
                l["Failed"].clone(),
            )
        })
        .collect();
    let code = json!([["ReasonCode"]]);
    let org_code = json!([["Org", "ReasonCode"]]);
    assert_eq!(
        by,
        [
            (json!([[]]), Value::Null, Value::Null, json!(5)),
            (code.clone(), Value::Null, json!("AccessDenied"), json!(3)),
            (code.clone(), Value::Null, json!("PluginTimeout"), json!(1)),
            (code, Value::Null, json!("InvalidRecord"), json!(1)),
            (json!([["Org"]]), json!("org1"), Value::Null, json!(3)),
            (org_code.clone(), json!("org1"), json!("AccessDenied"), json!(2)),
            (org_code.clone(), json!("org1"), json!("PluginTimeout"), json!(1)),
            (json!([["Org"]]), json!("org2"), Value::Null, json!(1)),
            (org_code, json!("org2"), json!("AccessDenied"), json!(1)),
        ]
    );
    for line in &lines[1..4] {
        assert_eq!(metric_names(line), ["Failed/Count"], "only Failed by code");
    }
}

#[test]
fn plugin_health_per_org_and_overall() {
    let run = |decision_ms, error, fallback| PluginRun {
        decision_ms,
        error,
        fallback,
        tag_reads: 0,
    };
    let with = |mut r: RecordReport, run: PluginRun| {
        r.plugin = Some(run);
        r
    };
    let report = Report::new(
        Trigger::S3,
        vec![
            with(
                record(Some("org1"), Outcome::Copied, Some(1), 3),
                run(2, None, false),
            ),
            with(
                record(Some("org1"), Outcome::Skipped, None, 3),
                run(20, Some(PluginErrorKind::TimedOut), true),
            ),
            with(
                failed(Some("org1"), ReasonCode::PluginError),
                run(4, Some(PluginErrorKind::Trapped), false),
            ),
            with(
                failed(Some("org1"), ReasonCode::PluginInvalidAnswer),
                run(1, Some(PluginErrorKind::InvalidAnswer), false),
            ),
            with(
                record(Some("org1"), Outcome::Copied, Some(1), 3),
                run(1, Some(PluginErrorKind::ErrAnswer), true),
            ),
            // org2 has no plugin: no plugin metrics in its line.
            record(Some("org2"), Outcome::Copied, Some(1), 3),
        ],
    );
    let lines = parse(&emf_lines(&report, T));
    let org1 = lines
        .iter()
        .find(|l| l["Org"] == "org1" && l.get("ReasonCode").is_none())
        .unwrap();
    let org2 = lines.iter().find(|l| l["Org"] == "org2").unwrap();
    for line in [&lines[0], org1] {
        assert_eq!(line["PluginDecisions"], 5);
        assert_eq!(line["PluginTraps"], 1);
        assert_eq!(line["PluginTimeouts"], 1);
        assert_eq!(line["PluginErrAnswers"], 1);
        assert_eq!(line["PluginInvalidAnswers"], 1);
        assert_eq!(line["PluginFallbacks"], 2);
        assert_eq!(line["PluginDecisionTime"], json!([2, 20, 4, 1, 1]));
        assert!(metric_names(line).contains(&"PluginDecisionTime/Milliseconds".to_string()));
        assert!(metric_names(line).contains(&"PluginFallbacks/Count".to_string()));
    }
    assert!(!metric_names(org2).iter().any(|m| m.starts_with("Plugin")));
    assert!(org2.get("PluginDecisions").is_none());
    // No plugin read tags: no PluginTagReads anywhere.
    assert!(lines.iter().all(|l| l.get("PluginTagReads").is_none()));
}

#[test]
fn tag_reads_of_0_2_plugins_are_counted_per_org() {
    let run = |tag_reads| PluginRun {
        decision_ms: 1,
        error: None,
        fallback: false,
        tag_reads,
    };
    let with = |mut r: RecordReport, run: PluginRun| {
        r.plugin = Some(run);
        r
    };
    let report = Report::new(
        Trigger::S3,
        vec![
            with(record(Some("org1"), Outcome::Copied, Some(1), 3), run(1)),
            with(record(Some("org1"), Outcome::Skipped, None, 3), run(1)),
            with(record(Some("org2"), Outcome::Copied, Some(1), 3), run(0)),
        ],
    );
    let lines = parse(&emf_lines(&report, T));
    let line = |org: &str| {
        lines
            .iter()
            .find(|l| l["Org"] == org && l.get("ReasonCode").is_none())
            .unwrap()
    };
    assert_eq!(line("org1")["PluginTagReads"], 2);
    assert!(metric_names(line("org1")).contains(&"PluginTagReads/Count".to_string()));
    assert!(line("org2").get("PluginTagReads").is_none());
    assert_eq!(lines[0]["PluginTagReads"], 2);
}

#[test]
fn three_hundred_orgs_in_one_event_stay_within_emf_limits() {
    const ORGS: usize = 300;
    let codes = [
        ReasonCode::AccessDenied,
        ReasonCode::SlowDown,
        ReasonCode::PluginError,
    ];
    let mut records = Vec::new();
    for o in 0..ORGS {
        let org = format!("org-{o:03}");
        // Enough of everything to need continuation lines in the all-orgs group.
        for i in 0..2u64 {
            let mut r = record(Some(&org), Outcome::Copied, Some(10), o as u64 * 10 + i);
            r.lag_ms = Some(1000 + i);
            r.plugin = Some(PluginRun {
                decision_ms: i,
                error: None,
                fallback: false,
                tag_reads: 0,
            });
            records.push(r);
        }
        records.push(failed(Some(&org), codes[o % codes.len()]));
    }
    let report = Report::new(Trigger::Sqs, records);
    let raw = emf_lines(&report, T);
    let lines = parse(&raw);
    for (text, line) in raw.iter().zip(&lines) {
        directive(line); // one directive; ≤ 100 metrics; ≤ 30 dimensions; ≤ 100 values each
        assert!(text.len() < 256 * 1024, "one CloudWatch Logs event");
    }
    let widest = lines.iter().map(|l| metric_names(l).len()).max().unwrap();
    assert_eq!(widest, 14, "as the module documentation says");
    // Every value arrives exactly once: 600 latencies, lags and decision times overall.
    let overall: Vec<&Value> = lines.iter().filter(|l| dims(l) == json!([[]])).collect();
    assert_eq!(overall.len(), 6, "600 values: 6 lines of 100");
    for name in ["CopyLatency", "ExportLag", "PluginDecisionTime"] {
        let n: usize = overall
            .iter()
            .filter_map(|l| l[name].as_array())
            .map(Vec::len)
            .sum();
        assert_eq!(n, 2 * ORGS, "{name}");
    }
    assert_eq!(overall[0]["Copied"], 2 * ORGS);
    assert_eq!(overall[0]["Failed"], ORGS);
    assert!(overall[1..].iter().all(|l| l.get("Copied").is_none()));
    // One line per org, and one per org's failure code; the code lines overall.
    let per_org = lines.iter().filter(|l| dims(l) == json!([["Org"]])).count();
    let per_org_code = lines
        .iter()
        .filter(|l| dims(l) == json!([["Org", "ReasonCode"]]))
        .count();
    let per_code: Vec<&Value> = lines
        .iter()
        .filter(|l| dims(l) == json!([["ReasonCode"]]))
        .collect();
    assert_eq!((per_org, per_org_code, per_code.len()), (ORGS, ORGS, codes.len()));
    assert_eq!(
        per_code
            .iter()
            .map(|l| l["Failed"].as_u64().unwrap())
            .sum::<u64>(),
        ORGS as u64
    );
    assert_eq!(lines.len(), 6 + codes.len() + 2 * ORGS);
    let orgs: std::collections::BTreeSet<&str> = lines.iter().filter_map(|l| l["Org"].as_str()).collect();
    assert_eq!(orgs.len(), ORGS);
}

/// `Deleted` per org (and in the all-orgs line) where a removal deleted exports; lines
/// without one carry no `Deleted` at all.
#[test]
fn deleted_is_counted_per_org_only_where_exports_were_deleted() {
    let report = Report::new(
        Trigger::Sqs,
        vec![
            record(Some("org1"), Outcome::Deleted, None, 3),
            record(Some("org1"), Outcome::Deleted, None, 4),
            record(Some("org2"), Outcome::Copied, Some(10), 5),
        ],
    );
    assert_eq!(report.totals.deleted, 2);
    let lines = parse(&emf_lines(&report, T));
    let of = |org: &str| {
        lines
            .iter()
            .find(|l| l["Org"] == org)
            .unwrap_or_else(|| panic!("no line for {org}"))
    };
    assert_eq!(of("org1")["Deleted"], 2);
    assert!(metric_names(of("org1")).contains(&"Deleted/Count".to_string()));
    assert_eq!(of("org1")["Copied"], 0);
    assert!(of("org2").get("Deleted").is_none());
    assert!(!metric_names(of("org2")).contains(&"Deleted/Count".to_string()));
    let all = lines.iter().find(|l| dims(l) == json!([[]])).unwrap();
    assert_eq!(all["Deleted"], 2);
}

#[test]
fn refused_org_documents_are_counted_per_org() {
    let refusal = |org: &str| crate::config::Refusal {
        document: format!("s3://cfg/orgs/{org}.json"),
        org: org.into(),
        reason: "r".into(),
    };
    let lines = parse(&config_rejected_lines(
        &[refusal("b"), refusal("a"), refusal("b")],
        T,
    ));
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["Org"].as_str(), lines[0]["ConfigRejected"].as_u64()),
        (Some("a"), Some(1))
    );
    assert_eq!(
        (lines[1]["Org"].as_str(), lines[1]["ConfigRejected"].as_u64()),
        (Some("b"), Some(2))
    );
    assert_eq!(dims(&lines[0]), json!([["Org"]]));
    assert!(config_rejected_lines(&[], T).is_empty());
}
