//! Checking a plugin's answer before anything is copied: a plugin can never send an org's
//! data anywhere but the org's own buckets, nor produce keys S3 would reject.

use crate::config::Org;
use crate::route::{Target, TargetOptions};
use crate::s3::limits::MAX_KEY_BYTES;

/// Most targets one decision may return.
pub const MAX_TARGETS: usize = 32;

/// The storage classes a target may name (WIT 0.2 `target.storage-class`): S3's classes of
/// a general-purpose bucket.
pub const TARGET_STORAGE_CLASSES: [&str; 8] = [
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
];

/// Most tags an object may have (S3's limit), so most a target may add.
pub const MAX_TAGS: usize = 10;
/// Most characters of a tag key.
pub const MAX_TAG_KEY_CHARS: usize = 128;
/// Most characters of a tag value.
pub const MAX_TAG_VALUE_CHARS: usize = 256;

/// Whether `c` may appear in a tag key or value: letters, digits, spaces and `+ - = . _ : / @`.
fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "+-=._:/@".contains(c)
}

/// Checks a target's own options: a known storage class; at most [`MAX_TAGS`] tags with
/// distinct, valid keys and valid values. The error names the first violation.
fn check_options(i: usize, options: &TargetOptions) -> Result<(), String> {
    if let Some(class) = &options.storage_class
        && !TARGET_STORAGE_CLASSES.contains(&class.as_str())
    {
        return Err(format!(
            "target[{i}] storage-class {class:?} is not valid; expected one of {}",
            TARGET_STORAGE_CLASSES.join(", ")
        ));
    }
    if options.tags.len() > MAX_TAGS {
        return Err(format!(
            "target[{i}] adds {} tags; an object has at most {MAX_TAGS}",
            options.tags.len()
        ));
    }
    for (n, (key, value)) in options.tags.iter().enumerate() {
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_TAG_KEY_CHARS || !key.chars().all(tag_char) {
            return Err(format!(
                "target[{i}] tag[{n}] key {key:?} is not valid; expected 1 to {MAX_TAG_KEY_CHARS} letters, digits, spaces or + - = . _ : / @"
            ));
        }
        if key.starts_with("aws:") {
            return Err(format!(
                "target[{i}] tag[{n}] key {key:?} starts with aws:, which S3 reserves"
            ));
        }
        if value.chars().count() > MAX_TAG_VALUE_CHARS || !value.chars().all(tag_char) {
            return Err(format!(
                "target[{i}] tag[{n}] ({key}) value is not valid; expected at most {MAX_TAG_VALUE_CHARS} letters, digits, spaces or + - = . _ : / @"
            ));
        }
        if options.tags[..n].iter().any(|(earlier, _)| earlier == key) {
            return Err(format!("target[{i}] tag key {key:?} is given twice"));
        }
    }
    Ok(())
}

/// Validates `targets` for `customer`; the error names the first violation.
pub fn check_targets(customer: &Org, targets: &[Target]) -> Result<(), String> {
    if targets.len() > MAX_TARGETS {
        return Err(format!(
            "returned {} targets; at most {MAX_TARGETS} are allowed",
            targets.len()
        ));
    }
    for (i, t) in targets.iter().enumerate() {
        if !customer.may_target(&t.bucket) {
            return Err(format!(
                "target[{i}] bucket {:?} is not the org's destinationBucket or in its allowedBuckets",
                t.bucket
            ));
        }
        if t.key.is_empty() || t.key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "target[{i}] key is {} bytes; expected 1 to {MAX_KEY_BYTES} bytes of UTF-8",
                t.key.len()
            ));
        }
        check_options(i, &t.options)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn customer() -> Org {
        Config::parse(
            r#"{"customers":[{"org":"o","destinationBucket":"o-out","allowedBuckets":["o-archive"]}]}"#,
            "t",
        )
        .unwrap()
        .customers
        .remove(0)
    }

    fn t(bucket: &str, key: &str) -> Target {
        Target::new(bucket, key)
    }

    #[test]
    fn own_buckets_pass() {
        assert_eq!(
            check_targets(&customer(), &[t("o-out", "a"), t("o-archive", "b")]),
            Ok(())
        );
        assert_eq!(check_targets(&customer(), &[]), Ok(()));
    }

    #[test]
    fn foreign_bucket_empty_or_long_key_and_too_many_targets_fail() {
        let c = customer();
        assert!(
            check_targets(&c, &[t("o-out", "a"), t("other", "b")])
                .unwrap_err()
                .starts_with("target[1] bucket \"other\"")
        );
        assert!(
            check_targets(&c, &[t("o-out", "")])
                .unwrap_err()
                .contains("0 bytes")
        );
        assert!(
            check_targets(&c, &[t("o-out", &"k".repeat(1025))])
                .unwrap_err()
                .contains("1025 bytes")
        );
        assert!(check_targets(&c, &[t("o-out", &"é".repeat(512))]).is_ok());
        let many: Vec<_> = (0..33).map(|i| t("o-out", &i.to_string())).collect();
        assert_eq!(
            check_targets(&c, &many).unwrap_err(),
            "returned 33 targets; at most 32 are allowed"
        );
    }

    fn with(storage_class: Option<&str>, tags: &[(&str, &str)]) -> Target {
        Target {
            options: TargetOptions {
                storage_class: storage_class.map(str::to_string),
                tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            },
            ..t("o-out", "a")
        }
    }

    #[test]
    fn a_targets_class_and_tags_are_checked_like_its_bucket() {
        let c = customer();
        let good = with(
            Some("GLACIER_IR"),
            &[("tier", "cold"), ("owner", "team a/b@x.y+z=1")],
        );
        assert_eq!(check_targets(&c, &[good]), Ok(()));
        let bad = |target: Target| check_targets(&c, &[target]).unwrap_err();
        assert!(bad(with(Some("glacier"), &[])).contains("storage-class \"glacier\" is not valid"));
        assert!(bad(with(Some("OUTPOSTS"), &[])).contains("is not valid"));
        assert!(bad(with(None, &[("", "v")])).contains("tag[0] key \"\" is not valid"));
        assert!(bad(with(None, &[("a", "v"), ("b*", "v")])).contains("tag[1] key \"b*\""));
        assert!(bad(with(None, &[("aws:x", "v")])).contains("reserves"));
        assert!(bad(with(None, &[("k", &"v".repeat(257))])).contains("value is not valid"));
        assert!(bad(with(None, &[("k", "1"), ("k", "2")])).contains("given twice"));
        let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), String::new())).collect();
        let eleven: Vec<(&str, &str)> = eleven.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(bad(with(None, &eleven)).contains("adds 11 tags; an object has at most 10"));
        assert_eq!(check_targets(&c, &[with(None, &eleven[..10])]), Ok(()));
    }
}
