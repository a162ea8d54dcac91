//! Admission of org documents: which version of each org's document is in force after a
//! refresh, one org at a time, so that one org's edit never blocks or moves another's.
//!
//! Each document brings the entry in force since the last refresh (if any) and a valid
//! version not yet in force (if it changed). Everything in force *holds* its org name, its
//! prefix and the buckets it writes. A changed document is let in only if what it claims is
//! held by no other document; otherwise it is refused for that org alone, which keeps its
//! entry in force (or stays unconfigured if it never had one). So the org that held a name,
//! a prefix or a bucket first keeps it; among documents new at the same refresh, the first in
//! document order wins. What an admitted edit gives up is free from the next refresh on,
//! when the refused edits are weighed again.
//!
//! Prefixes must not overlap at all here: one org's prefix inside another's would take
//! over part of its keys (the single document, written by one hand, may nest them).
//! Per org the cost is a few map lookups per claim, so admitting n orgs is O(n log n).

use std::collections::{BTreeMap, HashMap};

use super::{ConfigDir, Org, PluginSource, tenancy};

/// One org document going into a refresh.
#[derive(Debug, Clone)]
pub struct DocumentEntries {
    /// Its name (key or path): what refusals name, and the order of admission.
    pub document: String,
    /// The entry in force since the last refresh.
    pub in_force: Option<Org>,
    /// A valid version not yet in force: a new or edited document, or one refused before.
    pub wanted: Option<Org>,
}

/// What is in force for one document after [`admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Its wanted version.
    Wanted,
    /// The entry that was in force (its wanted version, if any, was refused).
    Kept,
    /// Nothing: the org is not configured.
    Unconfigured,
}

/// A document's version kept out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The document.
    pub document: String,
    /// Its org (as the refused version names it).
    pub org: String,
    /// Why, in one line.
    pub reason: String,
}

/// Who holds what: claims by the document (index) holding them.
#[derive(Default)]
struct Holders<'c> {
    names: HashMap<&'c str, usize>,
    prefixes: BTreeMap<&'c [u8], usize>,
    /// The distinct lengths of `prefixes`.
    lengths: std::collections::BTreeSet<usize>,
    writes: HashMap<&'c str, usize>,
    plugins_from: HashMap<&'c str, usize>,
}

impl<'c> Holders<'c> {
    fn hold(&mut self, at: usize, org: &'c Org) {
        self.names.insert(&org.org, at);
        self.prefixes.insert(org.prefix.as_bytes(), at);
        self.lengths.insert(org.prefix.len());
        for bucket in writes(org) {
            self.writes.insert(bucket, at);
        }
        if let Some(bucket) = plugin_bucket(org) {
            self.plugins_from.insert(bucket, at);
        }
    }

    /// The document other than `at` holding a prefix that overlaps `prefix` (one starts
    /// with the other).
    fn overlapping(&self, at: usize, prefix: &[u8]) -> Option<usize> {
        let shorter = self
            .lengths
            .iter()
            .take_while(|&&len| len <= prefix.len())
            .filter_map(|&len| self.prefixes.get(&prefix[..len]));
        let longer = self
            .prefixes
            .range(prefix..)
            .take_while(|(held, _)| held.starts_with(prefix))
            .map(|(_, holder)| holder);
        shorter.chain(longer).copied().find(|&holder| holder != at)
    }
}

fn writes(org: &Org) -> impl Iterator<Item = &str> {
    std::iter::once(org.destination_bucket.as_str()).chain(org.allowed_buckets.iter().map(String::as_str))
}

fn plugin_bucket(org: &Org) -> Option<&str> {
    match org.plugin.as_ref().map(|p| &p.source) {
        Some(PluginSource::S3 { bucket, .. }) => Some(bucket),
        _ => None,
    }
}

