//! The `Records` list and the envelopes around S3's records: SQS messages (one record per
//! message, its `messageId` kept for the partial batch response), SNS deliveries, and the
//! JSON documents they carry as text (an S3 notification, a test event, an SNS envelope when
//! SNS feeds SQS without raw delivery, or an EventBridge event).
//!
//! Unwraps only: what an S3 or EventBridge record means is [`super::s3`]'s and
//! [`super::eventbridge`]'s. Never drops an entry: one it cannot read is an `Invalid` record.

use std::fmt::Display;

use serde_json::Value;

use super::{EventRecord, ParsedEvent, RecordBody, Trigger, eventbridge, invalid, s3};

/// The one `Records` loop: every entry of a top-level `Records` list, in order, each
/// unwrapped into records. An entry is handed over already read (`parse_event`'s tree) or
/// read now, one at a time (`parse_event_text`); one that could not be read is an `Invalid`
/// record. The trigger is the first entry's source.
pub(super) fn records<V, E>(entries: impl IntoIterator<Item = Result<V, E>>) -> ParsedEvent
where
    V: std::borrow::Borrow<Value>,
    E: Display,
{
    let entries = entries.into_iter();
    let mut trigger = Trigger::S3;
    let mut out = Vec::with_capacity(entries.size_hint().0);
    for (i, entry) in entries.enumerate() {
        let locator = format!("Records[{i}]");
        // Text read as JSON already fails here only past serde_json's depth limit.
        match entry {
            Ok(record) => {
                let record = record.borrow();
                if i == 0 {
                    trigger = records_trigger(record);
                }
                outer_record(&locator, record, &mut out);
            }
            Err(e) => out.push(EventRecord {
                locator: locator.clone(),
                message_id: None,
                task_id: None,
                body: invalid(&locator, "", &format!("not readable as JSON: {e}")),
            }),
        }
    }
    ParsedEvent {
        trigger,
        records: out,
        batch: None,
    }
}

/// What invoked the function, from the first record of a `Records` list.
fn records_trigger(first: &Value) -> Trigger {
    match record_source(first) {
        Some("aws:sqs") => Trigger::Sqs,
        Some("aws:sns") => Trigger::Sns,
        _ => Trigger::S3,
    }
}

fn record_source(record: &Value) -> Option<&str> {
    record
        .get("eventSource")
        .or_else(|| record.get("EventSource"))
        .and_then(Value::as_str)
}

/// A record of the outermost `Records` list: S3 itself, an SQS message or an SNS delivery.
fn outer_record(locator: &str, record: &Value, out: &mut Vec<EventRecord>) {
    let push_one = |out: &mut Vec<EventRecord>, message_id: Option<String>, body| {
        out.push(EventRecord {
            locator: locator.to_string(),
            message_id,
            task_id: None,
            body,
        })
    };
    match record_source(record) {
        Some("aws:s3") => push_one(out, None, s3::record(locator, record)),
        Some("aws:sqs") => {
            let message_id = record
                .get("messageId")
                .and_then(Value::as_str)
                .map(str::to_string);
            let Some(message) = &message_id else {
                return push_one(
                    out,
                    None,
                    invalid(locator, "messageId", "missing; expected a string"),
                );
            };
            let locator = format!("{locator} (SQS message {message})");
            match record.get("body").and_then(Value::as_str) {
                Some(body) => nested_message(&locator, "body", body, Some(message), out),
                None => push_one(
                    out,
                    message_id.clone(),
                    invalid(&locator, "body", "missing; expected a string"),
                ),
            }
        }
        Some("aws:sns") => match record.pointer("/Sns/Message").and_then(Value::as_str) {
            Some(message) => nested_message(locator, "Sns.Message", message, None, out),
            None => push_one(
                out,
                None,
                invalid(locator, "Sns.Message", "missing; expected a string"),
            ),
        },
        Some(other) => push_one(
            out,
            None,
            invalid(
                locator,
                "eventSource",
                &format!("{other:?} is not supported; expected aws:s3, aws:sqs or aws:sns"),
            ),
        ),
        None => push_one(
            out,
            None,
            invalid(
                locator,
                "eventSource",
                "missing; expected aws:s3, aws:sqs or aws:sns",
            ),
        ),
    }
}

