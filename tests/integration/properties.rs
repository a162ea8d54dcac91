//! Property-based tests (proptest) of the parsers that take outside input: events, configs,
//! notification keys and copy sources, Batch Operations bucket ARNs. No input may panic;
//! what is encoded decodes back; a config that validates round-trips through
//! `Config::to_json`. Case counts are modest so the whole file runs in seconds; a failure
//! prints the shrunk input (and proptest keeps no regression files here: `failure_persistence`
//! is off so test runs never write into the source tree).

use artifact_export::config::Config;
use artifact_export::event::{RecordBody, bucket_from_arn, parse_event, parse_event_text};
use artifact_export::s3::keys::{copy_source, decode_notification_key, encode_notification_key};
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Field names and values the parsers look for, so generated JSON reaches deep branches
/// instead of failing at the first lookup.
const WORDS: &[&str] = &[
    "Records",
    "eventSource",
    "EventSource",
    "aws:s3",
    "aws:sqs",
    "aws:sns",
    "aws.s3",
    "body",
    "s3",
    "bucket",
    "name",
    "object",
    "key",
    "size",
    "eTag",
    "versionId",
    "eventName",
    "ObjectCreated:Put",
    "ObjectRemoved:Delete",
    "eventTime",
    "messageId",
    "Sns",
    "Message",
    "Type",
    "Notification",
    "Event",
    "s3:TestEvent",
    "Bucket",
    "source",
    "detail-type",
    "Object Created",
    "detail",
    "invocationSchemaVersion",
    "1.0",
    "2.0",
    "invocationId",
    "job",
    "userArguments",
    "treatMissingKeysAs",
    "Succeeded",
    "tasks",
    "taskId",
    "s3Key",
    "s3Bucket",
    "s3BucketArn",
    "arn:aws:s3:::b",
    "s3VersionId",
    "customers",
    "retry",
    "org",
    "destinationBucket",
    "prefix",
    "suffixes",
    "plugin",
    "allowedBuckets",
    "storageClass",
    "encryption",
    "kmsKeyId",
    "bucketKey",
    "aws:kms",
    "AES256",
    "acl",
    "bucket-owner-full-control",
    "expectedBucketOwner",
    "sha256",
    "settings",
    "timeoutMs",
    "maxMemoryMiB",
    "onError",
    "fail",
    "skip",
    "default",
    "s3://bkt/k.wasm",
    "a+b%2Bc%C3%A9.pdf",
    "%zz",
    "%",
    "org1/",
    "org1",
    "jpg",
    "",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

/// JSON built from the parsers' vocabulary, nested a few levels, with JSON documents as
/// string leaves too (SQS bodies and SNS messages are JSON inside a string).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        word().prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::vec((word(), inner.clone()), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
            inner.prop_map(|v| Value::from(v.to_string())),
        ]
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn no_event_text_panics(text in any::<String>()) {
        let _ = parse_event_text(&text);
    }

    #[test]
    fn no_event_json_panics_and_every_record_is_accounted_for(value in json_value()) {
        if let Ok(parsed) = parse_event(&value) {
            for record in &parsed.records {
                prop_assert!(!record.locator.is_empty());
                if let RecordBody::Invalid { reason } = &record.body {
                    prop_assert!(!reason.is_empty());
                }
            }
        }
        let _ = parse_event_text(&value.to_string());
    }

    #[test]
    fn a_records_list_reads_the_same_from_text_as_from_a_tree(
        records in proptest::collection::vec(json_value(), 0..6),
        other in json_value(),
    ) {
        let event = serde_json::json!({"Records": records, "other": other});
        prop_assert_eq!(parse_event_text(&event.to_string()), parse_event(&event));
    }

    #[test]
    fn no_config_panics(text in any::<String>(), value in json_value()) {
        let _ = Config::parse(&text, "config.json");
        let _ = Config::parse(&value.to_string(), "s3://config-bucket/dir/config.json");
    }

    #[test]
    fn no_key_decoding_panics(text in any::<String>()) {
        if let Ok(key) = decode_notification_key(&text) {
            prop_assert!(!key.is_empty());
        }
    }
}

