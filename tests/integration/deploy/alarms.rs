use std::collections::BTreeSet;

use artifact_export::event::Trigger;
use artifact_export::metrics::{self, NAMESPACE};
use artifact_export::plan::PluginRun;
use artifact_export::reason::ReasonCode;
use artifact_export::report::{Outcome, RecordReport, Report};
use serde_json::{Value, json};

use super::{has_resource, render, resource};

/// Every metric name the function can emit: the EMF lines of a report with a copy that has
/// an export lag, a failure and a plugin decision, so every optional metric is there.
fn emitted_metric_names() -> BTreeSet<String> {
    let mut copied = RecordReport::pending("Records[0]".into(), None, None);
    copied.org = Some("org1".into());
    copied.outcome = Outcome::Copied;
    copied.bytes = Some(1);
    copied.lag_ms = Some(1500);
    copied.plugin = Some(PluginRun {
        decision_ms: 2,
        error: None,
        fallback: false,
        tag_reads: 0,
    });
    let mut failed = RecordReport::pending("Records[1]".into(), None, None);
    failed.org = Some("org1".into());
    failed.reason_code = Some(ReasonCode::AccessDenied);
    let report = Report::new(Trigger::S3, vec![copied, failed]);
    let mut names = BTreeSet::new();
    for line in metrics::emf_lines(&report, 0) {
        let line: Value = serde_json::from_str(&line).unwrap();
        for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            names.insert(m["Name"].as_str().unwrap().to_string());
        }
    }
    names
}

#[test]
fn alarms_and_dashboard_watch_the_metrics_the_function_emits() {
    let emitted = emitted_metric_names();
    for name in [
        "ExportLag",
        "CopyLatency",
        "Failed",
        "PluginDecisionTime",
        "PluginFallbacks",
    ] {
        assert!(emitted.contains(name), "{name} in {emitted:?}");
    }
    let quiet = render(&[]);
    let failed = &resource(&quiet, "FailedRecordsAlarm")["Properties"];
    assert_eq!(failed["Namespace"], NAMESPACE);
    assert_eq!(failed["MetricName"], "Failed");
    assert!(
        failed.get("Dimensions").is_none(),
        "the all-orgs metric has no dimensions"
    );
    assert_eq!(
        (&failed["Threshold"], &failed["ComparisonOperator"]),
        (&json!(0), &json!("GreaterThanThreshold"))
    );
    let errors = &resource(&quiet, "FunctionErrorsAlarm")["Properties"];
    assert_eq!(
        (&errors["Namespace"], &errors["MetricName"]),
        (&json!("AWS/Lambda"), &json!("Errors"))
    );
    let dlq = &resource(&quiet, "InvokeDeadLetterAlarm")["Properties"];
    assert_eq!(
        dlq["Dimensions"][0]["Value"],
        "{{InvokeDeadLetterQueue.QueueName}}"
    );
    assert!(!has_resource(&quiet, "AlarmTopic") && !has_resource(&quiet, "Dashboard"));
    assert!(failed.get("AlarmActions").is_none());

    let loud = render(&[
        ("AlarmEmail", "ops@example.com"),
        ("CreateDashboard", "true"),
        ("TriggerMode", "SQS"),
    ]);
    assert_eq!(
        resource(&loud, "AlarmTopic")["Properties"]["Subscription"][0]["Endpoint"],
        "ops@example.com"
    );
    for alarm in [
        "FunctionErrorsAlarm",
        "FailedRecordsAlarm",
        "ExportLagAlarm",
        "InvokeDeadLetterAlarm",
        "SourceDeadLetterAlarm",
    ] {
        assert_eq!(
            resource(&loud, alarm)["Properties"]["AlarmActions"],
            json!(["{{ref:AlarmTopic}}"]),
            "{alarm}"
        );
    }
    let body = resource(&loud, "Dashboard")["Properties"]["DashboardBody"]
        .as_str()
        .unwrap()
        .to_string();
    let dashboard: Value = serde_json::from_str(&body).expect("the dashboard body is JSON");
    let mut charted = BTreeSet::new();
    let mut searched_by_reason = false;
    for widget in dashboard["widgets"].as_array().unwrap() {
        // A row names a namespace and metric; "." repeats the previous row's value.
        let mut namespace = String::new();
        for row in widget["properties"]["metrics"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            match row[0].as_str() {
                Some(".") | Some("...") => {}
                Some(ns) => namespace = ns.to_string(),
                None => namespace.clear(),
            }
            if namespace == NAMESPACE && row[0] != "..." {
                charted.insert(row[1].as_str().unwrap().to_string());
            }
            if let Some(expr) = row[0]["expression"].as_str() {
                // `{ArtifactExport,Org}` or `{ArtifactExport,ReasonCode}`: dimension sets the
                // function publishes.
                let schema = expr.split('{').nth(1).and_then(|r| r.split('}').next()).unwrap();
                assert!(
                    [format!("{NAMESPACE},Org"), format!("{NAMESPACE},ReasonCode")]
                        .contains(&schema.to_string()),
                    "{expr}"
                );
                if schema.ends_with("ReasonCode") {
                    searched_by_reason = true;
                }
                let names: Vec<&str> = expr
                    .split("MetricName=\"")
                    .skip(1)
                    .map(|r| r.split('"').next().unwrap())
                    .collect();
                assert!(!names.is_empty(), "{expr}");
                charted.extend(names.iter().map(|n| n.to_string()));
            }
        }
    }
    assert!(charted.len() >= 5, "{charted:?}");
    for name in [
        "ExportLag",
        "Failed",
        "PluginDecisionTime",
        "PluginTraps",
        "PluginFallbacks",
    ] {
        assert!(charted.contains(name), "the dashboard charts {name}: {charted:?}");
    }
    assert!(searched_by_reason, "a widget charts Failed by ReasonCode");
    for name in &charted {
        assert!(
            emitted.contains(name),
            "the dashboard charts {name}, which the function does not emit ({emitted:?})"
        );
    }
}

