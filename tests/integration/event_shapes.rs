use artifact_export::event::{
    EventError, ParsedEvent, RecordBody, ResultCode, SourceObject, Trigger, parse_event, parse_event_text,
};

use crate::support::events::fixture_path;

fn parse(name: &str) -> Result<ParsedEvent, EventError> {
    parse_event_text(&std::fs::read_to_string(fixture_path(name)).unwrap())
}

fn object(body: &RecordBody) -> &SourceObject {
    match body {
        RecordBody::Object(o) => o,
        other => panic!("expected an object, got {other:?}"),
    }
}

/// `parse_event_text` reads a `Records` list record by record instead of as one tree; every
/// fixture must come out exactly as the tree path reads it.
#[test]
fn every_fixture_reads_the_same_from_text_as_from_a_tree() {
    let dir = fixture_path("s3-put.json").parent().unwrap().to_path_buf();
    let mut compared = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        assert_eq!(parse_event_text(&text), parse_event(&value), "{}", path.display());
        compared += 1;
    }
    assert!(
        compared >= 10,
        "only {compared} fixtures compared in {}",
        dir.display()
    );
}

#[test]
fn s3_put_sample_decodes_the_key() {
    let event = parse("s3-put.json").unwrap();
    assert_eq!(event.trigger, Trigger::S3);
    assert_eq!(event.records.len(), 1);
    let o = object(&event.records[0].body);
    assert_eq!(o.bucket, "shared-source");
    assert_eq!(o.key, "org1/photos/summer party+2026é.JPG");
    assert_eq!(o.size, Some(1024));
    assert_eq!(o.etag.as_deref(), Some("0123456789abcdef0123456789abcdef"));
    assert_eq!(o.event_name, "ObjectCreated:Put");
    assert_eq!(o.event_time.as_deref(), Some("2026-11-25T12:00:00.000Z"));
    assert_eq!(event.records[0].message_id, None);
}

#[test]
fn every_record_of_a_multi_record_event_is_kept() {
    let event = parse("s3-multi-record.json").unwrap();
    let names: Vec<_> = event.records[..3]
        .iter()
        .map(|r| object(&r.body).event_name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "ObjectCreated:Post",
            "ObjectCreated:Copy",
            "ObjectCreated:CompleteMultipartUpload"
        ]
    );
    assert_eq!(
        object(&event.records[0].body).version_id.as_deref(),
        Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")
    );
    assert_eq!(object(&event.records[2].body).size, Some(7_000_000_000));
    // A removal is an object record too: whether it is propagated is the org's `deletes`.
    let removed = object(&event.records[3].body);
    assert_eq!(
        (removed.key.as_str(), removed.event_name.as_str()),
        ("org1/gone.pdf", "ObjectRemoved:Delete")
    );
    assert!(removed.is_removal());
    assert_eq!(event.records[3].locator, "Records[3]");
}

/// Removals in every shape: S3 notifications (directly, above), through SNS and SQS, and
/// EventBridge "Object Deleted".
#[test]
fn removals_read_in_every_shape() {
    let event = parse("sqs-sns-s3-removed.json").unwrap();
    assert_eq!(event.trigger, Trigger::Sqs);
    let removed = object(&event.records[0].body);
    assert_eq!(removed.event_name, "ObjectRemoved:Delete");
    assert_eq!(removed.key, "org1/photos/summer party+2026é.JPG");
    assert_eq!((removed.size, removed.etag.as_deref()), (None, None));
    assert_eq!(
        event.records[0].message_id.as_deref(),
        Some("a3d2b1c0-1111-2222-3333-444455556666")
    );
    let event = parse("eventbridge-object-deleted.json").unwrap();
    assert_eq!(event.trigger, Trigger::EventBridge);
    let removed = object(&event.records[0].body);
    assert_eq!(removed.event_name, "ObjectRemoved:DeleteMarkerCreated");
    assert_eq!(removed.key, "org2/report final.pdf");
    assert_eq!(
        removed.version_id.as_deref(),
        Some("1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF")
    );
    assert_eq!(removed.event_time.as_deref(), Some("2026-11-25T12:00:00Z"));
}

#[test]
fn test_event_is_acknowledged() {
    let event = parse("s3-test-event.json").unwrap();
    assert_eq!(event.records.len(), 1);
    assert!(
        matches!(&event.records[0].body, RecordBody::Ignored { reason, .. } if reason == "s3:TestEvent acknowledged")
    );
}

#[test]
fn sqs_carries_message_ids() {
    let event = parse("sqs-s3.json").unwrap();
    assert_eq!(event.trigger, Trigger::Sqs);
    assert_eq!(event.records.len(), 2);
    assert_eq!(
        object(&event.records[0].body).key,
        "org1/photos/summer party+2026é.JPG"
    );
    assert_eq!(
        event.records[0].message_id.as_deref(),
        Some("059f36b4-87a3-44ab-83d2-661975830a7d")
    );
    assert!(matches!(&event.records[1].body, RecordBody::Ignored { .. }));
    assert_eq!(
        event.records[1].message_id.as_deref(),
        Some("2e1424d4-f796-459a-8184-9c92662be6da")
    );
}

#[test]
fn sns_and_sns_inside_sqs() {
    let sns = parse("sns-s3.json").unwrap();
    assert_eq!(sns.trigger, Trigger::Sns);
    assert_eq!(
        object(&sns.records[0].body).key,
        "org1/photos/summer party+2026é.JPG"
    );
    let nested = parse("sqs-sns-s3.json").unwrap();
    assert_eq!(nested.trigger, Trigger::Sqs);
    assert_eq!(
        object(&nested.records[0].body).key,
        "org1/photos/summer party+2026é.JPG"
    );
    assert_eq!(
        nested.records[0].message_id.as_deref(),
        Some("a3d2b1c0-1111-2222-3333-444455556666")
    );
}

