//! Checking a plugin's answer before anything is copied: a plugin can never send an org's
//! data anywhere but the org's own buckets, nor produce keys S3 would reject.

use crate::config::Org;
use crate::route::Target;
use crate::s3::limits::MAX_KEY_BYTES;

/// Most targets one decision may return.
pub const MAX_TARGETS: usize = 32;

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
        Target {
            bucket: bucket.into(),
            key: key.into(),
        }
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
}
