//! Tenancy checks across orgs: no org may be able to write into a bucket that belongs to
//! another org, to the source, or to the function's own configuration and plugins.
//!
//! Every bucket an org's objects may land in (its `destinationBucket` and each
//! `allowedBuckets` entry) must belong to exactly one org, and must not be:
//! - the source bucket, when known (`SOURCE_BUCKET`; the template passes it);
//! - the bucket the config is read from, or a bucket a plugin of this config is read from
//!   (a plugin could overwrite the config or another org's plugin).
//!
//! A bucket claimed by two orgs is reported on every org but its owner: the org whose
//! `destinationBucket` it is, or else the first org that lists it. The check is one pass
//! over the orgs with a map from bucket to owner, so it costs O(n) for n orgs.

use std::collections::HashMap;

use super::{ConfigDir, Org, PluginSource};

/// Which org claims a bucket, and through which field.
#[derive(Clone, Copy)]
struct Claim<'c> {
    index: usize,
    org: &'c str,
    /// `None`: its `destinationBucket`; `Some(j)`: its `allowedBuckets[j]`.
    allowed: Option<usize>,
}

impl Claim<'_> {
    fn field(&self) -> String {
        match self.allowed {
            None => "destinationBucket".into(),
            Some(j) => format!("allowedBuckets[{j}]"),
        }
    }
}

/// Every bucket `customer` may write, with the claim that names it.
fn claims(index: usize, customer: &Org) -> impl Iterator<Item = (&str, Claim<'_>)> {
    let org = customer.org.as_str();
    std::iter::once((
        customer.destination_bucket.as_str(),
        Claim {
            index,
            org,
            allowed: None,
        },
    ))
    .chain(
        customer
            .allowed_buckets
            .iter()
            .enumerate()
            .map(move |(j, bucket)| {
                (
                    bucket.as_str(),
                    Claim {
                        index,
                        org,
                        allowed: Some(j),
                    },
                )
            }),
    )
}

/// Adds one problem per violation, naming both orgs or the bucket.
pub(super) fn check(
    customers: &[(usize, Org)],
    config_dir: &ConfigDir,
    source_bucket: Option<&str>,
    problems: &mut Vec<String>,
) {
    let config_bucket = match config_dir {
        ConfigDir::S3 { bucket, .. } => Some(bucket.as_str()),
        ConfigDir::Local(_) => None,
    };
    let plugin_buckets: std::collections::HashSet<&str> = customers
        .iter()
        .flat_map(|(_, c)| {
            let plugin = c.plugin.as_ref();
            let candidate = plugin.and_then(|p| p.candidate.as_deref());
            plugin.into_iter().chain(candidate)
        })
        .filter_map(|p| match &p.source {
            PluginSource::S3 { bucket, .. } => Some(bucket.as_str()),
            PluginSource::File(_) => None,
        })
        .collect();
    // The owner of each writable bucket: the first org whose destinationBucket it is, or
    // else the first org that lists it in allowedBuckets.
    let mut owners: HashMap<&str, Claim<'_>> = HashMap::new();
    for &(i, ref customer) in customers {
        for (bucket, claim) in claims(i, customer) {
            match owners.get(bucket) {
                Some(owner) if owner.allowed.is_none() || claim.allowed.is_some() => {}
                _ => {
                    owners.insert(bucket, claim);
                }
            }
        }
    }
    for &(i, ref customer) in customers {
        for (bucket, claim) in claims(i, customer) {
            let who = format!("customers[{i}] ({}): {} {bucket:?}", customer.org, claim.field());
            if let Some(owner) = owners.get(bucket).filter(|o| o.org != customer.org) {
                problems.push(format!(
                    "{who} is the {} of org {} (customers[{}]); an org may only write to its own buckets",
                    owner.field(),
                    owner.org,
                    owner.index
                ));
            }
            let read_by_a_plugin = plugin_buckets.contains(bucket);
            for why in forbidden_writes(bucket, source_bucket, config_bucket, read_by_a_plugin) {
                problems.push(format!("{who} {why}"));
            }
        }
    }
}

