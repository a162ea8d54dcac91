//! Lookups over a configuration's orgs whose cost does not grow with the number of orgs,
//! built once when the configuration is parsed ([`OrgIndex`]).
//!
//! The owner of a key is the org with the longest prefix the key starts with. Instead of
//! testing every org's prefix, the index keeps the distinct prefix lengths, longest first,
//! and a hash table of the prefixes: a lookup tries the key's own prefix of each of those
//! lengths (at most one per distinct length, never more than the key's length) and stops at
//! the first that is an org's. Prefixes are compared as bytes, like `str::starts_with`.
//!
//! The table is laid out for the cache, since at 100,000 orgs a lookup's cost is its cache
//! misses: an open-addressing array of `u64` slots (a 32-bit tag of the prefix's hash and
//! where its record starts), and one contiguous record area holding, per org, its position,
//! its prefix and its destination bucket side by side. A lookup reads one slot (a hash
//! whose tag differs is passed over without reading any record) and, on a tag hit, one
//! record: the prefix bytes confirm the match and the bucket a route needs is right there.
//! Routing reads an org's full entry ([`super::Org`]) only for what the record does not hold
//! (its own suffix list).

use std::collections::{HashMap, HashSet};

use super::{Config, Org};
use crate::suffix::SuffixSet;

/// A record's fixed part: org position (u32), prefix length (u32), bucket length (u8),
/// flags (u8); the prefix bytes and then the bucket bytes follow.
const HEADER: usize = 10;
/// Flag: the org has its own `suffixes`.
const OWN_SUFFIXES: u8 = 1;

/// Per-configuration lookups: the owner of a key, and whether a bucket is some org's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgIndex {
    /// Open addressing with linear probing, a power of two long (at most 80% full): `0` is
    /// empty, otherwise the hash's high 32 bits (the tag) and the record's start in
    /// `records` plus one.
    slots: Vec<u64>,
    /// One bit per hash class (about 8 bits per prefix, so small enough to stay in cache):
    /// set where some prefix's hash falls. A clear bit answers "no org has this prefix"
    /// without reading `slots`: the lengths a key has no org at cost no table read.
    filter: Vec<u64>,
    /// Every org's record, one after the other (see [`HEADER`]).
    records: Vec<u8>,
    /// The distinct prefix lengths, longest first.
    lengths: Vec<usize>,
    /// Masks every hash: all bits in use; fewer in tests, to force collisions.
    hash_mask: u64,
    /// Every bucket some org may write (`destinationBucket` and `allowedBuckets`).
    writable: HashSet<String>,
    /// The org by name.
    by_name: HashMap<String, usize>,
}

/// What routing needs of a key's owner, read from its record alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'i> {
    /// The org's position in the config.
    pub at: usize,
    /// Its `destinationBucket`.
    pub destination_bucket: &'i str,
    /// Whether it has its own `suffixes`.
    pub own_suffixes: bool,
}

impl OrgIndex {
    /// The index of `orgs` (in config order).
    pub fn new(orgs: &[Org]) -> Self {
        Self::with_hash_mask(orgs, u64::MAX)
    }

    /// [`OrgIndex::new`] with every prefix hash masked by `hash_mask` (tests: `0` puts
    /// every prefix in one probe chain with one tag).
    fn with_hash_mask(orgs: &[Org], hash_mask: u64) -> Self {
        let mut index = OrgIndex {
            slots: vec![0; (orgs.len() + orgs.len() / 4 + 1).next_power_of_two().max(8)],
            filter: vec![0; (orgs.len() * 8).next_power_of_two().max(64) / 64],
            records: Vec::with_capacity(orgs.iter().map(|o| HEADER + o.prefix.len() + 32).sum()),
            lengths: Vec::new(),
            hash_mask,
            writable: HashSet::new(),
            by_name: HashMap::with_capacity(orgs.len()),
        };
        for (at, org) in orgs.iter().enumerate() {
            index.by_name.insert(org.org.clone(), at);
            index.insert(at, org);
            index.writable.insert(org.destination_bucket.clone());
            index.writable.extend(org.allowed_buckets.iter().cloned());
            index.lengths.push(org.prefix.len());
        }
        index.lengths.sort_unstable_by(|a, b| b.cmp(a));
        index.lengths.dedup();
        index
    }

