//! S3 notification records (`eventSource: aws:s3`, as S3 sends them directly or through SQS
//! and SNS) and `s3:TestEvent`, the message S3 sends when a notification is configured.
//! Creations and removals (`ObjectRemoved:Delete`, `ObjectRemoved:DeleteMarkerCreated`) are
//! objects; every other event, lifecycle expirations included, is ignored.
//!
//! Reads one record's fields into a [`SourceObject`], or says which field is wrong; knows
//! nothing of the envelope around it.

use serde_json::{Map, Value};

use super::{EventRecord, RecordBody, SourceObject, clean_etag, invalid, non_empty, optional_size};
use crate::s3::keys::decode_notification_key;

/// The removals an org's `deletes` may propagate (lifecycle expirations never are).
pub(super) const REMOVALS: [&str; 2] = ["ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated"];

/// Whether a JSON object is S3's `s3:TestEvent`.
pub(super) fn is_test_event(fields: &Map<String, Value>) -> bool {
    fields.get("Event").and_then(Value::as_str) == Some("s3:TestEvent")
}

/// The acknowledged `s3:TestEvent` at `locator`.
pub(super) fn test_event_record(
    locator: String,
    message_id: Option<&str>,
    fields: &Map<String, Value>,
) -> EventRecord {
    EventRecord {
        locator,
        message_id: message_id.map(str::to_string),
        task_id: None,
        body: RecordBody::Ignored {
            bucket: fields.get("Bucket").and_then(Value::as_str).map(str::to_string),
            key: None,
            reason: "s3:TestEvent acknowledged".into(),
        },
    }
}

