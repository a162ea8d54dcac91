//! Unit tests of the record model and the fold of outcomes.

use serde_json::Value;

use super::*;

fn failed(code: Option<ReasonCode>, outcome: Outcome) -> RecordReport {
    let mut r = RecordReport::pending("Records[0]".into(), None, None);
    r.outcome = outcome;
    r.reason_code = code;
    r
}

#[test]
fn every_failed_record_has_a_reason_code_and_no_other_record_does() {
    let report = Report::new(
        Trigger::S3,
        vec![
            failed(None, Outcome::Failed),
            failed(Some(ReasonCode::SlowDown), Outcome::Failed),
            failed(Some(ReasonCode::SlowDown), Outcome::Copied),
        ],
    );
    let codes: Vec<_> = report.records.iter().map(|r| r.reason_code).collect();
    assert_eq!(codes, [Some(ReasonCode::Other), Some(ReasonCode::SlowDown), None]);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["records"][0]["reasonCode"], "Other");
    assert_eq!(json["records"][1]["reasonCode"], "SlowDown");
    assert!(json["records"][2].get("reasonCode").is_none());
    assert!(json["records"][2].get("lagMs").is_none());
}

#[test]
fn a_copy_failure_keeps_its_s3_code_and_gets_its_reason_code() {
    let delivery = |code: &str| Delivery {
        target: crate::route::Target::new("b", "k"),
        result: Err(CopyError::Failed(crate::destination::Failure {
            code: FailureCode::s3(code),
            message: String::new(),
            retryable: false,
        })),
        attempts: 1,
    };
    let target = TargetReport::from(delivery("KMS.DisabledException"));
    assert_eq!(target.error_code.as_deref(), Some("KMS.DisabledException"));
    assert_eq!(target.reason_code, Some(ReasonCode::KmsDenied));
    let mut record = RecordReport::pending("Records[0]".into(), None, None);
    record.merge_targets(vec![TargetReport::from(delivery("NoSuchBucket"))]);
    assert_eq!(record.reason_code, Some(ReasonCode::NoSuchBucket));
}

/// The JSON log lines (as Lambda writes them) of `records`' `log()`.
fn json_log_lines(records: &[RecordReport]) -> Vec<Value> {
    use crate::logging::captured::Captured;
    let out = Captured::default();
    let subscriber = crate::logging::subscriber(
        crate::logging::LogFormat::Json,
        tracing_subscriber::EnvFilter::new("info"),
        out.clone(),
        false,
    );
    tracing::subscriber::with_default(subscriber, || records.iter().for_each(RecordReport::log));
    let text = out.text();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_log_line_carries_lag_and_reason_code_as_the_report_spells_them() {
    let mut lagged = failed(None, Outcome::Copied);
    lagged.lag_ms = Some(1234);
    let unlagged = failed(None, Outcome::Copied);
    let mut broken = failed(Some(ReasonCode::KmsDenied), Outcome::Failed);
    broken.reason = Some("KMS.DisabledException".into());
    let lines = json_log_lines(&[lagged, unlagged, broken]);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["lagMs"], 1234);
    assert!(lines[1].get("lagMs").is_none(), "{}", lines[1]);
    assert_eq!(lines[2]["reasonCode"], "KmsDenied");
    assert_eq!(lines[2]["outcome"], "failed");
    assert!(lines[0].get("reasonCode").is_none());
}