/// Decides, per document, what is in force after this refresh; `config_dir` is where the
/// documents are read from (its bucket is never written), `source_bucket` the shared source.
pub fn admit(
    documents: &[DocumentEntries],
    config_dir: &ConfigDir,
    source_bucket: Option<&str>,
) -> (Vec<Admitted>, Vec<Refusal>) {
    let mut holders = Holders::default();
    for (at, document) in documents.iter().enumerate() {
        if let Some(org) = &document.in_force {
            holders.hold(at, org);
        }
    }
    let config_bucket = match config_dir {
        ConfigDir::S3 { bucket, .. } => Some(bucket.as_str()),
        ConfigDir::Local(_) => None,
    };
    let mut admitted = Vec::with_capacity(documents.len());
    let mut refusals = Vec::new();
    for (at, document) in documents.iter().enumerate() {
        let Some(wanted) = &document.wanted else {
            admitted.push(if document.in_force.is_some() {
                Admitted::Kept
            } else {
                Admitted::Unconfigured
            });
            continue;
        };
        let name = |holder: usize| {
            let held = &documents[holder];
            let org = held
                .in_force
                .as_ref()
                .or(held.wanted.as_ref())
                .map(|o| o.org.as_str());
            format!("org {} ({})", org.unwrap_or("?"), held.document)
        };
        let conflict = conflict(at, wanted, &holders, config_bucket, source_bucket, name);
        match conflict {
            None => {
                holders.hold(at, wanted);
                admitted.push(Admitted::Wanted);
            }
            Some(reason) => {
                refusals.push(Refusal {
                    document: document.document.clone(),
                    org: wanted.org.clone(),
                    reason,
                });
                admitted.push(if document.in_force.is_some() {
                    Admitted::Kept
                } else {
                    Admitted::Unconfigured
                });
            }
        }
    }
    (admitted, refusals)
}

