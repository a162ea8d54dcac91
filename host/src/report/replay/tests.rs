//! Unit tests of reading reports and log lines back for a replay.

use serde_json::{Value, json};

use super::*;
use crate::event::Trigger;
use crate::report::{Outcome, RecordReport, Report};

/// An object record of `org` (none: no org owned it) as the handler fills it.
fn object_record(locator: &str, key: &str, org: Option<&str>, outcome: Outcome) -> RecordReport {
    let mut r = RecordReport::pending(locator.into(), None, None);
    r.source_bucket = Some("shared-source".into());
    r.key = Some(key.into());
    r.outcome = outcome;
    r.object = Some(ObjectFacts {
        size: Some(42),
        etag: Some("0123abcd".into()),
        version_id: None,
        event_time: Some("2026-11-25T10:00:00.000Z".into()),
        event_name: "ObjectCreated:Put".into(),
        head: None,
        tags: None,
        tags_error: None,
    });
    if let Some(org) = org {
        r.org = Some(org.into());
        r.proposed = Some(vec![Proposed {
            bucket: format!("{org}-export"),
            key: key.into(),
        }]);
    }
    r
}

fn records() -> Vec<RecordReport> {
    let mut failed = object_record("Records[2]", "org2/c.pdf", Some("org2"), Outcome::Failed);
    failed.reason = Some("AccessDenied".into());
    let mut unselected = object_record("Records[3]", "org2/notes.txt", Some("org2"), Outcome::Skipped);
    unselected.proposed = Some(Vec::new());
    let mut test_event = RecordReport::pending("Records[4]".into(), None, None);
    test_event.outcome = Outcome::Skipped;
    vec![
        object_record("Records[0]", "org1/a.jpg", Some("org1"), Outcome::Copied),
        object_record("Records[1]", "elsewhere/b.jpg", None, Outcome::Skipped),
        failed,
        unselected,
        test_event,
    ]
}

fn report_text(records: Vec<RecordReport>) -> String {
    serde_json::to_string_pretty(&Report::new(Trigger::S3, records)).unwrap()
}

/// The JSON log lines (as Lambda writes them) of `records`' `log()`.
fn log_text(records: &[RecordReport]) -> String {
    use crate::logging::captured::Captured;
    let out = Captured::default();
    let subscriber = crate::logging::subscriber(
        crate::logging::LogFormat::Json,
        tracing_subscriber::EnvFilter::new("info"),
        out.clone(),
        false,
    );
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(totals = "…", "invocation done");
        records.iter().for_each(RecordReport::log);
    });
    out.text()
}

/// (org, object, proposed) of each input: what a plugin is asked.
fn questions(replay: &Replay) -> Vec<(String, SourceObject, Vec<Proposed>)> {
    replay
        .inputs
        .iter()
        .map(|i| (i.org.clone(), i.object(), i.proposed.clone()))
        .collect()
}

#[test]
fn a_report_gives_each_routed_object_record_with_its_facts_and_proposed_targets() {
    let replay = parse_reports(&report_text(records())).unwrap();
    assert_eq!(replay.left_out, 2, "no org, and a test event");
    let labels: Vec<&str> = replay.inputs.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "org1/a.jpg (Records[0])",
            "org2/c.pdf (Records[2])",
            "org2/notes.txt (Records[3])"
        ]
    );
    let first = &replay.inputs[0];
    assert_eq!(
        first.object(),
        SourceObject {
            bucket: "shared-source".into(),
            key: "org1/a.jpg".into(),
            size: Some(42),
            etag: Some("0123abcd".into()),
            version_id: None,
            event_time: Some("2026-11-25T10:00:00.000Z".into()),
            event_name: "ObjectCreated:Put".into(),
        }
    );
    assert_eq!(
        first.proposed,
        [Proposed {
            bucket: "org1-export".into(),
            key: "org1/a.jpg".into()
        }]
    );
    assert!(
        replay.inputs[2].proposed.is_empty(),
        "plain matching proposed nothing"
    );
}

#[test]
fn the_report_writes_object_and_proposed_only_where_they_are_known() {
    let json: Value = serde_json::from_str(&report_text(records())).unwrap();
    let first = &json["records"][0];
    assert_eq!(
        first["object"],
        json!({"size": 42, "etag": "0123abcd", "eventTime": "2026-11-25T10:00:00.000Z",
               "eventName": "ObjectCreated:Put"})
    );
    assert_eq!(
        first["proposed"],
        json!([{"bucket": "org1-export", "key": "org1/a.jpg"}])
    );
    assert!(json["records"][1].get("proposed").is_none(), "no org");
    assert_eq!(json["records"][3]["proposed"], json!([]));
    assert!(json["records"][4].get("object").is_none(), "not an object record");
}