/// One S3 notification record: an object creation, another event (ignored), or a field
/// that is missing or wrong (invalid, naming it).
pub(super) fn record(locator: &str, record: &Value) -> RecordBody {
    let event_name = match record.get("eventName").and_then(Value::as_str) {
        Some(name) => name,
        None => {
            return invalid(
                locator,
                "eventName",
                "missing; expected a string such as ObjectCreated:Put",
            );
        }
    };
    let bucket = match record.pointer("/s3/bucket/name").and_then(Value::as_str) {
        Some(b) if !b.is_empty() => b.to_string(),
        _ => {
            return invalid(
                locator,
                "s3.bucket.name",
                "missing; expected the source bucket name",
            );
        }
    };
    let raw_key = match record.pointer("/s3/object/key").and_then(Value::as_str) {
        Some(k) => k,
        None => {
            return invalid(
                locator,
                "s3.object.key",
                "missing; expected the URL-encoded object key",
            );
        }
    };
    let key = match decode_notification_key(raw_key) {
        Ok(k) => k,
        Err(e) => return invalid(locator, "s3.object.key", &e.to_string()),
    };
    let removal = REMOVALS.contains(&event_name);
    if !event_name.starts_with("ObjectCreated:") && !removal {
        let reason = if event_name.starts_with("LifecycleExpiration:") {
            format!("event {event_name}: lifecycle expirations are never propagated")
        } else {
            format!("event {event_name} is not an object creation")
        };
        return RecordBody::Ignored {
            bucket: Some(bucket),
            key: Some(key),
            reason,
        };
    }
    let object = record.pointer("/s3/object").unwrap_or(&Value::Null);
    let size = match optional_size(object.get("size")) {
        Ok(size) => size,
        Err(why) => return invalid(locator, "s3.object.size", why),
    };
    RecordBody::Object(SourceObject {
        bucket,
        key,
        // A removal announces no object: no size, no ETag.
        size: size.filter(|_| !removal),
        etag: object
            .get("eTag")
            .and_then(Value::as_str)
            .and_then(clean_etag)
            .filter(|_| !removal),
        version_id: object
            .get("versionId")
            .and_then(Value::as_str)
            .and_then(non_empty),
        event_time: record
            .get("eventTime")
            .and_then(Value::as_str)
            .map(str::to_string),
        event_name: event_name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::{Trigger, parse_event_text};

    const PUT: &str = include_str!("../../../tests/fixtures/events/s3-put.json");
    const MISSING_KEY: &str = include_str!("../../../tests/fixtures/events/s3-missing-key.json");
    const TEST_EVENT: &str = include_str!("../../../tests/fixtures/events/s3-test-event.json");
    const MULTI: &str = include_str!("../../../tests/fixtures/events/s3-multi-record.json");

    /// An `ObjectCreated:Put` record of `key` (as S3 encodes it) with `object`'s fields added.
    fn put(key: &str, object: Value) -> Value {
        let mut fields = json!({"key": key});
        fields
            .as_object_mut()
            .unwrap()
            .extend(object.as_object().unwrap().clone());
        json!({
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "eventTime": "2026-11-25T12:00:00.000Z",
            "s3": {"bucket": {"name": "src"}, "object": fields},
        })
    }

    fn invalid_reason(body: RecordBody) -> String {
        match body {
            RecordBody::Invalid { reason } => reason,
            other => panic!("expected an invalid record, got {other:?}"),
        }
    }

    #[test]
    fn the_put_fixture_reads_every_field() {
        let event = parse_event_text(PUT).unwrap();
        assert_eq!(event.trigger, Trigger::S3);
        assert_eq!(
            event.records[0].body,
            RecordBody::Object(SourceObject {
                bucket: "shared-source".into(),
                key: "org1/photos/summer party+2026é.JPG".into(),
                size: Some(1024),
                etag: Some("0123456789abcdef0123456789abcdef".into()),
                version_id: None,
                event_time: Some("2026-11-25T12:00:00.000Z".into()),
                event_name: "ObjectCreated:Put".into(),
            })
        );
        let multi = parse_event_text(MULTI).unwrap();
        assert!(multi.records.len() >= 3, "{}", multi.records.len());
    }

    #[test]
    fn a_bad_key_encoding_fails_the_record_naming_the_key_field() {
        let event = parse_event_text(&PUT.replace("%C3%A9", "%C3%ZZ")).unwrap();
        let reason = invalid_reason(event.records[0].body.clone());
        assert!(
            reason.starts_with("Records[0].s3.object.key: key \"org1/photos/summer+party%2B2026%C3%ZZ.JPG\" has a malformed escape"),
            "{reason}"
        );
        let reason = invalid_reason(record("Records[0]", &put("a%C3%28", json!({}))));
        assert_eq!(
            reason,
            "Records[0].s3.object.key: key \"a%C3%28\" does not decode to UTF-8"
        );
    }

    #[test]
    fn a_missing_or_wrong_field_is_named_by_its_path() {
        let event = parse_event_text(MISSING_KEY).unwrap();
        assert_eq!(
            invalid_reason(event.records[1].body.clone()),
            "Records[1].s3.object.key: missing; expected the URL-encoded object key"
        );
        let mut no_name = put("k", json!({}));
        no_name.as_object_mut().unwrap().remove("eventName");
        let mut empty_bucket = put("k", json!({}));
        empty_bucket["s3"]["bucket"]["name"] = json!("");
        let cases = [
            (
                no_name,
                "r.eventName: missing; expected a string such as ObjectCreated:Put",
            ),
            (
                empty_bucket,
                "r.s3.bucket.name: missing; expected the source bucket name",
            ),
            (
                put("k", json!({"size": "12"})),
                "r.s3.object.size: expected a whole number of bytes",
            ),
            (
                put("k", json!({"size": -1})),
                "r.s3.object.size: expected a whole number of bytes",
            ),
            (put("", json!({})), "r.s3.object.key: key is empty"),
        ];
        for (value, expected) in cases {
            assert_eq!(invalid_reason(record("r", &value)), expected);
        }
    }

    #[test]
    fn optional_fields_are_cleaned_and_other_events_are_ignored() {
        let body = record(
            "r",
            &put(
                "a+b%2Bc",
                json!({"size": null, "eTag": "\"abc\"", "versionId": "null"}),
            ),
        );
        let RecordBody::Object(object) = body else {
            panic!("{body:?}")
        };
        assert_eq!((object.key.as_str(), object.size), ("a b+c", None));
        assert_eq!((object.etag.as_deref(), object.version_id), (Some("abc"), None));
        let mut restored = put("a+b", json!({}));
        restored["eventName"] = json!("ObjectRestore:Completed");
        assert_eq!(
            record("r", &restored),
            RecordBody::Ignored {
                bucket: Some("src".into()),
                key: Some("a b".into()),
                reason: "event ObjectRestore:Completed is not an object creation".into(),
            }
        );
    }

    #[test]
    fn removals_are_objects_and_lifecycle_expirations_are_ignored() {
        for name in REMOVALS {
            let mut removed = put("a+b", json!({"versionId": "v1", "size": 3, "eTag": "x"}));
            removed["eventName"] = json!(name);
            let RecordBody::Object(object) = record("r", &removed) else {
                panic!("{name}")
            };
            assert!(object.is_removal(), "{name}");
            assert_eq!(
                (object.key.as_str(), object.version_id.as_deref()),
                ("a b", Some("v1"))
            );
            assert_eq!(
                (object.size, object.etag),
                (None, None),
                "a removal announces no object"
            );
            assert_eq!(object.event_name, name);
        }
        for name in [
            "LifecycleExpiration:Delete",
            "LifecycleExpiration:DeleteMarkerCreated",
        ] {
            let mut expired = put("a", json!({}));
            expired["eventName"] = json!(name);
            assert_eq!(
                record("r", &expired),
                RecordBody::Ignored {
                    bucket: Some("src".into()),
                    key: Some("a".into()),
                    reason: format!("event {name}: lifecycle expirations are never propagated"),
                }
            );
        }
    }

    #[test]
    fn the_test_event_is_acknowledged_with_its_bucket() {
        let event = parse_event_text(TEST_EVENT).unwrap();
        assert_eq!(event.trigger, Trigger::S3);
        assert_eq!(event.records.len(), 1);
        assert_eq!(event.records[0].locator, "event");
        assert_eq!(
            event.records[0].body,
            RecordBody::Ignored {
                bucket: Some("shared-source".into()),
                key: None,
                reason: "s3:TestEvent acknowledged".into(),
            }
        );
        assert!(!is_test_event(
            json!({"Event": "s3:ObjectCreated"}).as_object().unwrap()
        ));
    }
}
