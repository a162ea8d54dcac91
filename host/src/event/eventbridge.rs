//! EventBridge "Object Created" and "Object Deleted" events from S3 (`source: aws.s3`),
//! directly or carried in an SQS message. Other detail types, and deletions by a lifecycle
//! expiration, are ignored, not refused.
//!
//! Reads the event's `detail` into a [`SourceObject`] in S3 notification spelling
//! (`reason` → `ObjectCreated:*`), or says which field is wrong; knows nothing of the
//! envelope around it.

use serde_json::{Map, Value};

use super::{RecordBody, SourceObject, clean_etag, invalid, non_empty, optional_size};
use crate::s3::keys::decode_notification_key;

/// Whether a JSON object is an S3 event from EventBridge.
pub(super) fn is_eventbridge(fields: &Map<String, Value>) -> bool {
    fields.get("source").and_then(Value::as_str) == Some("aws.s3") && fields.contains_key("detail-type")
}

/// The record of one EventBridge event at `locator`.
pub(super) fn body(locator: &str, fields: &Map<String, Value>) -> RecordBody {
    let detail_type = fields
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let detail = fields.get("detail").unwrap_or(&Value::Null);
    let bucket = detail
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let raw_key = detail.pointer("/object/key").and_then(Value::as_str);
    let reason = detail.get("reason").and_then(Value::as_str);
    let ignored = |reason: String| RecordBody::Ignored {
        bucket: bucket.clone(),
        key: raw_key.and_then(|k| decode_notification_key(k).ok()),
        reason,
    };
    let removal = match (detail_type, reason) {
        ("Object Created", _) => None,
        ("Object Deleted", Some("Lifecycle Expiration")) => {
            return ignored("EventBridge event \"Object Deleted\" (Lifecycle Expiration): lifecycle expirations are never propagated".into());
        }
        ("Object Deleted", _) => Some(match detail.get("deletion-type").and_then(Value::as_str) {
            Some("Delete Marker Created") => "ObjectRemoved:DeleteMarkerCreated",
            _ => "ObjectRemoved:Delete",
        }),
        _ => {
            return ignored(format!(
                "EventBridge event {detail_type:?} is not an object creation"
            ));
        }
    };
    let Some(bucket) = bucket.filter(|b| !b.is_empty()) else {
        return invalid(
            locator,
            "detail.bucket.name",
            "missing; expected the source bucket name",
        );
    };
    let Some(raw_key) = raw_key else {
        return invalid(locator, "detail.object.key", "missing; expected the object key");
    };
    let key = match decode_notification_key(raw_key) {
        Ok(k) => k,
        Err(e) => return invalid(locator, "detail.object.key", &e.to_string()),
    };
    let size = match optional_size(detail.pointer("/object/size")) {
        Ok(size) => size,
        Err(why) => return invalid(locator, "detail.object.size", why),
    };
    let event_name = removal.unwrap_or(match reason.unwrap_or("PutObject") {
        "PutObject" => "ObjectCreated:Put",
        "POST Object" => "ObjectCreated:Post",
        "CopyObject" => "ObjectCreated:Copy",
        "CompleteMultipartUpload" => "ObjectCreated:CompleteMultipartUpload",
        _ => "ObjectCreated:Put",
    });
    RecordBody::Object(SourceObject {
        bucket,
        key,
        // A removal announces no object: no size, no ETag.
        size: size.filter(|_| removal.is_none()),
        etag: detail
            .pointer("/object/etag")
            .and_then(Value::as_str)
            .and_then(clean_etag)
            .filter(|_| removal.is_none()),
        version_id: detail
            .pointer("/object/version-id")
            .and_then(Value::as_str)
            .and_then(non_empty),
        event_time: fields.get("time").and_then(Value::as_str).map(str::to_string),
        event_name: event_name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::{Trigger, parse_event_text};

    const CREATED: &str = include_str!("../../../tests/fixtures/events/eventbridge-object-created.json");

    fn event(detail_type: &str, detail: Value) -> Map<String, Value> {
        let value = json!({
            "source": "aws.s3",
            "detail-type": detail_type,
            "time": "2026-11-25T12:00:00Z",
            "detail": detail,
        });
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_fixture_reads_in_notification_spelling() {
        let parsed = parse_event_text(CREATED).unwrap();
        assert_eq!(parsed.trigger, Trigger::EventBridge);
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.records[0].locator, "event");
        assert_eq!(
            parsed.records[0].body,
            RecordBody::Object(SourceObject {
                bucket: "shared-source".into(),
                key: "org2/report final.pdf".into(),
                size: Some(5),
                etag: Some("b1946ac92492d2347c6235b4d2611184".into()),
                version_id: Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e".into()),
                event_time: Some("2026-11-25T12:00:00Z".into()),
                event_name: "ObjectCreated:Copy".into(),
            })
        );
    }

    #[test]
    fn each_reason_maps_to_its_event_name_and_an_unknown_one_to_put() {
        for (reason, name) in [
            (Some("PutObject"), "ObjectCreated:Put"),
            (Some("POST Object"), "ObjectCreated:Post"),
            (Some("CopyObject"), "ObjectCreated:Copy"),
            (
                Some("CompleteMultipartUpload"),
                "ObjectCreated:CompleteMultipartUpload",
            ),
            (Some("SomethingNew"), "ObjectCreated:Put"),
            (None, "ObjectCreated:Put"),
        ] {
            let mut detail = json!({"bucket": {"name": "b"}, "object": {"key": "k"}});
            if let Some(reason) = reason {
                detail["reason"] = json!(reason);
            }
            match body("event", &event("Object Created", detail)) {
                RecordBody::Object(object) => assert_eq!(object.event_name, name, "{reason:?}"),
                other => panic!("{reason:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_missing_or_wrong_field_is_named_by_its_path() {
        let cases = [
            (
                json!({"object": {"key": "k"}}),
                "e.detail.bucket.name: missing; expected the source bucket name",
            ),
            (
                json!({"bucket": {"name": ""}, "object": {"key": "k"}}),
                "e.detail.bucket.name: missing; expected the source bucket name",
            ),
            (
                json!({"bucket": {"name": "b"}}),
                "e.detail.object.key: missing; expected the object key",
            ),
            (
                json!({"bucket": {"name": "b"}, "object": {"key": "%G0"}}),
                "e.detail.object.key: key \"%G0\" has a malformed escape at byte 0: expected %XX with two hex digits",
            ),
            (
                json!({"bucket": {"name": "b"}, "object": {"key": "k", "size": 1.5}}),
                "e.detail.object.size: expected a whole number of bytes",
            ),
        ];
        for (detail, expected) in cases {
            assert_eq!(
                body("e", &event("Object Created", detail)),
                RecordBody::Invalid {
                    reason: expected.into()
                }
            );
        }
    }

    #[test]
    fn deletions_are_removals_but_lifecycle_expirations_are_ignored() {
        for (deletion, name) in [
            (Some("Permanently Deleted"), "ObjectRemoved:Delete"),
            (Some("Delete Marker Created"), "ObjectRemoved:DeleteMarkerCreated"),
            (None, "ObjectRemoved:Delete"),
        ] {
            let mut detail = json!({"bucket": {"name": "b"}, "object": {"key": "a+b", "version-id": "v2",
                "etag": "x", "size": 3}, "reason": "DeleteObject"});
            if let Some(deletion) = deletion {
                detail["deletion-type"] = json!(deletion);
            }
            let RecordBody::Object(object) = body("e", &event("Object Deleted", detail)) else {
                panic!("{deletion:?}")
            };
            assert_eq!(object.event_name, name);
            assert!(object.is_removal());
            assert_eq!(
                (object.key.as_str(), object.version_id.as_deref()),
                ("a b", Some("v2"))
            );
            assert_eq!((object.size, object.etag), (None, None));
        }
        let expired = event(
            "Object Deleted",
            json!({"bucket": {"name": "b"}, "object": {"key": "a"}, "reason": "Lifecycle Expiration",
                "deletion-type": "Permanently Deleted"}),
        );
        assert_eq!(
            body("e", &expired),
            RecordBody::Ignored {
                bucket: Some("b".into()),
                key: Some("a".into()),
                reason: "EventBridge event \"Object Deleted\" (Lifecycle Expiration): lifecycle expirations are never propagated".into(),
            }
        );
    }

    #[test]
    fn other_detail_types_are_ignored_and_other_sources_are_not_eventbridge() {
        let deleted = event(
            "Object Restore Completed",
            json!({"bucket": {"name": "b"}, "object": {"key": "a+b"}}),
        );
        assert!(is_eventbridge(&deleted));
        assert_eq!(
            body("e", &deleted),
            RecordBody::Ignored {
                bucket: Some("b".into()),
                key: Some("a b".into()),
                reason: "EventBridge event \"Object Restore Completed\" is not an object creation".into(),
            }
        );
        let mut other = deleted.clone();
        other.insert("source".into(), json!("aws.ec2"));
        assert!(!is_eventbridge(&other));
        other.insert("source".into(), json!("aws.s3"));
        other.remove("detail-type");
        assert!(!is_eventbridge(&other));
    }
}