/// A valid S3 key: 1 to 1024 bytes of UTF-8 (any characters, control characters included).
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9/ +%._~*()!'$&=;:@,?#-]{1,40}",
        "\\PC{1,30}",
    ]
    .prop_filter("S3 keys are 1 to 1024 bytes", |k| (1..=1024).contains(&k.len()))
}

/// Encodes `key` as a notification might: `+` for spaces, `%XX` in either case, and any
/// byte outside `%` `+` and controls left as it is or escaped at the sender's choice (S3
/// and EventBridge do not escape exactly the same set).
fn loosely_encoded(key: &str, escape: &[bool], upper: &[bool]) -> String {
    let mut out = String::new();
    for (i, c) in key.chars().enumerate() {
        let pick = |v: &[bool]| v.get(i % v.len().max(1)).copied().unwrap_or(true);
        let must = matches!(c, '%' | '+') || c.is_control();
        if c == ' ' && !pick(escape) {
            out.push('+');
        } else if must || pick(escape) {
            for b in c.to_string().bytes() {
                if pick(upper) {
                    out.push_str(&format!("%{b:02X}"));
                } else {
                    out.push_str(&format!("%{b:02x}"));
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn decoding_an_encoded_key_gives_the_key_back(key in key()) {
        prop_assert_eq!(decode_notification_key(&encode_notification_key(&key)).unwrap(), key);
    }

    #[test]
    fn decoding_any_notification_spelling_gives_the_key_back(
        key in key(),
        escape in proptest::collection::vec(any::<bool>(), 1..8),
        upper in proptest::collection::vec(any::<bool>(), 1..8),
    ) {
        let encoded = loosely_encoded(&key, &escape, &upper);
        prop_assert_eq!(decode_notification_key(&encoded).unwrap(), key);
    }

    #[test]
    fn a_copy_source_names_the_bucket_and_the_exact_key(key in key(), bucket in "[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]") {
        let source = copy_source(&bucket, &key);
        let encoded = source.strip_prefix(&format!("{bucket}/")).expect("bucket/ first");
        // Only unreserved characters, `/` and escapes: nothing S3 or an HTTP stack would
        // reinterpret (no `?`, `#`, `+`, space, `%` other than escapes).
        prop_assert!(
            encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)),
            "{}", encoded
        );
        prop_assert_eq!(percent_decode_str(encoded).decode_utf8().unwrap(), key.as_str());
    }
}

/// `aws`, or `aws-` with dash-separated groups: every partition AWS has (`aws-cn`,
/// `aws-us-gov`, `aws-iso`, `aws-iso-b`, `aws-eusc`, …) and ones it may add.
fn partition() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            &[
                "aws",
                "aws-cn",
                "aws-us-gov",
                "aws-iso",
                "aws-iso-b",
                "aws-iso-e",
                "aws-iso-f",
                "aws-eusc"
            ][..]
        )
        .prop_map(str::to_string),
        "aws(-[a-z0-9]{1,6}){0,3}",
    ]
}

