//! How an org's copies are written: `storageClass`, `encryption`, `acl` and
//! `expectedBucketOwner`, parsed with field-named problems like the rest of an org.
//!
//! Each default leaves the tenant's data as it was stored: the source's storage class, the
//! destination bucket's default encryption, no ACL, no owner check.

use serde_json::{Map, Value};

use super::fields::FieldReader;
use super::kind;

/// The `storageClass` of an org's copies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StorageClass {
    /// `"source"` (the default): the source object's class, read from the source's HEAD.
    /// An export never silently changes what the tenant pays for, as S3 Replication.
    #[default]
    Source,
    /// One S3 storage class for every copy (`STANDARD_IA`, `GLACIER_IR`, …).
    Fixed(String),
}

/// The `encryption` of an org's copies; absent, the destination bucket's default applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// `{"type": "AES256"}`: SSE-S3.
    Aes256,
    /// `{"type": "aws:kms", "kmsKeyId": …, "bucketKey": …}`: SSE-KMS.
    Kms {
        /// Key ARN, alias or id; absent, S3's `aws/s3` key.
        key_id: Option<String>,
        /// `bucketKey`: an S3 Bucket Key for the copies (fewer KMS calls); absent, the
        /// bucket's setting.
        bucket_key: Option<bool>,
    },
}

/// `objectLock`: what an org's copies do with a source's Object Lock (retention, legal
/// hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ObjectLockPolicy {
    /// `"copy"` (the default, as S3 Replication): the copy gets the source's lock; a
    /// destination bucket without Object Lock fails the record (`DstObjectLockConfigMissing`)
    /// rather than keep an unlocked copy.
    #[default]
    Copy,
    /// `"ignore"`: copies are written without a lock, whatever the source has.
    Ignore,
}

impl ObjectLockPolicy {
    /// The spelling in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectLockPolicy::Copy => "copy",
            ObjectLockPolicy::Ignore => "ignore",
        }
    }
}

/// `objectLock`: `"copy"` (the default) or `"ignore"`.
pub(super) fn object_lock(fields: &mut FieldReader) -> ObjectLockPolicy {
    let choices = [ObjectLockPolicy::Copy, ObjectLockPolicy::Ignore].map(|p| (p.as_str(), p));
    fields.choice("objectLock", ObjectLockPolicy::Copy, &choices)
}

/// The canned ACL an org's copies are written with (`acl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedAcl {
    /// `bucket-owner-full-control`: for destination buckets that still use ACLs, so the
    /// bucket's owner owns the copies the function writes.
    BucketOwnerFullControl,
}

impl CannedAcl {
    /// The spelling in the config and in `x-amz-acl`.
    pub fn as_str(self) -> &'static str {
        match self {
            CannedAcl::BucketOwnerFullControl => "bucket-owner-full-control",
        }
    }
}

/// `storageClass`: `"source"` or one of the SDK's storage classes.
pub(super) fn storage_class(fields: &mut FieldReader) -> StorageClass {
    let known = aws_sdk_s3::types::StorageClass::values();
    match fields.string("storageClass", "\"source\" or an S3 storage class") {
        None => StorageClass::Source,
        Some("source") => StorageClass::Source,
        Some(class) if known.contains(&class) => StorageClass::Fixed(class.to_string()),
        Some(class) => {
            fields.problem(
                "storageClass",
                format!(
                    " {class:?} is not valid; expected \"source\" or one of {}",
                    known.join(", ")
                ),
            );
            StorageClass::Source
        }
    }
}

/// `encryption`: an object whose `type` decides which other fields it may have.
pub(super) fn encryption(who: &str, fields: &mut FieldReader) -> Option<Encryption> {
    let value = fields.value("encryption")?;
    let Value::Object(object) = value else {
        fields.problem(
            "encryption",
            format!(
                ": expected an object like {{\"type\": \"aws:kms\", \"kmsKeyId\": \"arn:…\"}} or {{\"type\": \"AES256\"}}, got {}",
                kind(value)
            ),
        );
        return None;
    };
    encryption_object(who, object, fields.problems())
}

