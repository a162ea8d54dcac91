//! Routing: which org an object belongs to, and whether its suffix is exported.
//!
//! Pure functions over the config; no I/O. The destination key is always the source key.

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
}

/// Where one object goes, or why it goes nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'c> {
    /// Copy into the org's destination bucket under the same key.
    Copy {
        /// The owning org.
        customer: &'c Org,
        /// Destination key (equal to the source key).
        destination_key: String,
    },
    /// Nothing to do; not an error.
    Skip {
        /// The owning org, when one matched.
        customer: Option<&'c Org>,
        /// Why the object is not exported.
        reason: String,
    },
}

/// The customer whose prefix is the longest one matching `key`.
pub fn owner<'c>(config: &'c Config, key: &str) -> Option<&'c Org> {
    config
        .customers
        .iter()
        .filter(|c| key.starts_with(&c.prefix))
        .max_by_key(|c| c.prefix.len())
}

/// Decides the route of `object` under `config`, with `default_suffixes` from the environment.
pub fn route<'c>(config: &'c Config, default_suffixes: &SuffixSet, object: &SourceObject) -> Route<'c> {
    if config.is_destination_bucket(&object.bucket) {
        return Route::Skip {
            customer: None,
            reason: format!(
                "bucket {} is a destination bucket; not exported again (copy-loop protection)",
                object.bucket
            ),
        };
    }
    let Some(customer) = owner(config, &object.key) else {
        return Route::Skip {
            customer: None,
            reason: "no org's prefix matches the key".into(),
        };
    };
    let suffixes = customer.suffixes.as_ref().unwrap_or(default_suffixes);
    if suffixes.matching(&object.key).is_none() {
        return Route::Skip {
            customer: Some(customer),
            reason: format!("suffix not selected (exported: {suffixes})"),
        };
    }
    Route::Copy {
        customer,
        destination_key: object.key.clone(),
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
        match route(&config, &suffixes, &object("src", key)) {
            Route::Copy {
                customer,
                destination_key,
            } => Ok((customer.org.clone(), destination_key)),
            Route::Skip { reason, .. } => Err(reason),
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
        let r = route(&config, &suffixes, &object("org1-export", "org1/a.jpg"));
        assert!(matches!(r, Route::Skip { reason, .. } if reason.contains("copy-loop")));
    }
}
