//! An org's cross-account role: `roleArn` and its optional `externalId`. The org's copies
//! are made with credentials from `sts:AssumeRole` on that role (see `s3::roles`).

use super::fields::FieldReader;
/// The role an org's copies are made as: the protocol layer's type (`s3::roles` assumes it),
/// read here from the org's `roleArn` and `externalId`.
pub use crate::s3::roles::AssumedRole;

/// Longest `externalId` STS accepts.
pub const MAX_EXTERNAL_ID: usize = 1224;

/// `roleArn` and `externalId` of one org; `None` when it has no role (or after a problem).
pub(super) fn parse_role(fields: &mut FieldReader) -> Option<AssumedRole> {
    let role_arn = fields.string("roleArn", "an IAM role ARN");
    let external_id = fields.string("externalId", "a string");
    let role_arn = match role_arn {
        Some(arn) if valid_role_arn(arn) => Some(arn.to_string()),
        Some(arn) => {
            fields.problem(
                "roleArn",
                format!(
                    " {arn:?} is not a valid IAM role ARN; expected arn:<partition>:iam::<12-digit account>:role/<name>"
                ),
            );
            None
        }
        None => None,
    };
    let external_id = match external_id {
        Some(id) if !valid_external_id(id) => {
            fields.problem(
                "externalId",
                format!(
                    " {id:?} is not valid; expected 2 to {MAX_EXTERNAL_ID} letters, digits or any of _+=,.@:/-"
                ),
            );
            None
        }
        Some(_) if fields.value("roleArn").is_none() => {
            fields.problem(
                "externalId",
                " is set without roleArn; it is sent only when assuming the org's roleArn",
            );
            None
        }
        other => other.map(str::to_string),
    };
    Some(AssumedRole {
        role_arn: role_arn?,
        external_id,
    })
}

/// `arn:<partition>:iam::<12 digits>:role/<path/name>`: a partition (`aws`, `aws-cn`,
/// `aws-us-gov`, …), no region, a 12-digit account, and a role name (with an optional path)
/// of IAM's characters.
pub fn valid_role_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let partition_ok = partition
        .strip_prefix("aws")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        && partition.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        && !partition.ends_with('-');
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let name_ok = resource.strip_prefix("role/").is_some_and(|name| {
        (1..=512).contains(&name.len())
            && !name.starts_with('/')
            && !name.ends_with('/')
            && !name.contains("//")
            && name.rsplit('/').next().is_some_and(|n| n.len() <= 64)
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-/".contains(&b))
    });
    partition_ok && account_ok && name_ok
}

fn valid_external_id(id: &str) -> bool {
    (2..=MAX_EXTERNAL_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn org(fields: &str) -> Result<Option<AssumedRole>, Vec<String>> {
        let text = format!(r#"{{"customers":[{{"org":"org2","destinationBucket":"org2-export"{fields}}}]}}"#);
        Config::parse(&text, "t.json")
            .map(|c| c.customers[0].role.clone())
            .map_err(|e| e.problems)
    }

    #[test]
    fn role_and_external_id_are_read() {
        assert_eq!(org(""), Ok(None));
        assert_eq!(
            org(r#","roleArn":"arn:aws:iam::123456789012:role/exports/artifact-writer""#),
            Ok(Some(AssumedRole {
                role_arn: "arn:aws:iam::123456789012:role/exports/artifact-writer".into(),
                external_id: None,
            }))
        );
        let role =
            org(r#","roleArn":"arn:aws-us-gov:iam::123456789012:role/w","externalId":"tenant-7:x/y@z""#)
                .unwrap()
                .unwrap();
        assert_eq!(role.external_id.as_deref(), Some("tenant-7:x/y@z"));
        assert_eq!(role.account(), "123456789012");
    }

    #[test]
    fn a_bad_role_arn_is_named() {
        for arn in [
            "",
            "arn:aws:iam::12345678901:role/w",
            "arn:aws:iam::123456789012:user/w",
            "arn:aws:iam:us-east-1:123456789012:role/w",
            "arn:aws:s3:::bucket",
            "arn:azure:iam::123456789012:role/w",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/a b",
            "arn:aws:iam::123456789012:role//w",
        ] {
            assert_eq!(
                org(&format!(r#","roleArn":{arn:?}"#)),
                Err(vec![format!(
                    "customers[0] (org2): roleArn {arn:?} is not a valid IAM role ARN; expected arn:<partition>:iam::<12-digit account>:role/<name>"
                )]),
                "{arn}"
            );
        }
        assert_eq!(
            org(r#","roleArn":7"#),
            Err(vec![
                "customers[0] (org2): roleArn: expected an IAM role ARN, got a number".into()
            ])
        );
    }

    #[test]
    fn a_bad_external_id_is_named() {
        let arn = r#","roleArn":"arn:aws:iam::123456789012:role/w""#;
        let long = "x".repeat(MAX_EXTERNAL_ID + 1);
        for id in ["x", "has space", "semi;colon", long.as_str()] {
            let problems = org(&format!(r#"{arn},"externalId":{id:?}"#)).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].starts_with(&format!(
                    "customers[0] (org2): externalId {id:?} is not valid; expected 2 to 1224"
                )),
                "{problems:?}"
            );
        }
        assert!(
            org(&format!(
                r#"{arn},"externalId":"{}""#,
                "x".repeat(MAX_EXTERNAL_ID)
            ))
            .is_ok()
        );
        assert_eq!(
            org(r#","externalId":"abc""#),
            Err(vec![
                "customers[0] (org2): externalId is set without roleArn; it is sent only when assuming the org's roleArn"
                    .into()
            ])
        );
        assert_eq!(
            org(&format!(r#"{arn},"externalId":false"#)),
            Err(vec![
                "customers[0] (org2): externalId: expected a string, got a boolean".into()
            ])
        );
    }

    #[test]
    fn role_fields_round_trip() {
        let text = r#"{"customers":[{"org":"a","destinationBucket":"abc","roleArn":"arn:aws-cn:iam::123456789012:role/x","externalId":"e-1"}]}"#;
        let config = Config::parse(text, "t.json").unwrap();
        let again = Config::parse(&config.to_json("t.json").to_string(), "t.json").unwrap();
        assert_eq!(config, again);
    }
}