#[test]
fn log_lines_ask_the_same_questions_as_the_report() {
    let text = log_text(&records());
    let from_lines = parse_reports(&text).unwrap();
    let from_report = parse_reports(&report_text(records())).unwrap();
    assert_eq!(questions(&from_lines), questions(&from_report));
    assert_eq!(from_lines.left_out, 2);
    // Line 1 is "invocation done"; the records' lines follow.
    assert_eq!(from_lines.inputs[0].label, "org1/a.jpg (line 2)");
    assert_eq!(from_lines.inputs[1].label, "org2/c.pdf (line 4)");
    // The log line's fields hold the report's JSON, as text.
    let line: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    let object: Value = serde_json::from_str(line["object"].as_str().unwrap()).unwrap();
    assert_eq!(object["eventName"], "ObjectCreated:Put");
}

#[test]
fn lines_that_are_not_json_or_not_records_are_ignored() {
    let text = format!(
        "START RequestId: 1 Version: $LATEST\n{}\nnot json {{\nEND RequestId: 1\n\n{}",
        log_text(&records()[..1]).trim_end(),
        r#"{"level":"INFO","message":"invocation done"}"#
    );
    let replay = parse_reports(&text).unwrap();
    assert_eq!(replay.inputs.len(), 1);
    assert_eq!(replay.inputs[0].label, "org1/a.jpg (line 3)");
    assert_eq!(replay.left_out, 0);
}

#[test]
fn several_reports_and_invoke_output_both_are_read() {
    let one = report_text(records()[..1].to_vec());
    let both = json!({"report": serde_json::from_str::<Value>(&report_text(records()[2..3].to_vec())).unwrap(),
                      "response": {}});
    let replay = parse_reports(&format!("{one}\n{both}\n")).unwrap();
    let labels: Vec<&str> = replay.inputs.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "org1/a.jpg (report 1 records[0])",
            "org2/c.pdf (report 2 records[0])"
        ]
    );
}

#[test]
fn a_record_without_object_or_proposed_is_an_error_naming_it_and_the_field() {
    let mut old = records();
    old[2].object = None;
    let error = parse_reports(&report_text(old)).unwrap_err();
    assert_eq!(error.at, "records[2] (Records[2], key \"org2/c.pdf\")");
    assert!(error.problem.starts_with("no \"object\""), "{error}");
    let mut old = records();
    old[0].proposed = None;
    let error = parse_reports(&log_text(&old)).unwrap_err().to_string();
    assert!(
        error.starts_with("line 2 (Records[0], key \"org1/a.jpg\"): no \"proposed\""),
        "{error}"
    );
    // Written by hand, wrong: named too.
    let text = r#"{"records":[{"record":"Records[0]","key":"k","org":"o","sourceBucket":"b","object":{"size":"big"},"proposed":[]}]}"#;
    let error = parse_reports(text).unwrap_err().to_string();
    assert!(
        error.contains("\"object\" is not what a report writes"),
        "{error}"
    );
    let text = r#"{"records":[{"record":"Records[0]","key":"k","org":"o","object":{"eventName":"x"},"proposed":[]}]}"#;
    let error = parse_reports(text).unwrap_err().to_string();
    assert!(error.contains("no \"sourceBucket\""), "{error}");
}

#[test]
fn a_file_without_any_record_is_refused() {
    for text in [
        "",
        "hello\n",
        r#"{"level":"INFO","message":"invocation done"}"#,
        "[1, 2]",
    ] {
        let error = parse_reports(text).unwrap_err().to_string();
        assert!(error.contains("neither a report"), "{text:?}: {error}");
    }
    // A report with no records is a report: nothing to compare, nothing wrong.
    assert_eq!(parse_reports(r#"{"records": []}"#), Ok(Replay::default()));
}

/// What the source's HEAD gave a 0.2 plugin is written with the record and read back by a
/// replay, in the report and in the log line alike.
#[test]
fn a_0_2_plugins_head_facts_are_replayed() {
    let mut record = object_record("Records[0]", "org2/a.png", Some("org2"), Outcome::Copied);
    let head = crate::policy::ObjectFacts {
        content_type: Some("image/png".into()),
        content_length: Some(42),
        last_modified: Some("2026-11-25T10:00:00Z".into()),
        storage_class: Some("STANDARD".into()),
        metadata: [("team".to_string(), "a".to_string())].into_iter().collect(),
        checksum: Some(crate::policy::FactChecksum {
            algorithm: "CRC32".into(),
            value: "AAAAAA==".into(),
        }),
    };
    record.object.as_mut().unwrap().head = Some(head.clone());
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["object"]["head"]["contentType"], "image/png");
    for text in [report_text(vec![record.clone()]), log_text(&[record])] {
        let replay = parse_reports(&text).unwrap();
        assert_eq!(replay.inputs[0].facts.head.as_ref(), Some(&head), "{text}");
        assert_eq!(
            serde_json::to_value(&replay.inputs[0].facts.head).unwrap()["metadata"],
            serde_json::json!({"team": "a"})
        );
    }
}
