use super::*;

const SAMPLE: &str = include_str!("../../../config/sample.json");

fn problems(text: &str) -> Vec<String> {
    Config::parse(text, "test.json").unwrap_err().problems
}

#[test]
fn sample_loads_exactly_as_written() {
    let config = Config::parse(SAMPLE, "sample").unwrap();
    assert_eq!(config.retry, 1);
    let summary: Vec<_> = config
        .customers
        .iter()
        .map(|c| (c.org.as_str(), c.destination_bucket.as_str(), c.prefix.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("org1", "org1-export", "org1/"),
            ("org2", "org2-export", "org2/"),
            ("org3", "org3-export", "org3/"),
            ("org4", "org4-export", "org4/"),
        ]
    );
    assert!(config.is_destination_bucket("org3-export"));
    assert!(!config.is_destination_bucket("source"));
}

#[test]
fn optional_fields() {
    let c = Config::parse(
        r#"{"customers":[{"org":"a","destinationBucket":"a-out","prefix":"tenants/a/","suffixes":["PDF",".xml"]}]}"#,
        "t",
    )
    .unwrap();
    assert_eq!(c.retry, DEFAULT_RETRY);
    assert_eq!(c.customers[0].prefix, "tenants/a/");
    assert_eq!(
        c.customers[0].suffixes.as_ref().unwrap().as_slice(),
        ["pdf", "xml"]
    );
}

#[test]
fn invalid_json_names_line_and_column() {
    let err = Config::parse("{\n  \"customers\": [,]\n}", "cfg.json").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("config cfg.json: invalid JSON at line 2 column"),
        "{text}"
    );
}