#[test]
fn the_export_lag_alarm_is_p99_over_the_threshold_parameter_to_the_alarm_topic() {
    let default = render(&[("AlarmEmail", "ops@example.com")]);
    let alarm = &resource(&default, "ExportLagAlarm")["Properties"];
    assert_eq!(alarm["Namespace"], NAMESPACE);
    assert_eq!(alarm["MetricName"], "ExportLag");
    assert!(
        alarm.get("Dimensions").is_none(),
        "the all-orgs metric has no dimensions"
    );
    assert_eq!(alarm["ExtendedStatistic"], "p99");
    assert!(
        alarm.get("Statistic").is_none(),
        "Statistic and ExtendedStatistic exclude each other"
    );
    assert_eq!(alarm["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(alarm["AlarmActions"], json!(["{{ref:AlarmTopic}}"]));
    // 15 minutes by default, the objective of S3 Replication Time Control.
    assert_eq!(alarm["Threshold"].to_string().trim_matches('"'), "900000");
    let tight = render(&[("ExportLagThresholdMs", "60000")]);
    let alarm = &resource(&tight, "ExportLagAlarm")["Properties"];
    assert_eq!(alarm["Threshold"].to_string().trim_matches('"'), "60000");
    assert!(alarm.get("AlarmActions").is_none(), "no topic without AlarmEmail");
    // The dashboard draws the threshold on the lag chart.
    let dashboard = render(&[("CreateDashboard", "true"), ("ExportLagThresholdMs", "60000")]);
    let body: Value = serde_json::from_str(
        resource(&dashboard, "Dashboard")["Properties"]["DashboardBody"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let lag = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["properties"]["metrics"][0][1] == "ExportLag")
        .expect("a widget charts ExportLag");
    assert_eq!(lag["properties"]["metrics"][1][1]["stat"], "p99");
    assert_eq!(lag["properties"]["annotations"]["horizontal"][0]["value"], 60000);
}

/// The scheduled reconcile: EventBridge Scheduler invokes the function with a request the
/// function reads (`backfill::scheduled::request_of`), for the stack's source bucket; the
/// alarm watches the all-orgs `ExportsMissing` the function publishes; an empty schedule
/// creates neither; queue repairs name the function's own queue and may send only there.
#[test]
fn the_scheduled_reconcile_sends_a_request_the_function_reads_and_its_alarm_watches_its_metric() {
    use artifact_export::backfill::reconcile::Reconciled;
    use artifact_export::backfill::scheduled::{Repair, ScheduledOutcome, request_of};

    let rendered = render(&[]);
    let schedule = &resource(&rendered, "ReconcileScheduleRule")["Properties"];
    assert_eq!(schedule["ScheduleExpression"], "rate(1 day)");
    let input = schedule["Target"]["Input"].as_str().expect("input text");
    let request = request_of(input).expect("a reconcile request").expect("readable");
    assert_eq!(
        (request.bucket.as_str(), request.repair),
        (super::SOURCE, Repair::None)
    );

    let outcome = ScheduledOutcome {
        reconciled: Reconciled {
            orgs: Vec::new(),
            extras_unknown: Vec::new(),
        },
        incomplete: None,
        sent: None,
    };
    let all_orgs: Value = serde_json::from_str(&outcome.emf_lines(0)[0]).unwrap();
    assert_eq!(
        all_orgs["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([[]])
    );
    let alarm = &resource(&rendered, "ExportsMissingAlarm")["Properties"];
    assert_eq!(alarm["Namespace"], NAMESPACE);
    assert_eq!(alarm["MetricName"], "ExportsMissing");
    assert!(all_orgs.get("ExportsMissing").is_some(), "{all_orgs}");
    assert!(
        alarm.get("Dimensions").is_none(),
        "the all-orgs metric has no dimensions"
    );

    let none = render(&[("ReconcileSchedule", "")]);
    assert!(!has_resource(&none, "ReconcileScheduleRule"));
    assert!(!has_resource(&none, "ExportsMissingAlarm"));

    let queued = render(&[("TriggerMode", "SQS"), ("ReconcileRepair", "queue")]);
    let input = resource(&queued, "ReconcileScheduleRule")["Properties"]["Target"]["Input"]
        .as_str()
        .expect("input text");
    let request = request_of(input).expect("a reconcile request").expect("readable");
    assert_eq!(request.repair, Repair::Queue);
    assert!(request.queue.is_some(), "{input}");
}