    /// Adds `org`'s record; a later org with the same prefix takes its slot, as the scan the
    /// index replaced let the later of two equal prefixes win.
    fn insert(&mut self, at: usize, org: &Org) {
        let prefix = org.prefix.as_bytes();
        let bucket = org.destination_bucket.as_bytes();
        let start = self.records.len();
        let flags = if org.suffixes.is_some() { OWN_SUFFIXES } else { 0 };
        let too_big = "the org index holds at most 4 GiB of prefixes and 4 billion orgs";
        self.records
            .extend_from_slice(&u32::try_from(at).expect(too_big).to_le_bytes());
        self.records
            .extend_from_slice(&u32::try_from(prefix.len()).expect(too_big).to_le_bytes());
        // Bucket names are at most 63 bytes (validated before the index is built).
        self.records
            .push(u8::try_from(bucket.len()).expect("a bucket name is at most 63 bytes"));
        self.records.push(flags);
        self.records.extend_from_slice(prefix);
        self.records.extend_from_slice(bucket);
        let hash = self.hash(prefix);
        let (word, bit) = self.filter_bit(hash);
        self.filter[word] |= bit;
        let slot = (hash & 0xffff_ffff_0000_0000) | u64::from(u32::try_from(start + 1).expect(too_big));
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let current = self.slots[i];
            if current == 0 || (current >> 32 == hash >> 32 && self.record_prefix(current) == Some(prefix)) {
                self.slots[i] = slot;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn hash(&self, bytes: &[u8]) -> u64 {
        prefix_hash(bytes) & self.hash_mask
    }

    /// The word and bit of `hash` in `filter` (bits 16 and up: the slot's position takes the
    /// lowest).
    fn filter_bit(&self, hash: u64) -> (usize, u64) {
        let class = (hash >> 16) as usize & (self.filter.len() * 64 - 1);
        (class / 64, 1 << (class % 64))
    }

    /// The record a slot points at: its start in `records`.
    fn record_start(slot: u64) -> usize {
        (slot & 0xffff_ffff) as usize - 1
    }

    /// The prefix of the record `slot` points at.
    fn record_prefix(&self, slot: u64) -> Option<&[u8]> {
        let start = Self::record_start(slot);
        let header = self.records.get(start..start + HEADER)?;
        let len = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
        self.records.get(start + HEADER..start + HEADER + len)
    }

    /// The org whose prefix is exactly `prefix`, looked up under `hash`.
    fn find(&self, prefix: &[u8], hash: u64) -> Option<Owner<'_>> {
        let (word, bit) = self.filter_bit(hash);
        if self.filter[word] & bit == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            if slot >> 32 == hash >> 32 {
                let start = Self::record_start(slot);
                let header = &self.records[start..start + HEADER];
                let len = u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize;
                let body = &self.records[start + HEADER..];
                if len == prefix.len() && &body[..len] == prefix {
                    let bucket_len = usize::from(header[8]);
                    return Some(Owner {
                        at: u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize,
                        // Stored from a `String`: always UTF-8.
                        destination_bucket: std::str::from_utf8(&body[len..len + bucket_len])
                            .unwrap_or_default(),
                        own_suffixes: header[9] & OWN_SUFFIXES != 0,
                    });
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// The org whose prefix is the longest one `key` starts with.
    pub fn owner_of(&self, key: &str) -> Option<Owner<'_>> {
        let key = key.as_bytes();
        self.lengths
            .iter()
            .filter(|&&len| len <= key.len())
            .find_map(|&len| self.find(&key[..len], self.hash(&key[..len])))
    }

    /// The position of the org whose prefix is the longest one `key` starts with.
    pub fn owner(&self, key: &str) -> Option<usize> {
        self.owner_of(key).map(|o| o.at)
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

/// A key's owner as routing reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed<'c> {
    /// The owning org.
    pub org: &'c Org,
    /// Its `destinationBucket` (read from the index's record, not from `org`).
    pub destination_bucket: &'c str,
    /// Its own `suffixes`, when it has them.
    pub suffixes: Option<&'c SuffixSet>,
}

impl Config {
    /// [`Config::owner`] with what routing needs of the owner, read from the index's compact
    /// record: the org's full entry is read only when it has its own suffixes.
    pub fn routed(&self, key: &str) -> Option<Routed<'_>> {
        let owner = self.index.owner_of(key)?;
        let org = self.customers.get(owner.at)?;
        Some(Routed {
            org,
            destination_bucket: owner.destination_bucket,
            suffixes: if owner.own_suffixes {
                org.suffixes.as_ref()
            } else {
                None
            },
        })
    }
}

/// A fast hash of a short byte string (prefixes are a few dozen bytes): eight bytes at a
/// time, each folded in with a 64x64->128-bit multiply, the length mixed in first so that
/// the zero padding of the last word cannot make two lengths equal. Fixed, so an index is
/// the same on every run; keys cannot steer it, since only the config's prefixes are stored.
fn prefix_hash(bytes: &[u8]) -> u64 {
    const K1: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0xbf58_476d_1ce4_e5b9;
    fn fold(a: u64, b: u64) -> u64 {
        let product = u128::from(a).wrapping_mul(u128::from(b));
        (product as u64) ^ ((product >> 64) as u64)
    }
    let mut h = fold(bytes.len() as u64 ^ K2, K1);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        h = fold(h ^ u64::from_le_bytes(word.try_into().unwrap()), K1);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = fold(h ^ u64::from_le_bytes(last), K1);
    }
    fold(h, K2)
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::OrgIndex;

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

    fn config() -> Config {
        Config::parse(
            r#"{"customers":[
                {"org":"org1","destinationBucket":"org1-export"},
                {"org":"deep","destinationBucket":"deep-export","prefix":"org1/special/"},
                {"org":"deeper","destinationBucket":"deeper-export","prefix":"org1/special/x"},
                {"org":"ete","destinationBucket":"ete-export","prefix":"été/"},
                {"org":"e","destinationBucket":"e-export","prefix":"é","suffixes":["xml"]},
                {"org":"org2","destinationBucket":"org2-export"},
                {"org":"long","destinationBucket":"long-export","prefix":"a/very/long/prefix/of/more/than/thirty-two/bytes/"}
            ]}"#,
            "t",
        )
        .unwrap()
    }

