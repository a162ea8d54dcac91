//! Unit tests of cases files: parsing, checking an answer against an expectation.

use super::*;
use crate::policy::Limits;

#[test]
fn parses_the_documented_format() {
    let cases = parse_cases(
        r#"[{"name":"a","org":"o","key":"o/k.jpg","size":3,"eventTime":"2026-01-01T00:00:00Z",
             "settings":{"x":1},"proposed":[{"bucket":"b","key":"o/k.jpg"}],"expect":{"skip":"why"}},
            {"name":"b","org":"o","key":"k","settings":"not json","proposed":[],"expect":{"error":"settings"}}]"#,
        "c.json",
    )
    .unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!(settings_text(cases[0].settings.as_ref()), r#"{"x":1}"#);
    assert_eq!(settings_text(cases[1].settings.as_ref()), "not json");
    assert_eq!(settings_text(None), "{}");
}

#[test]
fn usage_is_shown_against_the_limits() {
    let limits = Limits {
        timeout: std::time::Duration::from_millis(1000),
        max_memory_bytes: 16 << 20,
        max_instructions: 1_000_000,
    };
    let usage = Usage {
        instructions: Some(250_000),
        peak_memory_bytes: 4 << 20,
        elapsed: std::time::Duration::from_millis(5),
        tag_reads: 0,
    };
    assert_eq!(
        describe_usage(&usage, &limits),
        "instructions 250000 of 1000000 (25.0%), memory 4.0 of 16.0 MiB (25.0%), time 5.0 of 1000 ms (0.5%)"
    );
}

#[test]
fn a_report_totals_the_cases_and_keeps_the_largest_use() {
    let limits = Limits {
        timeout: std::time::Duration::from_millis(1000),
        max_memory_bytes: 16 << 20,
        max_instructions: 1_000_000,
    };
    let case = |name: &str, passed: bool, instructions: u64, memory: u64, time_ms: f64| CaseReport {
        name: name.into(),
        passed,
        mismatch: (!passed).then(|| "expected skip".to_string()),
        decision: decision_json(&Ok(Verdict::Skip("why".into()))),
        host_decision: "skip \"why\"".into(),
        instructions: Some(instructions),
        peak_memory_bytes: memory,
        time_ms,
        given: None,
    };
    let report = CasesReport::new(
        &limits,
        vec![
            case("a", true, 10, 3 << 20, 0.5),
            case("b", false, 7, 5 << 20, 0.25),
        ],
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["limits"],
        serde_json::json!({"maxInstructions": 1_000_000, "maxMemoryMiB": 16, "timeoutMs": 1000})
    );
    assert_eq!(
        (json["passed"].as_u64(), json["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        json["maxUsed"],
        serde_json::json!({"instructions": 10, "peakMemoryBytes": 5 << 20, "timeMs": 0.5})
    );
    assert_eq!(json["cases"][0]["decision"], serde_json::json!({"skip": "why"}));
    assert!(json["cases"][0].get("mismatch").is_none());
    assert_eq!(json["cases"][1]["mismatch"], "expected skip");
}

#[test]
fn decisions_are_written_like_expectations() {
    let copy = decision_json(&Ok(Verdict::Copy(vec![Target::new("b", "k")])));
    assert_eq!(copy, serde_json::json!({"copy": [{"bucket": "b", "key": "k"}]}));
    let refused = decision_json(&Err(super::DecisionError::Refused("bad settings".into())));
    assert_eq!(refused, serde_json::json!({"error": "bad settings"}));
    let trapped = decision_json(&Err(super::DecisionError::OutOfFuel(5)));
    assert_eq!(
        trapped,
        serde_json::json!({"failed": "used up its budget of 5 instructions (maxInstructions)"})
    );
}

#[test]
fn bad_files_name_the_position() {
    let err = parse_cases(r#"[{"name":"a"}]"#, "c.json").unwrap_err();
    assert!(err.starts_with("cases c.json: line 1 column"), "{err}");
    let err = parse_cases(
        r#"[{"name":"a","org":"o","key":"k","proposed":[],"expect":{"maybe":1}}]"#,
        "c.json",
    )
    .unwrap_err();
    assert!(err.contains("unknown variant `maybe`"), "{err}");
}
