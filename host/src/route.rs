//! Routing: which org an object belongs to, and whether its suffix is exported.
//!
//! Pure functions over the config; no I/O. The proposed key is always the source key (a
//! plugin may rewrite it).

use crate::config::{Config, Org};
use crate::event::SourceObject;
use crate::suffix::SuffixSet;

/// One copy destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Destination bucket.
    pub bucket: String,
    /// Destination key.
    pub key: String,
    /// What a 0.2 plugin set for this copy alone; none for every other target.
    pub options: TargetOptions,
}

/// A target's own write options (WIT 0.2): its storage class instead of the org's, and tags
/// added to the copy's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TargetOptions {
    /// The copy's storage class instead of the org's `storageClass`.
    pub storage_class: Option<String>,
    /// Tags added to the copy (a key here replaces the source's value of it).
    pub tags: Vec<(String, String)>,
}

impl TargetOptions {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.storage_class.is_none() && self.tags.is_empty()
    }
}

impl Target {
    /// `key` in `bucket`, with no options of its own.
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Target {
            bucket: bucket.into(),
            key: key.into(),
            options: TargetOptions::default(),
        }
    }
}

/// What routing proposes for one object, before the org's policy has its say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal<'c> {
    /// The owning org, if any.
    pub org: Option<&'c Org>,
    /// The target plain suffix matching proposes: the org's destination bucket under the
    /// same key; empty when the object is not selected (no org, copy-loop, suffix).
    pub proposed: Vec<Target>,
    /// Why plain matching selects nothing (empty when it proposes a target).
    pub skip_reason: String,
}

/// The org whose prefix is the longest one matching `key` ([`Config::owner`]: a lookup
/// whose cost does not grow with the number of orgs).
pub fn owner<'c>(config: &'c Config, key: &str) -> Option<&'c Org> {
    config.owner(key)
}

/// Routes `object` under `config`, with `default_suffixes` from the environment: its org,
/// and what plain suffix matching proposes.
pub fn propose<'c>(config: &'c Config, default_suffixes: &SuffixSet, object: &SourceObject) -> Proposal<'c> {
    let skip = |org, reason| Proposal {
        org,
        proposed: Vec::new(),
        skip_reason: reason,
    };
    if config.is_destination_bucket(&object.bucket) {
        return skip(
            None,
            format!(
                "bucket {} is a destination bucket; not exported again (copy-loop protection)",
                object.bucket
            ),
        );
    }
    // The owner's bucket and suffix choice come from the index's compact record: routing a
    // key reads the org's full entry only when the org has its own suffixes.
    let Some(owner) = config.routed(&object.key) else {
        return skip(None, "no org's prefix matches the key".into());
    };
    let suffixes = owner.suffixes.unwrap_or(default_suffixes);
    if suffixes.matching(&object.key).is_none() {
        return skip(
            Some(owner.org),
            format!("suffix not selected (exported: {suffixes})"),
        );
    }
    Proposal {
        org: Some(owner.org),
        proposed: vec![Target::new(
            owner.destination_bucket.to_string(),
            object.key.clone(),
        )],
        skip_reason: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            r#"{"customers":[
                {"org":"org1","destinationBucket":"org1-export"},
                {"org":"deep","destinationBucket":"deep-export","prefix":"org1/special/"},
                {"org":"xml","destinationBucket":"xml-export","suffixes":["xml"]}
            ]}"#,
            "t",
        )
        .unwrap()
    }

    fn object(bucket: &str, key: &str) -> SourceObject {
        SourceObject::created(bucket, key)
    }

    fn routed(key: &str) -> Result<(String, String), String> {
        let config = config();
        let suffixes = SuffixSet::parse_list("jpg,pdf").unwrap();
        let proposal = propose(&config, &suffixes, &object("src", key));
        match proposal.proposed.first() {
            Some(target) => Ok((proposal.org.unwrap().org.clone(), target.key.clone())),
            None => Err(proposal.skip_reason),
        }
    }

    #[test]
    fn copies_under_the_same_key() {
        assert_eq!(routed("org1/a/b.JPG"), Ok(("org1".into(), "org1/a/b.JPG".into())));
    }

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(routed("org1/special/x.pdf").unwrap().0, "deep");
        assert_eq!(routed("org1/specialx.pdf").unwrap().0, "org1");
    }

    #[test]
    fn per_org_suffixes_replace_the_default() {
        assert_eq!(routed("xml/a.xml").unwrap().0, "xml");
        assert_eq!(
            routed("xml/a.jpg").unwrap_err(),
            "suffix not selected (exported: xml)"
        );
        assert_eq!(
            routed("org1/a.xml").unwrap_err(),
            "suffix not selected (exported: jpg,pdf)"
        );
    }

    #[test]
    fn no_org_is_a_skip() {
        assert_eq!(
            routed("org9/a.jpg").unwrap_err(),
            "no org's prefix matches the key"
        );
        assert_eq!(routed("org1").unwrap_err(), "no org's prefix matches the key");
    }

    #[test]
    fn destination_buckets_are_never_sources() {
        let config = config();
        let suffixes = SuffixSet::parse_list("jpg").unwrap();
        let proposal = propose(&config, &suffixes, &object("org1-export", "org1/a.jpg"));
        assert!(proposal.proposed.is_empty());
        assert!(
            proposal.skip_reason.contains("copy-loop"),
            "{}",
            proposal.skip_reason
        );
    }
}