#[test]
fn no_customers() {
    assert_eq!(
        problems(r#"{"customers":[]}"#),
        ["customers: empty; expected at least one customer"]
    );
    assert!(problems(r#"{"retry":1}"#)[0].starts_with("customers: missing"));
    assert_eq!(
        problems(r#"[1]"#),
        ["expected a JSON object with \"customers\", got a list"]
    );
}

#[test]
fn empty_and_duplicate_org() {
    let p = problems(
        r#"{"customers":[{"org":"","destinationBucket":"abc"},{"org":"o","destinationBucket":"abc"},{"org":"o","destinationBucket":"def"}]}"#,
    );
    assert_eq!(
        p,
        [
            "customers[0]: org is empty",
            // Named as written: the entry that did not parse does not shift them.
            "customers[2] (o): org is a duplicate of customers[1]",
            "customers[2] (o): prefix \"o/\" is already used by org o",
        ]
    );
}

#[test]
fn duplicate_prefix_names_both_orgs() {
    let p = problems(
        r#"{"customers":[{"org":"a","destinationBucket":"abc","prefix":"x/"},{"org":"b","destinationBucket":"def","prefix":"x/"}]}"#,
    );
    assert_eq!(p, ["customers[1] (b): prefix \"x/\" is already used by org a"]);
}

#[test]
fn bad_bucket_names() {
    for (bucket, why) in [
        ("Org_3", "lowercase letters, digits, dots, hyphens"),
        ("ab", "3 to 63 characters"),
        ("-abc", "must begin and end with a letter or digit"),
        ("a..b", "no two adjacent dots"),
        ("192.168.1.1", "must not look like an IP address"),
        ("xn--abc", "uses a prefix or suffix S3 reserves"),
    ] {
        let p = problems(&format!(
            r#"{{"customers":[{{"org":"org3","destinationBucket":"{bucket}"}}]}}"#
        ));
        assert_eq!(
            p,
            [format!(
                "customers[0] (org3): destinationBucket {bucket:?} is not a valid S3 bucket name ({why})"
            )]
        );
    }
}

#[test]
fn retry_must_be_a_small_whole_number() {
    let base = r#""customers":[{"org":"a","destinationBucket":"abc"}]"#;
    assert_eq!(
        problems(&format!("{{{base},\"retry\":-1}}")),
        ["retry: -1 is not allowed; expected a whole number 0 to 10"]
    );
    assert_eq!(
        problems(&format!("{{{base},\"retry\":1.5}}")),
        ["retry: 1.5 is not allowed; expected a whole number 0 to 10"]
    );
    assert_eq!(
        problems(&format!("{{{base},\"retry\":\"2\"}}")),
        ["retry: expected a whole number 0 to 10, got a string"]
    );
    assert_eq!(
        problems(&format!("{{{base},\"retry\":11}}")),
        ["retry: 11 is too large; expected 0 to 10"]
    );
    assert_eq!(
        Config::parse(&format!("{{{base},\"retry\":0}}"), "t")
            .unwrap()
            .retry,
        0
    );
}

#[test]
fn unknown_fields_get_a_hint() {
    let p = problems(r#"{"customers":[{"org":"a","destinationbucket":"abc"}],"retries":2,"zzz":1}"#);
    assert_eq!(
        p,
        [
            "unknown field \"retries\"; did you mean \"retry\"?",
            "unknown field \"zzz\"; expected one of customers, retry",
            "customers[0] (a): unknown field \"destinationbucket\"; did you mean \"destinationBucket\"?",
            "customers[0] (a): destinationBucket is missing",
        ]
    );
}

#[test]
fn bad_suffixes_and_prefix() {
    let p = problems(
        r#"{"customers":[{"org":"a","destinationBucket":"abc","suffixes":[1]},{"org":"b","destinationBucket":"abd","prefix":"","suffixes":["a b"]}]}"#,
    );
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(p[0].starts_with("customers[0] (a): suffixes: expected a list of strings"));
    assert!(p[1].starts_with("customers[1] (b): prefix is empty"));
    assert!(p[2].starts_with("customers[1] (b): suffixes: suffix \"a b\" is not valid"));
}

#[test]
fn display_is_one_line() {
    let err = Config::parse(r#"{"customers":[{"org":"a"}],"retry":-2}"#, "s3://cfg/x.json").unwrap_err();
    let text = err.to_string();
    assert!(!text.contains('\n'));
    assert!(text.starts_with("config s3://cfg/x.json: retry: -2"), "{text}");
}

/// Every field the org parser reads is a known field: a typo of any of them gets a "did you
/// mean" naming it (the known fields are the ones the parser asks for, no separate list).
#[test]
fn a_typo_of_any_org_field_names_the_field() {
    for field in [
        "org",
        "destinationBucket",
        "prefix",
        "suffixes",
        "plugin",
        "allowedBuckets",
        "roleArn",
        "externalId",
        "storageClass",
        "encryption",
        "acl",
        "expectedBucketOwner",
        "objectLock",
    ] {
        let typo = format!("{field}x");
        let p = problems(&format!(
            r#"{{"customers":[{{"org":"a","destinationBucket":"abc","{typo}":1}}]}}"#
        ));
        assert_eq!(
            p,
            [format!(
                "customers[0] (a): unknown field {typo:?}; did you mean {field:?}?"
            )]
        );
    }
}

/// A config with every field of an org set has no unknown field.
#[test]
fn every_org_field_is_known() {
    let text = r#"{"customers":[{"org":"a","destinationBucket":"a-out","prefix":"a/","suffixes":["pdf"],
        "plugin":{"source":"p.wasm","sha256":"00000000000000000000000000000000000000000000000000000000000000aa",
            "settings":{},"timeoutMs":5,"maxMemoryMiB":8,"maxInstructions":10,"precompiled":false,"onError":"skip"},
        "allowedBuckets":["a-other"],"roleArn":"arn:aws:iam::123456789012:role/x","externalId":"e-1",
        "storageClass":"STANDARD_IA","encryption":{"type":"aws:kms","kmsKeyId":"alias/x","bucketKey":true},
        "acl":"bucket-owner-full-control","expectedBucketOwner":"111122223333","objectLock":"ignore"}],"retry":2}"#;
    let config = Config::parse(text, "t.json").unwrap();
    assert_eq!(config.customers[0].allowed_buckets, ["a-other"]);
}