#[test]
fn eventbridge_direct_and_through_sqs() {
    for (name, trigger) in [
        ("eventbridge-object-created.json", Trigger::EventBridge),
        ("sqs-eventbridge.json", Trigger::Sqs),
    ] {
        let event = parse(name).unwrap();
        assert_eq!(event.trigger, trigger, "{name}");
        let o = object(&event.records[0].body);
        assert_eq!(o.key, "org2/report final.pdf");
        assert_eq!(o.event_name, "ObjectCreated:Copy");
        assert_eq!(o.size, Some(5));
        assert_eq!(o.version_id.as_deref(), Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"));
        assert_eq!(o.event_time.as_deref(), Some("2026-11-25T12:00:00Z"));
    }
}

#[test]
fn a_malformed_message_fails_alone() {
    let event = parse("sqs-with-malformed-body.json").unwrap();
    assert_eq!(event.records.len(), 2);
    object(&event.records[0].body);
    match &event.records[1].body {
        RecordBody::Invalid { reason } => {
            assert!(
                reason.starts_with(
                    "Records[1] (SQS message 11111111-aaaa-bbbb-cccc-000000000002).body: not JSON"
                ),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        event.records[1].message_id.as_deref(),
        Some("11111111-aaaa-bbbb-cccc-000000000002")
    );
}

#[test]
fn a_record_missing_its_key_is_named() {
    let event = parse("s3-missing-key.json").unwrap();
    object(&event.records[0].body);
    assert_eq!(
        event.records[1].body,
        RecordBody::Invalid {
            reason: "Records[1].s3.object.key: missing; expected the URL-encoded object key".into()
        }
    );
}

#[test]
fn unknown_shapes_and_non_json_are_errors() {
    let err = parse("unknown-shape.json").unwrap_err().to_string();
    assert!(
        err.starts_with("event has an unknown shape: expected an S3 notification"),
        "{err}"
    );
    assert!(err.contains("[detail, detail-type, source]"), "{err}");
    let err = parse("not-json.txt").unwrap_err();
    assert!(matches!(err, EventError::NotJson { line: 1, .. }), "{err:?}");
    assert!(parse_event_text("[]").is_err());
    assert!(parse_event_text(r#"{"Records": 3}"#).is_err());
}

#[test]
fn bad_key_encoding_is_a_failed_record() {
    let text = std::fs::read_to_string(fixture_path("s3-put.json"))
        .unwrap()
        .replace("%C3%A9", "%C3%ZZ");
    let event = parse_event_text(&text).unwrap();
    assert!(
        matches!(&event.records[0].body, RecordBody::Invalid { reason } if reason.starts_with("Records[0].s3.object.key: key")),
        "{:?}",
        event.records[0].body
    );
}

#[test]
fn batch_operations_schema_1_and_2() {
    let v1 = parse("batch-operations-1.0.json").unwrap();
    assert_eq!(v1.trigger, Trigger::BatchOperations);
    let job = v1.batch.as_ref().unwrap();
    assert_eq!(
        (job.schema_version.as_str(), job.treat_missing_keys_as),
        ("1.0", ResultCode::PermanentFailure)
    );
    assert_eq!(v1.records[0].task_id.as_deref(), Some("dGFza2lkZ29lc2hlcmUK"));
    let o = object(&v1.records[0].body);
    assert_eq!(
        (o.bucket.as_str(), o.key.as_str()),
        ("shared-source", "org1/photos/summer party+2026é.JPG")
    );
    assert_eq!(
        (o.size, o.etag.as_deref(), o.version_id.as_deref()),
        (None, None, Some("1"))
    );

    let v2 = parse("batch-operations-2.0.json").unwrap();
    let job = v2.batch.as_ref().unwrap();
    assert_eq!(
        (job.schema_version.as_str(), job.treat_missing_keys_as),
        ("2.0", ResultCode::TemporaryFailure)
    );
    assert_eq!(object(&v2.records[0].body).key, "org2/report final.pdf");
    assert_eq!(object(&v2.records[0].body).version_id, None);
    assert!(
        matches!(&v2.records[1].body, RecordBody::Invalid { reason } if reason.starts_with("tasks[1] (task dGFza2lkZ29lc2hlcmUL).s3Key: key")),
        "{:?}",
        v2.records[1].body
    );
}

#[test]
fn batch_operations_errors_name_the_field() {
    let err =
        parse_event_text(r#"{"invocationSchemaVersion":"3.0","invocationId":"x","tasks":[]}"#).unwrap_err();
    assert!(
        err.to_string()
            .contains("invocationSchemaVersion Some(\"3.0\") is not supported"),
        "{err}"
    );
    let err = parse_event_text(
        r#"{"invocationSchemaVersion":"2.0","invocationId":"x","job":{"userArguments":{"treatMissingKeysAs":"Maybe"}},"tasks":[]}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("treatMissingKeysAs \"Maybe\" is not valid"),
        "{err}"
    );
    let err =
        parse_event_text(r#"{"invocationSchemaVersion":"1.0","invocationId":"x","tasks":[{"s3Key":"a"}]}"#)
            .unwrap_err();
    assert!(err.to_string().contains("tasks[0].taskId: missing"), "{err}");
}