fn encryption_object(
    who: &str,
    object: &Map<String, Value>,
    problems: &mut Vec<String>,
) -> Option<Encryption> {
    let mut fields = FieldReader::new(object, format!("{who}: encryption."), problems);
    let kms = match fields.required_string(
        "type",
        "\"aws:kms\" or \"AES256\"",
        " is missing; expected \"aws:kms\" or \"AES256\"",
    ) {
        Some("aws:kms") => true,
        Some("AES256") => false,
        Some(other) => {
            fields.problem(
                "type",
                format!(" {other:?} is not valid; expected \"aws:kms\" or \"AES256\""),
            );
            return None;
        }
        None => return None,
    };
    if !kms {
        return fields.finish().then_some(Encryption::Aes256);
    }
    let key_id = match fields.string("kmsKeyId", "a KMS key ARN, alias or id") {
        Some(id) if valid_kms_key_id(id) => Some(id.to_string()),
        Some(id) => {
            fields.problem(
                "kmsKeyId",
                format!(
                    " {id:?} is not valid; expected a key ARN (arn:aws:kms:…), an alias (alias/…) or a key id"
                ),
            );
            None
        }
        None => None,
    };
    let bucket_key = fields
        .value("bucketKey")
        .is_some()
        .then(|| fields.boolean("bucketKey", false));
    fields.finish().then_some(Encryption::Kms { key_id, bucket_key })
}

/// A key ARN or alias ARN, `alias/…`, or a key id (a UUID, or `mrk-` and 32 hex digits).
fn valid_kms_key_id(id: &str) -> bool {
    let no_space = !id.is_empty() && id.len() <= 2048 && !id.chars().any(char::is_whitespace);
    let hex_or_dash = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    no_space
        && (id.starts_with("arn:") && id.split(':').nth(2) == Some("kms")
            || id.strip_prefix("alias/").is_some_and(|a| !a.is_empty())
            || (id.len() == 36 && hex_or_dash(id))
            || id
                .strip_prefix("mrk-")
                .is_some_and(|h| h.len() == 32 && hex_or_dash(h)))
}

/// `acl`: only `"bucket-owner-full-control"`.
pub(super) fn acl(fields: &mut FieldReader) -> Option<CannedAcl> {
    let acl = CannedAcl::BucketOwnerFullControl;
    fields.choice("acl", None, &[(acl.as_str(), Some(acl))])
}

/// `expectedBucketOwner`: an AWS account id, 12 digits, as a string (a number would lose
/// leading zeros).
pub(super) fn expected_bucket_owner(fields: &mut FieldReader) -> Option<String> {
    let expected = "a 12-digit AWS account id as a string, e.g. \"111122223333\"";
    match fields.string("expectedBucketOwner", expected)? {
        id if is_account_id(id) => Some(id.to_string()),
        id => {
            fields.problem(
                "expectedBucketOwner",
                format!(" {id:?} is not valid; expected {expected}"),
            );
            None
        }
    }
}

/// `deletes`: what a removal at the source does to the org's exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Deletes {
    /// `"ignore"` (the default): removals are skipped; exports stay.
    #[default]
    Ignore,
    /// `"propagate"`: the export is deleted, in destination buckets that keep versions only
    /// (the delete leaves a delete marker that can be undone); elsewhere the record fails
    /// `DstBucketNotVersioned`.
    Propagate,
    /// `"propagate-unversioned"`: deleted in any bucket, permanently where it keeps no
    /// versions.
    PropagateUnversioned,
}

impl Deletes {
    /// The value as the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Deletes::Ignore => "ignore",
            Deletes::Propagate => "propagate",
            Deletes::PropagateUnversioned => "propagate-unversioned",
        }
    }
}

/// `deletes`: `"ignore"` (default), `"propagate"` or `"propagate-unversioned"`.
pub(super) fn deletes(fields: &mut FieldReader) -> Deletes {
    let choices =
        [Deletes::Ignore, Deletes::Propagate, Deletes::PropagateUnversioned].map(|d| (d.as_str(), d));
    fields.choice("deletes", Deletes::Ignore, &choices)
}