/// A valid bucket name (no `..`, letters or digits at both ends).
fn bucket() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9-]{1,40}(\\.[a-z0-9][a-z0-9-]{0,10}){0,2}[a-z0-9]"
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn every_partitions_bucket_arn_names_its_bucket(p in partition(), b in bucket()) {
        let arn = format!("arn:{p}:s3:::{b}");
        prop_assert_eq!(bucket_from_arn(&arn), Ok(b.as_str()));
        // And through a Batch Operations event (schema 1.0): the task's source bucket.
        let event = json!({"invocationSchemaVersion": "1.0", "invocationId": "i", "job": {"id": "j"},
                           "tasks": [{"taskId": "t", "s3Key": "org1/a.jpg", "s3BucketArn": arn}]});
        let parsed = parse_event(&event).unwrap();
        match &parsed.records[0].body {
            RecordBody::Object(o) => {
                prop_assert_eq!(&o.bucket, &b);
            }
            other => {
                prop_assert!(false, "{:?}", other);
            }
        }
    }

    #[test]
    fn an_arn_accepted_is_exactly_a_bucket_arn(text in prop_oneof![
        any::<String>(),
        "arn:[a-z0-9-]{0,12}:[a-z0-9]{0,3}:[a-z0-9-]{0,3}:[0-9]{0,3}:[a-zA-Z0-9./:*-]{0,12}",
    ]) {
        match bucket_from_arn(&text) {
            Ok(b) => {
                prop_assert!(!b.is_empty() && !b.contains('/') && !b.contains(':'));
                let partition = text.strip_prefix("arn:").and_then(|r| r.strip_suffix(&format!(":s3:::{b}")));
                prop_assert!(
                    partition.is_some_and(|p| p == "aws" || p.starts_with("aws-")),
                    "{:?}", text
                );
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(!message.contains('\n'), "one line: {:?}", message);
            }
        }
    }
}

/// An org's write options (`storageClass`, `encryption`, `acl`, `expectedBucketOwner`),
/// each absent, valid or broken.
fn write_fields() -> impl Strategy<Value = Map<String, Value>> {
    let class = proptest::option::weighted(
        0.3,
        prop_oneof![
            24 => proptest::sample::select(&["source", "STANDARD", "STANDARD_IA", "GLACIER_IR", "INTELLIGENT_TIERING"][..])
                .prop_map(Value::from),
            1 => any::<String>().prop_map(Value::from),
        ],
    );
    let encryption = proptest::option::weighted(
        0.3,
        prop_oneof![
            6 => Just(json!({"type": "AES256"})),
            6 => (
                proptest::option::weighted(0.7, prop_oneof![
                    8 => Just("alias/exports".to_string()),
                    8 => Just("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".to_string()),
                    1 => any::<String>(),
                ]),
                proptest::option::of(any::<bool>()),
            )
                .prop_map(|(key, bucket_key)| {
                    let mut e = json!({"type": "aws:kms"});
                    if let Some(k) = key {
                        e["kmsKeyId"] = k.into();
                    }
                    if let Some(b) = bucket_key {
                        e["bucketKey"] = b.into();
                    }
                    e
                }),
            1 => any::<String>().prop_map(|t| json!({"type": t})),
        ],
    );
    let acl = proptest::option::weighted(
        0.3,
        prop_oneof![
            12 => Just(Value::from("bucket-owner-full-control")),
            1 => any::<String>().prop_map(Value::from),
        ],
    );
    let owner = proptest::option::weighted(
        0.3,
        prop_oneof![
            12 => "[0-9]{12}".prop_map(Value::from),
            1 => any::<String>().prop_map(Value::from),
        ],
    );
    (class, encryption, acl, owner).prop_map(|(class, encryption, acl, owner)| {
        let mut fields = Map::new();
        for (name, value) in [
            ("storageClass", class),
            ("encryption", encryption),
            ("acl", acl),
            ("expectedBucketOwner", owner),
        ] {
            if let Some(v) = value {
                fields.insert(name.into(), v);
            }
        }
        fields
    })
}

