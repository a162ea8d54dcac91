//! Events as AWS would send them for objects a test uploaded, generated from the
//! fixtures in `tests/fixtures/events/` so their shape stays AWS's.

use serde_json::{Value, json};

use super::world::Uploaded;

pub fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/events")
        .join(name)
}

pub fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture_path(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Encodes a key the way S3 notifications do.
pub use artifact_export::s3::keys::encode_notification_key as encode_key;

/// One S3 notification record for an uploaded object (`ObjectCreated:Put`).
pub fn s3_record(object: &Uploaded) -> Value {
    let mut record = fixture("s3-put.json")["Records"][0].clone();
    record["s3"]["bucket"]["name"] = json!(object.bucket);
    record["s3"]["bucket"]["arn"] = json!(format!("arn:aws:s3:::{}", object.bucket));
    record["s3"]["object"]["key"] = json!(encode_key(&object.key));
    record["s3"]["object"]["size"] = json!(object.size);
    record["s3"]["object"]["eTag"] = json!(object.etag);
    record
}

/// An S3 notification carrying one record per object.
pub fn s3_event(objects: &[&Uploaded]) -> Value {
    json!({ "Records": objects.iter().map(|o| s3_record(o)).collect::<Vec<_>>() })
}

/// An SQS event whose messages carry the given bodies (serialized as S3 does).
pub fn sqs_event(messages: &[(&str, Value)]) -> Value {
    let template = fixture("sqs-s3.json")["Records"][0].clone();
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            let mut record = template.clone();
            record["messageId"] = json!(id);
            record["body"] = json!(body.to_string());
            record
        })
        .collect();
    json!({ "Records": records })
}