/// The first thing `wanted` (of document `at`) claims that another document holds, or that
/// no org may write.
fn conflict(
    at: usize,
    wanted: &Org,
    holders: &Holders,
    config_bucket: Option<&str>,
    source_bucket: Option<&str>,
    name: impl Fn(usize) -> String,
) -> Option<String> {
    let other = |holder: Option<&usize>| holder.copied().filter(|&h| h != at);
    if let Some(holder) = other(holders.names.get(wanted.org.as_str())) {
        return Some(format!("org name {:?} is already {}'s", wanted.org, name(holder)));
    }
    if let Some(holder) = holders.overlapping(at, wanted.prefix.as_bytes()) {
        return Some(format!(
            "prefix {:?} overlaps the prefix of {}; an org's keys are its own",
            wanted.prefix,
            name(holder)
        ));
    }
    let plugin_from = plugin_bucket(wanted);
    for bucket in writes(wanted) {
        if let Some(holder) = other(holders.writes.get(bucket)) {
            return Some(format!(
                "bucket {bucket:?} is already written by {}; an org may only write to its own buckets",
                name(holder)
            ));
        }
        let read_by_a_plugin = holders.plugins_from.contains_key(bucket) || plugin_from == Some(bucket);
        if let Some(why) =
            tenancy::forbidden_writes(bucket, source_bucket, config_bucket, read_by_a_plugin).next()
        {
            return Some(format!("bucket {bucket:?} {why}"));
        }
    }
    if let Some(bucket) = plugin_from
        && let Some(&holder) = holders.writes.get(bucket)
    {
        return Some(format!(
            "plugin bucket {bucket:?} is written by {}; a plugin could be overwritten",
            name(holder)
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::parse_org_document;
    use super::*;

    fn org(text: &str) -> Org {
        parse_org_document(text, "s3://cfg/orgs/x.json").unwrap()
    }

    fn doc(name: &str, in_force: Option<&str>, wanted: Option<&str>) -> DocumentEntries {
        DocumentEntries {
            document: name.into(),
            in_force: in_force.map(org),
            wanted: wanted.map(org),
        }
    }

    fn dir() -> ConfigDir {
        ConfigDir::of("s3://cfg/orgs/x.json")
    }

    const A: &str = r#"{"org":"a","destinationBucket":"a-out"}"#;
    const B: &str = r#"{"org":"b","destinationBucket":"b-out"}"#;

    #[test]
    fn the_holder_keeps_what_another_orgs_edit_claims() {
        let b_takes_a_bucket = r#"{"org":"b","destinationBucket":"a-out"}"#;
        let (admitted, refusals) = admit(
            &[
                doc("a.json", Some(A), None),
                doc("b.json", Some(B), Some(b_takes_a_bucket)),
            ],
            &dir(),
            None,
        );
        assert_eq!(admitted, [Admitted::Kept, Admitted::Kept]);
        assert_eq!(
            refusals,
            [Refusal {
                document: "b.json".into(),
                org: "b".into(),
                reason: "bucket \"a-out\" is already written by org a (a.json); an org may only write to its own buckets".into()
            }]
        );
        // A new org that takes a held name, or a prefix inside a held one, is not configured.
        let (admitted, refusals) = admit(
            &[
                doc("a.json", Some(A), None),
                doc(
                    "a2.json",
                    None,
                    Some(r#"{"org":"a","destinationBucket":"a2-out","prefix":"a2/"}"#),
                ),
                doc(
                    "c.json",
                    None,
                    Some(r#"{"org":"c","destinationBucket":"c-out","prefix":"a/c/"}"#),
                ),
                doc(
                    "d.json",
                    None,
                    Some(r#"{"org":"d","destinationBucket":"d-out","prefix":"b"}"#),
                ),
                doc("e.json", None, Some(r#"{"org":"e","destinationBucket":"e-out"}"#)),
            ],
            &dir(),
            None,
        );
        assert_eq!(
            admitted,
            [
                Admitted::Kept,
                Admitted::Unconfigured,
                Admitted::Unconfigured,
                Admitted::Wanted,
                Admitted::Wanted
            ]
        );
        let reasons: Vec<&str> = refusals.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "org name \"a\" is already org a (a.json)'s",
                "prefix \"a/c/\" overlaps the prefix of org a (a.json); an org's keys are its own",
            ]
        );
    }

    #[test]
    fn an_edit_that_frees_a_bucket_lets_another_org_take_it_at_the_next_refresh() {
        let a_moves = r#"{"org":"a","destinationBucket":"a-new"}"#;
        let b_takes = r#"{"org":"b","destinationBucket":"a-out"}"#;
        let documents = [
            doc("a.json", Some(A), Some(a_moves)),
            doc("b.json", Some(B), Some(b_takes)),
        ];
        let (admitted, refusals) = admit(&documents, &dir(), None);
        assert_eq!(admitted, [Admitted::Wanted, Admitted::Kept]);
        assert_eq!(refusals.len(), 1);
        let next = [
            doc("a.json", Some(a_moves), None),
            doc("b.json", Some(B), Some(b_takes)),
        ];
        assert_eq!(
            admit(&next, &dir(), None),
            (vec![Admitted::Kept, Admitted::Wanted], vec![])
        );
    }

    #[test]
    fn source_config_and_plugin_buckets_are_never_written() {
        let sha = "ab".repeat(32);
        let with_plugin = format!(
            r#"{{"org":"p","destinationBucket":"p-out","plugin":{{"source":"s3://plug/p.wasm","sha256":"{sha}"}}}}"#
        );
        let (admitted, refusals) = admit(
            &[
                doc("p.json", None, Some(&with_plugin)),
                doc("q.json", None, Some(r#"{"org":"q","destinationBucket":"plug"}"#)),
                doc("r.json", None, Some(r#"{"org":"r","destinationBucket":"cfg"}"#)),
                doc("s.json", None, Some(r#"{"org":"s","destinationBucket":"src"}"#)),
            ],
            &dir(),
            Some("src"),
        );
        assert_eq!(admitted[0], Admitted::Wanted);
        let reasons: Vec<&str> = refusals.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "bucket \"plug\" is a bucket plugins are read from; a plugin could overwrite another org's plugin",
                "bucket \"cfg\" is the bucket this configuration is read from; a plugin could overwrite it",
                "bucket \"src\" is the source bucket (SOURCE_BUCKET); exports must go to a bucket of the org's own",
            ]
        );
    }
}