/// Whether `id` is an AWS account id: exactly 12 ASCII digits.
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Org};
    use super::*;

    fn org(fields: &str) -> Result<Org, Vec<String>> {
        let text = format!(r#"{{"customers":[{{"org":"a","destinationBucket":"a-out"{fields}}}]}}"#);
        Config::parse(&text, "t.json")
            .map(|c| c.customers.into_iter().next().unwrap())
            .map_err(|e| e.problems)
    }

    #[test]
    fn defaults_keep_what_the_tenant_stored() {
        let a = org("").unwrap();
        assert_eq!(a.storage_class, StorageClass::Source);
        assert_eq!(a.encryption, None);
        assert_eq!(a.acl, None);
        assert_eq!(a.expected_bucket_owner, None);
        assert_eq!(a.deletes, Deletes::Ignore);
        assert_eq!(a.object_lock, ObjectLockPolicy::Copy);
    }

    #[test]
    fn deletes() {
        for d in [Deletes::Ignore, Deletes::Propagate, Deletes::PropagateUnversioned] {
            assert_eq!(
                org(&format!(r#","deletes":"{}""#, d.as_str())).unwrap().deletes,
                d
            );
        }
        assert_eq!(
            org(r#","deletes":"always""#).unwrap_err(),
            [
                r#"customers[0] (a): deletes "always" is not valid; expected "ignore", "propagate" or "propagate-unversioned""#
            ]
        );
    }

    #[test]
    fn object_lock() {
        assert_eq!(
            org(r#","objectLock":"ignore""#).unwrap().object_lock,
            ObjectLockPolicy::Ignore
        );
        assert_eq!(
            org(r#","objectLock":"copy""#).unwrap().object_lock,
            ObjectLockPolicy::Copy
        );
        assert_eq!(
            org(r#","objectLock":"keep""#).unwrap_err(),
            [r#"customers[0] (a): objectLock "keep" is not valid; expected "copy" or "ignore""#]
        );
    }

    #[test]
    fn storage_class() {
        assert_eq!(
            org(r#","storageClass":"source""#).unwrap().storage_class,
            StorageClass::Source
        );
        assert_eq!(
            org(r#","storageClass":"GLACIER_IR""#).unwrap().storage_class,
            StorageClass::Fixed("GLACIER_IR".into())
        );
        let p = org(r#","storageClass":"standard_ia""#).unwrap_err();
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with(
                r#"customers[0] (a): storageClass "standard_ia" is not valid; expected "source" or one of "#
            ) && p[0].contains("STANDARD_IA"),
            "{p:?}"
        );
        assert_eq!(
            org(r#","storageClass":3"#).unwrap_err(),
            [r#"customers[0] (a): storageClass: expected "source" or an S3 storage class, got a number"#]
        );
    }

    #[test]
    fn encryption() {
        assert_eq!(
            org(r#","encryption":{"type":"AES256"}"#).unwrap().encryption,
            Some(Encryption::Aes256)
        );
        assert_eq!(
            org(r#","encryption":{"type":"aws:kms","kmsKeyId":"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","bucketKey":true}"#)
                .unwrap()
                .encryption,
            Some(Encryption::Kms {
                key_id: Some("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".into()),
                bucket_key: Some(true)
            })
        );
        assert_eq!(
            org(r#","encryption":{"type":"aws:kms"}"#).unwrap().encryption,
            Some(Encryption::Kms {
                key_id: None,
                bucket_key: None
            })
        );
        for id in [
            "alias/exports",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
        ] {
            assert!(
                org(&format!(
                    r#","encryption":{{"type":"aws:kms","kmsKeyId":"{id}"}}"#
                ))
                .is_ok(),
                "{id}"
            );
        }
        let cases = [
            (
                r#""AES256""#,
                r#"customers[0] (a): encryption: expected an object like {"type": "aws:kms", "kmsKeyId": "arn:…"} or {"type": "AES256"}, got a string"#,
            ),
            (
                r#"{}"#,
                r#"customers[0] (a): encryption.type is missing; expected "aws:kms" or "AES256""#,
            ),
            (
                r#"{"type":"aws:kms:dsse"}"#,
                r#"customers[0] (a): encryption.type "aws:kms:dsse" is not valid; expected "aws:kms" or "AES256""#,
            ),
            (
                r#"{"type":"AES256","kmsKeyId":"alias/x"}"#,
                r#"customers[0] (a): encryption: unknown field "kmsKeyId"; expected one of type"#,
            ),
            (
                r#"{"type":"aws:kms","kmsKeyId":"my key"}"#,
                r#"customers[0] (a): encryption.kmsKeyId "my key" is not valid; expected a key ARN (arn:aws:kms:…), an alias (alias/…) or a key id"#,
            ),
            (
                r#"{"type":"aws:kms","kmsKeyId":7}"#,
                r#"customers[0] (a): encryption.kmsKeyId: expected a KMS key ARN, alias or id, got a number"#,
            ),
            (
                r#"{"type":"aws:kms","bucketKey":"yes"}"#,
                r#"customers[0] (a): encryption.bucketKey: expected true or false, got a string"#,
            ),
            (
                r#"{"type":"aws:kms","bucketkey":true}"#,
                r#"customers[0] (a): encryption: unknown field "bucketkey"; did you mean "bucketKey"?"#,
            ),
        ];
        for (value, problem) in cases {
            assert_eq!(
                org(&format!(r#","encryption":{value}"#)).unwrap_err(),
                [problem],
                "{value}"
            );
        }
    }

    #[test]
    fn acl() {
        assert_eq!(
            org(r#","acl":"bucket-owner-full-control""#).unwrap().acl,
            Some(CannedAcl::BucketOwnerFullControl)
        );
        assert_eq!(
            org(r#","acl":"public-read""#).unwrap_err(),
            [r#"customers[0] (a): acl "public-read" is not valid; expected "bucket-owner-full-control""#]
        );
        assert_eq!(
            org(r#","acl":true"#).unwrap_err(),
            [r#"customers[0] (a): acl: expected "bucket-owner-full-control", got a boolean"#]
        );
    }

    #[test]
    fn expected_bucket_owner() {
        assert_eq!(
            org(r#","expectedBucketOwner":"011122223333""#)
                .unwrap()
                .expected_bucket_owner
                .as_deref(),
            Some("011122223333")
        );
        let expected = r#"a 12-digit AWS account id as a string, e.g. "111122223333""#;
        assert_eq!(
            org(r#","expectedBucketOwner":"1111-2222-3333""#).unwrap_err(),
            [format!(
                r#"customers[0] (a): expectedBucketOwner "1111-2222-3333" is not valid; expected {expected}"#
            )]
        );
        assert_eq!(
            org(r#","expectedBucketOwner":"11112222333""#).unwrap_err(),
            [format!(
                r#"customers[0] (a): expectedBucketOwner "11112222333" is not valid; expected {expected}"#
            )]
        );
        assert_eq!(
            org(r#","expectedBucketOwner":111122223333"#).unwrap_err(),
            [format!(
                r#"customers[0] (a): expectedBucketOwner: expected {expected}, got a number"#
            )]
        );
    }

    #[test]
    fn write_fields_round_trip() {
        let text = r#"{"customers":[{"org":"a","destinationBucket":"a-out","storageClass":"STANDARD_IA",
            "encryption":{"type":"aws:kms","kmsKeyId":"alias/x","bucketKey":false},
            "acl":"bucket-owner-full-control","expectedBucketOwner":"111122223333"},
            {"org":"b","destinationBucket":"b-out","encryption":{"type":"AES256"}}]}"#;
        let config = Config::parse(text, "t.json").unwrap();
        let again = Config::parse(&config.to_json("t.json").to_string(), "t.json").unwrap();
        assert_eq!(again, config);
    }
}