    const KEYS: [&str; 16] = [
        "org1/a.jpg",
        "org1/special/a.jpg",
        "org1/special/xy.jpg",
        "org1/specia",
        "org1",
        "org2/a.jpg",
        "org2",
        "org3/a.jpg",
        "été/a.jpg",
        "ét",
        "é",
        "",
        "a/very/long/prefix/of/more/than/thirty-two/bytes/x.pdf",
        "a/very/long/prefix/of/more/than/thirty-two/bytes",
        "a/very/long/prefix/of/more/than/thirty-two/byteZ/x.pdf",
        "org1/special/x",
    ];

    #[test]
    fn the_owner_is_the_longest_prefix_as_the_scan_finds_it() {
        let config = config();
        for key in KEYS {
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

    /// The record holds what routing reads: the owner's bucket and whether it has its own
    /// suffixes, for every org.
    #[test]
    fn the_record_holds_the_bucket_and_the_suffix_flag() {
        let config = config();
        for (at, org) in config.customers.iter().enumerate() {
            let key = format!("{}rest", org.prefix);
            let index = OrgIndex::new(&config.customers);
            let owner = index.owner_of(&key).unwrap();
            assert_eq!(owner.at, at, "{key}");
            assert_eq!(owner.destination_bucket, org.destination_bucket, "{key}");
            assert_eq!(owner.own_suffixes, org.suffixes.is_some(), "{key}");
        }
    }

    /// Prefixes whose hashes are equal (all of them, or in four classes) share probe chains
    /// and tags: only the prefix bytes in the record tell them apart.
    #[test]
    fn colliding_hashes_are_told_apart_by_the_prefix_bytes() {
        let config = config();
        for mask in [0, 0b11, 0xffff_ffff_0000_0000, 1 << 63] {
            let index = OrgIndex::with_hash_mask(&config.customers, mask);
            for key in KEYS {
                assert_eq!(
                    index.owner(key).map(|at| config.customers[at].org.as_str()),
                    scan(&config, key),
                    "mask {mask:#x}, key {key:?}"
                );
            }
        }
    }

    /// Many orgs, and a table that has to probe past full slots: every org found by its own
    /// prefix, none by a prefix no org has.
    #[test]
    fn every_org_of_many_is_found() {
        let text = format!(
            r#"{{"customers":[{}]}}"#,
            (0..3000)
                .map(|i| format!(r#"{{"org":"t{i}","destinationBucket":"t{i}-export","prefix":"t/{i}/"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let config = Config::parse(&text, "t").unwrap();
        for mask in [u64::MAX, 0xff] {
            let index = OrgIndex::with_hash_mask(&config.customers, mask);
            for i in 0..3000 {
                let owner = index.owner_of(&format!("t/{i}/a.jpg")).unwrap();
                assert_eq!(owner.at, i);
                assert_eq!(owner.destination_bucket, format!("t{i}-export"));
            }
            assert_eq!(index.owner("t/3000/a.jpg"), None);
            assert_eq!(index.owner("t/x"), None);
        }
    }
}
