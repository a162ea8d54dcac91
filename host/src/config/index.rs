//! Lookups over a configuration's orgs whose cost does not grow with the number of orgs,
//! built once when the configuration is parsed ([`OrgIndex`]).
//!
//! The owner of a key is the org with the longest prefix the key starts with. Instead of
//! testing every org's prefix, the index keeps the prefixes in a hash map and the distinct
//! prefix lengths, longest first: a lookup tries the key's own prefix of each of those
//! lengths (at most one per distinct length, never more than the key's length) and stops
//! at the first that is an org's. So routing a key costs a few hash lookups whether there are
//! ten orgs or a hundred thousand. Prefixes are compared as bytes, like `str::starts_with`.

use std::collections::{HashMap, HashSet};

use super::Org;

/// Per-configuration lookups: the owner of a key, and whether a bucket is some org's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgIndex {
    /// The org (its position in the config) by prefix; the later org wins a repeated prefix,
    /// as the scan it replaces did.
    by_prefix: HashMap<Box<[u8]>, usize>,
    /// The distinct prefix lengths, longest first.
    lengths: Vec<usize>,
    /// Every bucket some org may write (`destinationBucket` and `allowedBuckets`).
    writable: HashSet<String>,
    /// The org by name.
    by_name: HashMap<String, usize>,
}

impl OrgIndex {
    /// The index of `orgs` (in config order).
    pub fn new(orgs: &[Org]) -> Self {
        let mut by_prefix: HashMap<Box<[u8]>, usize> = HashMap::with_capacity(orgs.len());
        let mut writable = HashSet::new();
        let mut by_name = HashMap::with_capacity(orgs.len());
        for (at, org) in orgs.iter().enumerate() {
            by_name.insert(org.org.clone(), at);
            by_prefix.insert(Box::from(org.prefix.as_bytes()), at);
            writable.insert(org.destination_bucket.clone());
            writable.extend(org.allowed_buckets.iter().cloned());
        }
        let mut lengths: Vec<usize> = by_prefix.keys().map(|p| p.len()).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        lengths.dedup();
        OrgIndex {
            by_prefix,
            lengths,
            writable,
            by_name,
        }
    }

    /// The position of the org whose prefix is the longest one `key` starts with.
    pub fn owner(&self, key: &str) -> Option<usize> {
        let key = key.as_bytes();
        self.lengths
            .iter()
            .filter(|&&len| len <= key.len())
            .find_map(|&len| self.by_prefix.get(&key[..len]).copied())
    }

    /// The position of the org named `name`.
    pub fn named(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Whether some org may write `bucket`.
    pub fn is_writable(&self, bucket: &str) -> bool {
        self.writable.contains(bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    /// The scan the index replaces: every org's prefix tested, the longest (the last of
    /// equals) wins.
    fn scan<'c>(config: &'c Config, key: &str) -> Option<&'c str> {
        config
            .customers
            .iter()
            .filter(|c| key.starts_with(&c.prefix))
            .max_by_key(|c| c.prefix.len())
            .map(|c| c.org.as_str())
    }

    #[test]
    fn the_owner_is_the_longest_prefix_as_the_scan_finds_it() {
        let config = Config::parse(
            r#"{"customers":[
                {"org":"org1","destinationBucket":"org1-export"},
                {"org":"deep","destinationBucket":"deep-export","prefix":"org1/special/"},
                {"org":"deeper","destinationBucket":"deeper-export","prefix":"org1/special/x"},
                {"org":"ete","destinationBucket":"ete-export","prefix":"été/"},
                {"org":"e","destinationBucket":"e-export","prefix":"é"}
            ]}"#,
            "t",
        )
        .unwrap();
        for key in [
            "org1/a.jpg",
            "org1/special/a.jpg",
            "org1/special/xy.jpg",
            "org1/specia",
            "org1",
            "org2/a.jpg",
            "été/a.jpg",
            "ét",
            "é",
            "",
        ] {
            assert_eq!(
                config.owner(key).map(|o| o.org.as_str()),
                scan(&config, key),
                "{key:?}"
            );
        }
        assert_eq!(
            config.org_named("deep").map(|o| o.prefix.as_str()),
            Some("org1/special/")
        );
        assert_eq!(config.org_named("nobody"), None);
        assert!(config.is_destination_bucket("deep-export"));
        assert!(!config.is_destination_bucket("src"));
    }
}