/// A JSON document carried as a string (SQS body, SNS message): S3 notification, test
/// event, SNS envelope (SNS → SQS without raw delivery) or EventBridge event.
fn nested_message(
    parent: &str,
    field: &str,
    text: &str,
    message_id: Option<&str>,
    out: &mut Vec<EventRecord>,
) {
    let locator = format!("{parent}.{field}");
    let record = |locator: String, body| EventRecord {
        locator,
        message_id: message_id.map(str::to_string),
        task_id: None,
        body,
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return out.push(record(
                locator.clone(),
                RecordBody::Invalid {
                    reason: format!(
                        "{locator}: not JSON (line {} column {}): {e}",
                        e.line(),
                        e.column()
                    ),
                },
            ));
        }
    };
    let Value::Object(fields) = &value else {
        return out.push(record(
            locator.clone(),
            invalid(&locator, "", "expected a JSON object"),
        ));
    };
    if let Some(Value::Array(records)) = fields.get("Records") {
        for (i, inner) in records.iter().enumerate() {
            let inner_locator = format!("{locator}.Records[{i}]");
            let body = match record_source(inner) {
                Some("aws:s3") => s3::record(&inner_locator, inner),
                _ => invalid(&inner_locator, "eventSource", "expected aws:s3"),
            };
            out.push(record(inner_locator, body));
        }
    } else if s3::is_test_event(fields) {
        out.push(s3::test_event_record(locator, message_id, fields));
    } else if fields.get("Type").and_then(Value::as_str) == Some("Notification") {
        match fields.get("Message").and_then(Value::as_str) {
            Some(inner) => nested_message(&locator, "Message", inner, message_id, out),
            None => out.push(record(
                locator.clone(),
                invalid(&locator, "Message", "missing; expected a string"),
            )),
        }
    } else if eventbridge::is_eventbridge(fields) {
        out.push(record(locator.clone(), eventbridge::body(&locator, fields)));
    } else {
        out.push(record(
            locator.clone(),
            invalid(
                &locator,
                "",
                "expected an S3 notification, s3:TestEvent, SNS notification or EventBridge event",
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use serde_json::json;

    use super::*;
    use crate::event::parse_event_text;

    const SQS_SNS_S3: &str = include_str!("../../../tests/fixtures/events/sqs-sns-s3.json");
    const SNS_S3: &str = include_str!("../../../tests/fixtures/events/sns-s3.json");
    const SQS_S3: &str = include_str!("../../../tests/fixtures/events/sqs-s3.json");
    const SQS_MALFORMED: &str = include_str!("../../../tests/fixtures/events/sqs-with-malformed-body.json");
    const SQS_EVENTBRIDGE: &str = include_str!("../../../tests/fixtures/events/sqs-eventbridge.json");

    /// The records of `entries`, as the tree path hands them over.
    fn tree(entries: &[Value]) -> ParsedEvent {
        records(entries.iter().map(Ok::<_, Infallible>))
    }

    fn reason(body: &RecordBody) -> &str {
        match body {
            RecordBody::Invalid { reason } => reason,
            other => panic!("expected an invalid record, got {other:?}"),
        }
    }

    fn key(body: &RecordBody) -> &str {
        match body {
            RecordBody::Object(object) => &object.key,
            other => panic!("expected an object, got {other:?}"),
        }
    }

    #[test]
    fn sns_inside_sqs_unwraps_to_the_s3_record_and_keeps_the_message_id() {
        let event = parse_event_text(SQS_SNS_S3).unwrap();
        assert_eq!(event.trigger, Trigger::Sqs);
        assert_eq!(event.records.len(), 1);
        let record = &event.records[0];
        assert_eq!(key(&record.body), "org1/photos/summer party+2026é.JPG");
        assert_eq!(
            record.message_id.as_deref(),
            Some("a3d2b1c0-1111-2222-3333-444455556666")
        );
        assert_eq!(
            record.locator,
            "Records[0] (SQS message a3d2b1c0-1111-2222-3333-444455556666).body.Message.Records[0]"
        );
    }

    #[test]
    fn sns_sqs_and_eventbridge_in_sqs_fixtures() {
        let sns = parse_event_text(SNS_S3).unwrap();
        assert_eq!(sns.trigger, Trigger::Sns);
        assert_eq!(sns.records[0].locator, "Records[0].Sns.Message.Records[0]");
        assert_eq!(sns.records[0].message_id, None);
        let sqs = parse_event_text(SQS_S3).unwrap();
        assert_eq!(sqs.trigger, Trigger::Sqs);
        let ids: Vec<_> = sqs.records.iter().map(|r| r.message_id.as_deref()).collect();
        assert_eq!(
            ids,
            [
                Some("059f36b4-87a3-44ab-83d2-661975830a7d"),
                Some("2e1424d4-f796-459a-8184-9c92662be6da")
            ]
        );
        let eventbridge = parse_event_text(SQS_EVENTBRIDGE).unwrap();
        assert_eq!(eventbridge.trigger, Trigger::Sqs);
        assert_eq!(key(&eventbridge.records[0].body), "org2/report final.pdf");
        assert!(
            eventbridge.records[0].locator.ends_with(".body"),
            "{}",
            eventbridge.records[0].locator
        );
    }

    #[test]
    fn a_body_that_is_not_json_fails_alone_under_its_message_id() {
        let event = parse_event_text(SQS_MALFORMED).unwrap();
        assert_eq!(event.records.len(), 2);
        key(&event.records[0].body);
        assert!(
            reason(&event.records[1].body)
                .starts_with("Records[1] (SQS message 11111111-aaaa-bbbb-cccc-000000000002).body: not JSON (line 1 column 2)"),
            "{:?}",
            event.records[1].body
        );
        assert_eq!(
            event.records[1].message_id.as_deref(),
            Some("11111111-aaaa-bbbb-cccc-000000000002")
        );
    }

    #[test]
    fn a_missing_envelope_field_is_named_by_its_path() {
        let event = tree(&[
            json!({"eventSource": "aws:sqs", "body": "{}"}),
            json!({"eventSource": "aws:sqs", "messageId": "m1"}),
            json!({"EventSource": "aws:sns", "Sns": {}}),
            json!({"eventSource": "aws:sqs", "messageId": "m2", "body": r#"{"Type": "Notification"}"#}),
            json!({"eventSource": "aws:sqs", "messageId": "m3", "body": r#"{"Records": [{"eventSource": "aws:sqs"}]}"#}),
            json!({"eventSource": "aws:sqs", "messageId": "m4", "body": "[1]"}),
            json!({"eventSource": "aws:sqs", "messageId": "m5", "body": r#"{"hello": 1}"#}),
            json!({"eventSource": "aws:kinesis"}),
            json!({}),
        ]);
        let reasons: Vec<_> = event.records.iter().map(|r| reason(&r.body)).collect();
        assert_eq!(
            reasons,
            [
                "Records[0].messageId: missing; expected a string",
                "Records[1] (SQS message m1).body: missing; expected a string",
                "Records[2].Sns.Message: missing; expected a string",
                "Records[3] (SQS message m2).body.Message: missing; expected a string",
                "Records[4] (SQS message m3).body.Records[0].eventSource: expected aws:s3",
                "Records[5] (SQS message m4).body: expected a JSON object",
                "Records[6] (SQS message m5).body: expected an S3 notification, s3:TestEvent, SNS notification or EventBridge event",
                "Records[7].eventSource: \"aws:kinesis\" is not supported; expected aws:s3, aws:sqs or aws:sns",
                "Records[8].eventSource: missing; expected aws:s3, aws:sqs or aws:sns",
            ]
        );
        // A message whose id is known keeps it even when its body is wrong: the partial batch
        // response must name it.
        let ids: Vec<_> = event.records.iter().map(|r| r.message_id.as_deref()).collect();
        assert_eq!(
            ids,
            [
                None,
                Some("m1"),
                None,
                Some("m2"),
                Some("m3"),
                Some("m4"),
                Some("m5"),
                None,
                None
            ]
        );
        assert_eq!(event.trigger, Trigger::Sqs);
    }

    #[test]
    fn the_records_loop_keeps_an_unreadable_entry_and_takes_the_trigger_from_the_first() {
        let entries: Vec<Result<Value, String>> = vec![
            Err("too deep".into()),
            Ok(json!({"EventSource": "aws:sns", "Sns": {"Message": "{}"}})),
        ];
        let event = records(entries);
        assert_eq!(
            event.trigger,
            Trigger::S3,
            "an unreadable first entry names no trigger"
        );
        assert_eq!(event.records.len(), 2);
        assert_eq!(
            reason(&event.records[0].body),
            "Records[0]: not readable as JSON: too deep"
        );
        assert_eq!(event.records[0].locator, "Records[0]");
        let empty = tree(&[]);
        assert_eq!(
            (empty.trigger, empty.records.len(), empty.batch),
            (Trigger::S3, 0, None)
        );
        let sns_first = tree(&[
            json!({"EventSource": "aws:sns"}),
            json!({"eventSource": "aws:sqs"}),
        ]);
        assert_eq!(sns_first.trigger, Trigger::Sns);
    }
}