/// Why no org may write `bucket`, if it is the source, the configuration's bucket, or one
/// plugins are read from: one line each.
pub(super) fn forbidden_writes<'a>(
    bucket: &str,
    source_bucket: Option<&str>,
    config_bucket: Option<&str>,
    read_by_a_plugin: bool,
) -> impl Iterator<Item = &'static str> + 'a {
    [
        (source_bucket == Some(bucket))
            .then_some("is the source bucket (SOURCE_BUCKET); exports must go to a bucket of the org's own"),
        (config_bucket == Some(bucket))
            .then_some("is the bucket this configuration is read from; a plugin could overwrite it"),
        read_by_a_plugin
            .then_some("is a bucket plugins are read from; a plugin could overwrite another org's plugin"),
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    fn problems(text: &str, origin: &str, source: Option<&str>) -> Vec<String> {
        Config::parse_for_source(text, origin, source)
            .err()
            .map(|e| e.problems)
            .unwrap_or_default()
    }

    #[test]
    fn another_orgs_destination_is_refused_naming_both_orgs() {
        let text = r#"{"customers":[
            {"org":"a","destinationBucket":"a-out","allowedBuckets":["b-out"]},
            {"org":"b","destinationBucket":"b-out"},
            {"org":"c","destinationBucket":"a-out"}]}"#;
        assert_eq!(
            problems(text, "c.json", None),
            [
                "customers[0] (a): allowedBuckets[0] \"b-out\" is the destinationBucket of org b (customers[1]); an org may only write to its own buckets",
                "customers[2] (c): destinationBucket \"a-out\" is the destinationBucket of org a (customers[0]); an org may only write to its own buckets",
            ]
        );
    }

    #[test]
    fn an_allowed_bucket_shared_by_two_orgs_is_refused_naming_both() {
        let text = r#"{"customers":[
            {"org":"a","destinationBucket":"a-out","allowedBuckets":["shared-archive"]},
            {"org":"b","destinationBucket":"b-out","allowedBuckets":["b-more","shared-archive"]},
            {"org":"c","destinationBucket":"c-out","allowedBuckets":["shared-archive"]}]}"#;
        assert_eq!(
            problems(text, "c.json", None),
            [
                "customers[1] (b): allowedBuckets[1] \"shared-archive\" is the allowedBuckets[0] of org a (customers[0]); an org may only write to its own buckets",
                "customers[2] (c): allowedBuckets[0] \"shared-archive\" is the allowedBuckets[0] of org a (customers[0]); an org may only write to its own buckets",
            ]
        );
        // One org naming its own bucket twice is no conflict.
        let own = r#"{"customers":[{"org":"a","destinationBucket":"a-out","allowedBuckets":["a-out","a-two","a-two"]}]}"#;
        assert_eq!(problems(own, "c.json", None), Vec::<String>::new());
        // An entry that does not parse does not shift the indices named after it.
        let shifted = r#"{"customers":[
            {"org":"a","destinationBucket":"x"},
            {"org":"b","destinationBucket":"b-out","allowedBuckets":["shared-archive"]},
            {"org":"c","destinationBucket":"c-out","allowedBuckets":["shared-archive"]}]}"#;
        assert_eq!(
            problems(shifted, "c.json", None)[1],
            "customers[2] (c): allowedBuckets[0] \"shared-archive\" is the allowedBuckets[0] of org b (customers[1]); an org may only write to its own buckets"
        );
    }

    #[test]
    fn source_config_and_plugin_buckets_are_refused() {
        let sha = "ab".repeat(32);
        let text = format!(
            r#"{{"customers":[
            {{"org":"a","destinationBucket":"src","allowedBuckets":["cfg","plug"]}},
            {{"org":"b","destinationBucket":"b-out","plugin":{{"source":"s3://plug/b.wasm","sha256":"{sha}"}}}}]}}"#
        );
        assert_eq!(
            problems(&text, "s3://cfg/export/config.json", Some("src")),
            [
                "customers[0] (a): destinationBucket \"src\" is the source bucket (SOURCE_BUCKET); exports must go to a bucket of the org's own",
                "customers[0] (a): allowedBuckets[0] \"cfg\" is the bucket this configuration is read from; a plugin could overwrite it",
                "customers[0] (a): allowedBuckets[1] \"plug\" is a bucket plugins are read from; a plugin could overwrite another org's plugin",
            ]
        );
        // Without SOURCE_BUCKET only what the config itself shows is checked.
        assert_eq!(problems(&text, "s3://cfg/export/config.json", None).len(), 2);
        assert!(problems(&text, "/etc/config.json", Some("other")).len() == 1);
    }

    #[test]
    fn allowed_buckets_are_covered_by_copy_loop_protection() {
        let config = Config::parse(
            r#"{"customers":[{"org":"a","destinationBucket":"a-out","allowedBuckets":["a-archive"]}]}"#,
            "c.json",
        )
        .unwrap();
        assert!(config.is_destination_bucket("a-out"));
        assert!(config.is_destination_bucket("a-archive"));
        assert!(!config.is_destination_bucket("src"));
    }
}
