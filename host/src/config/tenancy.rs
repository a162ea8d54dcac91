//! Tenancy checks across orgs: no org may be able to write into a bucket that belongs to
//! another org, to the source, or to the function's own configuration and plugins.
//!
//! Every bucket an org's objects may land in (its `destinationBucket` and each
//! `allowedBuckets` entry) must not be:
//! - another org's `destinationBucket` (that org's data, and the copy-loop protection
//!   would drop its events);
//! - the source bucket, when known (`SOURCE_BUCKET`; the template passes it);
//! - the bucket the config is read from, or a bucket a plugin of this config is read from
//!   (a plugin could overwrite the config or another org's plugin).

use super::{ConfigDir, Org, PluginSource};

/// Adds one problem per violation, naming both orgs or the bucket.
pub(super) fn check(
    customers: &[Org],
    config_dir: &ConfigDir,
    source_bucket: Option<&str>,
    problems: &mut Vec<String>,
) {
    let config_bucket = match config_dir {
        ConfigDir::S3 { bucket, .. } => Some(bucket.as_str()),
        ConfigDir::Local(_) => None,
    };
    let plugin_buckets: Vec<&str> = customers
        .iter()
        .filter_map(|c| match c.plugin.as_ref().map(|p| &p.source) {
            Some(PluginSource::S3 { bucket, .. }) => Some(bucket.as_str()),
            _ => None,
        })
        .collect();
    for (i, customer) in customers.iter().enumerate() {
        let own = std::iter::once(("destinationBucket".to_string(), &customer.destination_bucket)).chain(
            customer
                .allowed_buckets
                .iter()
                .enumerate()
                .map(|(j, b)| (format!("allowedBuckets[{j}]"), b)),
        );
        for (field, bucket) in own {
            let who = format!("customers[{i}] ({}): {field} {bucket:?}", customer.org);
            for (k, other) in customers.iter().enumerate() {
                // Two orgs sharing a destination: reported once, on the later of the two.
                let same_field_earlier = field == "destinationBucket" && k > i;
                if k != i && !same_field_earlier && other.destination_bucket == *bucket {
                    problems.push(format!(
                        "{who} is the destinationBucket of org {} (customers[{k}]); an org may only write to its own buckets",
                        other.org
                    ));
                }
            }
            if source_bucket == Some(bucket.as_str()) {
                problems.push(format!(
                    "{who} is the source bucket (SOURCE_BUCKET); exports must go to a bucket of the org's own"
                ));
            }
            if config_bucket == Some(bucket.as_str()) {
                problems.push(format!(
                    "{who} is the bucket this configuration is read from; a plugin could overwrite it"
                ));
            }
            if plugin_buckets.contains(&bucket.as_str()) {
                problems.push(format!(
                    "{who} is a bucket plugins are read from; a plugin could overwrite another org's plugin"
                ));
            }
        }
    }
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