/// A config document: mostly valid fields, sometimes a broken one, so both the accepted and
/// the refused paths are exercised.
fn config_document() -> impl Strategy<Value = Value> {
    let org = prop_oneof![16 => "[a-zA-Z0-9._-]{1,12}", 1 => any::<String>()];
    let bucket_name = prop_oneof![16 => bucket(), 1 => any::<String>()];
    let suffixes = proptest::option::of(proptest::collection::vec(
        prop_oneof![16 => "\\.?[a-zA-Z0-9_-]{1,5}(\\.[a-z0-9]{1,3})?", 1 => any::<String>()],
        1..4,
    ));
    let plugin = proptest::option::weighted(
        0.4,
        (
            prop_oneof![
                3 => Just("plugins/p.wasm".to_string()),
                3 => Just("./p.cwasm".to_string()),
                3 => Just("../up/p.wasm".to_string()),
                3 => Just("/abs/p.wasm".to_string()),
                3 => bucket().prop_map(|b| format!("s3://{b}/plugins/p.cwasm")),
                1 => any::<String>(),
            ],
            proptest::option::weighted(0.8, prop_oneof![12 => "[0-9a-f]{64}", 1 => any::<String>()]),
            proptest::option::of(proptest::collection::btree_map(
                "[a-z]{1,5}",
                prop_oneof![
                    any::<i64>().prop_map(Value::from),
                    any::<bool>().prop_map(Value::from),
                    any::<String>().prop_map(Value::from),
                ],
                0..4,
            )),
            proptest::option::of(0u64..10_200),
            proptest::option::of(0u64..1040),
            proptest::option::of(proptest::sample::select(
                &["fail", "skip", "default", "fail", "skip", "default", "other"][..],
            )),
        ),
    );
    let customer = (
        org,
        bucket_name,
        proptest::option::of(prop_oneof![16 => "[a-z0-9/]{1,8}", 1 => any::<String>()]),
        suffixes,
        plugin,
        proptest::option::of(proptest::collection::vec(bucket(), 0..3)),
        write_fields(),
    )
        .prop_map(|(org, dest, prefix, suffixes, plugin, allowed, write)| {
            let mut c = Map::new();
            c.insert("org".into(), org.into());
            c.insert("destinationBucket".into(), dest.into());
            if let Some(p) = prefix {
                c.insert("prefix".into(), p.into());
            }
            if let Some(s) = suffixes {
                c.insert("suffixes".into(), s.into());
            }
            if let Some((source, sha, settings, timeout, memory, on_error)) = plugin {
                let mut p = Map::new();
                p.insert("source".into(), source.into());
                if let Some(sha) = sha {
                    p.insert("sha256".into(), sha.into());
                }
                if let Some(settings) = settings {
                    p.insert("settings".into(), Value::Object(settings.into_iter().collect()));
                }
                if let Some(t) = timeout {
                    p.insert("timeoutMs".into(), t.into());
                }
                if let Some(m) = memory {
                    p.insert("maxMemoryMiB".into(), m.into());
                }
                if let Some(e) = on_error {
                    p.insert("onError".into(), e.into());
                }
                c.insert("plugin".into(), Value::Object(p));
            }
            if let Some(a) = allowed {
                c.insert("allowedBuckets".into(), a.into());
            }
            c.extend(write);
            Value::Object(c)
        });
    (
        proptest::collection::vec(customer, 1..4),
        proptest::option::of(0u64..12),
    )
        .prop_map(|(customers, retry)| {
            let mut top = json!({"customers": customers});
            if let Some(r) = retry {
                top["retry"] = r.into();
            }
            top
        })
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn a_config_that_validates_round_trips(
        doc in config_document(),
        origin in proptest::sample::select(&[
            "config.json",
            "conf/config.json",
            "/etc/export/config.json",
            "s3://config-bucket/config.json",
            "s3://config-bucket/dir/sub/config.json",
        ][..]),
    ) {
        let Ok(parsed) = Config::parse(&doc.to_string(), origin) else {
            return Ok(());
        };
        let written = parsed.to_json(origin).to_string();
        let again = Config::parse(&written, origin);
        prop_assert_eq!(again.as_ref(), Ok(&parsed), "{} -> {}", doc, written);
    }
}

/// The generator must produce valid configs often enough for the round trip to mean
/// something: a fixed sample of its output is checked for a share of accepted documents.
#[test]
fn the_config_generator_produces_valid_configs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(config(1), TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let strategy = config_document();
    let valid = (0..300)
        .filter(|_| {
            let doc = strategy.new_tree(&mut runner).unwrap().current();
            Config::parse(&doc.to_string(), "conf/config.json").is_ok()
        })
        .count();
    assert!(valid >= 100, "only {valid} of 300 generated configs are valid");
}
