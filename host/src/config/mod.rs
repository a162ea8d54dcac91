//! The export configuration: which org owns which keys and where its objects go.
//!
//! The JSON is walked by hand rather than through `serde` derive so that every problem
//! names the customer (index and org) and field, and unknown fields get a "did you mean".
//! All problems are collected, not just the first, so `validate` can list them at once.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::suffix::SuffixSet;

mod admission;
mod documents;
mod fields;
mod index;
mod plugin;
mod role;
mod tenancy;
#[cfg(any(test, feature = "test-support"))]
mod to_json;
mod write;

pub use crate::s3::names::bucket_name_problem;
pub use index::Routed;

use fields::FieldReader;

pub use admission::{Admitted, DocumentEntries, Refusal, admit};
pub use documents::{DEFAULTS_DOCUMENT, Defaults, parse_defaults, parse_org_document};
pub use plugin::{
    DEFAULT_MAX_INSTRUCTIONS, DEFAULT_MAX_MEMORY_MIB, DEFAULT_TIMEOUT_MS, MAX_MAX_INSTRUCTIONS, OnError,
    PluginSource, PluginSpec,
};
pub use role::{AssumedRole, valid_role_arn};
pub use write::{CannedAcl, Deletes, Encryption, ObjectLockPolicy, StorageClass, is_account_id};

/// Default for `retry` when the file leaves it out.
pub const DEFAULT_RETRY: u32 = 1;
/// Upper bound for `retry`: more than this only delays Lambda's own retry and the DLQ.
pub const MAX_RETRY: u32 = 10;

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Every org, in file order. (Routing reads them through the index built by the parser:
    /// a change to an org's prefix or buckets after parsing is not routed by.)
    pub customers: Vec<Org>,
    /// Extra attempts after the first for retryable S3 errors.
    pub retry: u32,
    /// Owner and bucket lookups, built once.
    index: index::OrgIndex,
}

/// One organization's export settings: one entry of the config's `customers` list (the
/// JSON keeps that name; the code says org, as the field, the reports and the metrics do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// The org's name, unique in the file.
    pub org: String,
    /// The bucket this org's objects are copied into.
    pub destination_bucket: String,
    /// Source-key prefix that identifies the org's objects (default `<org>/`).
    pub prefix: String,
    /// Suffixes exported for this org, replacing `SUFFIX_TO_COPY` when set.
    pub suffixes: Option<SuffixSet>,
    /// The org's copy policy plugin, if it has one.
    pub plugin: Option<PluginSpec>,
    /// Buckets the plugin may target besides `destination_bucket`.
    pub allowed_buckets: Vec<String>,
    /// `roleArn` / `externalId`: the org's copies are made as this role (`sts:AssumeRole`);
    /// `None`: as the function's own role.
    pub role: Option<AssumedRole>,
    /// `storageClass` of the copies (default: the source object's).
    pub storage_class: StorageClass,
    /// `encryption` of the copies (default: the destination bucket's default).
    pub encryption: Option<Encryption>,
    /// `expectedBucketOwner`: the account that must own `destination_bucket` (12 digits);
    /// sent with every request to it, so a bucket re-created by another account gets nothing.
    pub expected_bucket_owner: Option<String>,
    /// `acl`: the canned ACL of the copies, for destination buckets that still use ACLs.
    pub acl: Option<CannedAcl>,
    /// `deletes`: whether removals at the source remove the org's exports.
    pub deletes: Deletes,
    /// `objectLock`: whether copies carry the source's Object Lock (default `"copy"`).
    pub object_lock: ObjectLockPolicy,
}

impl Org {
    /// True when a plugin of this org may copy into `bucket`.
    pub fn may_target(&self, bucket: &str) -> bool {
        bucket == self.destination_bucket || self.allowed_buckets.iter().any(|b| b == bucket)
    }
}

/// A configuration that failed to load, with every problem found.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the configuration came from (a path or `s3://bucket/key`).
    pub origin: String,
    /// One line per problem, each naming the field it is about.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config {}: {}", self.origin, self.problems.join("; "))
    }
}

impl Config {
    /// Parses and validates configuration JSON; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Self::parse_for_source(text, origin, None)
    }

    /// [`Config::parse`], also refusing a destination that is the source bucket (when it is
    /// known: `SOURCE_BUCKET`, or `validate --source-bucket`).
    pub fn parse_for_source(
        text: &str,
        origin: &str,
        source_bucket: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let fail = |problems: Vec<String>| ConfigError {
            origin: origin.to_string(),
            problems,
        };
        let value = documents::json(text).map_err(|problem| fail(vec![problem]))?;
        let Value::Object(top) = value else {
            return Err(fail(vec![format!(
                "expected a JSON object with \"customers\", got {}",
                kind(&value)
            )]));
        };
        let config_dir = ConfigDir::of(origin);
        let mut problems = Vec::new();
        let (customers, retry) = {
            let mut fields = FieldReader::new(&top, "", &mut problems);
            let customers = fields.value("customers");
            let retry = documents::read_retry(&mut fields);
            fields.finish();
            (customers, retry)
        };
        // Each org with its index in `customers[]`: problems name the entry as written, also
        // when an earlier entry could not be parsed.
        let customers: Vec<(usize, Org)> = match customers {
            None => {
                problems
                    .push("customers: missing; expected a list of {\"org\", \"destinationBucket\"}".into());
                Vec::new()
            }
            Some(Value::Array(items)) if items.is_empty() => {
                problems.push("customers: empty; expected at least one customer".into());
                Vec::new()
            }
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    parse_customer(EntryName::Listed(i), item, &config_dir, &mut problems).map(|org| (i, org))
                })
                .collect(),
            Some(other) => {
                problems.push(format!("customers: expected a list, got {}", kind(other)));
                Vec::new()
            }
        };
        check_uniqueness(&customers, &mut problems);
        tenancy::check(&customers, &config_dir, source_bucket, &mut problems);
        if problems.is_empty() {
            Ok(Config::from_orgs(
                customers.into_iter().map(|(_, org)| org).collect(),
                retry,
            ))
        } else {
            Err(fail(problems))
        }
    }

    /// The configuration of `orgs`, already checked against each other (one document, or
    /// the org documents [`admit`] let in), with `retry`.
    pub fn from_orgs(customers: Vec<Org>, retry: u32) -> Config {
        let index = index::OrgIndex::new(&customers);
        Config {
            customers,
            retry,
            index,
        }
    }

    /// True when `bucket` is some org's destination or one of its `allowedBuckets` (events
    /// from it must not be exported again: copy-loop protection).
    pub fn is_destination_bucket(&self, bucket: &str) -> bool {
        self.index.is_writable(bucket)
    }

    /// The org whose prefix is the longest one `key` starts with; its cost does not grow with
    /// the number of orgs.
    pub fn owner(&self, key: &str) -> Option<&Org> {
        self.customers.get(self.index.owner(key)?)
    }

    /// The org named `name`.
    pub fn org_named(&self, name: &str) -> Option<&Org> {
        self.customers.get(self.index.named(name)?)
    }
}

/// How an org's entry is named in its problems.
#[derive(Debug, Clone, Copy)]
enum EntryName {
    /// Its place in a single document's `customers[]`: `customers[2] (org3)`.
    Listed(usize),
    /// A document of its own (the org documents form): `org org3`.
    Document,
}

impl EntryName {
    /// The entry before its org name is known.
    fn unnamed(self) -> String {
        match self {
            EntryName::Listed(i) => format!("customers[{i}]"),
            EntryName::Document => "org document".into(),
        }
    }

    fn named(self, org: &str) -> String {
        match self {
            EntryName::Listed(i) => format!("customers[{i}] ({org})"),
            EntryName::Document => format!("org {org}"),
        }
    }
}

fn parse_customer(
    entry: EntryName,
    item: &Value,
    config_dir: &ConfigDir,
    problems: &mut Vec<String>,
) -> Option<Org> {
    let Value::Object(object) = item else {
        problems.push(format!(
            "{}: expected an object with \"org\" and \"destinationBucket\", got {}",
            entry.unnamed(),
            kind(item)
        ));
        return None;
    };
    let mut fields = FieldReader::new(object, format!("{}: ", entry.unnamed()), problems);
    let org = match fields.required_string("org", "a string", " is missing") {
        Some(s) if valid_org(s) => Some(s.to_string()),
        Some("") => {
            fields.problem("org", " is empty");
            None
        }
        Some(s) => {
            fields.problem(
                "org",
                format!(" {s:?} is not valid: expected 1-64 letters, digits, '.', '-' or '_'"),
            );
            None
        }
        None => None,
    };
    let who = match &org {
        Some(org) => entry.named(org),
        None => entry.unnamed(),
    };
    fields.set_context(format!("{who}: "));
    let destination_bucket = fields
        .required_string("destinationBucket", "a string", " is missing")
        .and_then(|b| bucket_name(&mut fields, "destinationBucket", b));
    let prefix = match fields.string("prefix", "a string") {
        None if fields.value("prefix").is_none() => org.as_ref().map(|o| format!("{o}/")),
        Some(p) if !p.is_empty() => Some(p.to_string()),
        Some(_) => {
            fields.problem(
                "prefix",
                " is empty; expected the start of the org's source keys, e.g. \"org1/\"",
            );
            None
        }
        None => None,
    };
    let suffixes = match fields.value("suffixes") {
        None => None,
        Some(Value::Array(items)) => {
            let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            match strings.map(SuffixSet::from_items) {
                Some(Ok(set)) => Some(set),
                Some(Err(e)) => {
                    fields.problem("suffixes", format!(": {e}"));
                    None
                }
                None => {
                    fields.problem("suffixes", ": expected a list of strings like [\"jpg\", \"pdf\"]");
                    None
                }
            }
        }
        Some(other) => {
            fields.problem(
                "suffixes",
                format!(
                    ": expected a list of strings like [\"jpg\", \"pdf\"], got {}",
                    kind(other)
                ),
            );
            None
        }
    };
    let plugin = fields
        .value("plugin")
        .and_then(|value| plugin::parse_plugin(&who, value, config_dir, fields.problems()));
    let allowed_buckets = plugin::parse_allowed_buckets(&mut fields);
    let role = role::parse_role(&mut fields);
    let storage_class = write::storage_class(&mut fields);
    let encryption = write::encryption(&who, &mut fields);
    let acl = write::acl(&mut fields);
    let expected_bucket_owner = write::expected_bucket_owner(&mut fields);
    let deletes = write::deletes(&mut fields);
    let object_lock = write::object_lock(&mut fields);
    if !fields.finish() {
        return None;
    }
    Some(Org {
        org: org?,
        destination_bucket: destination_bucket?,
        prefix: prefix?,
        suffixes,
        plugin,
        allowed_buckets,
        role,
        storage_class,
        encryption,
        expected_bucket_owner,
        acl,
        deletes,
        object_lock,
    })
}

/// `name`'s value `bucket`, when it is a valid S3 bucket name (a problem otherwise).
fn bucket_name(fields: &mut FieldReader, name: &str, bucket: &str) -> Option<String> {
    match bucket_name_problem(bucket) {
        None => Some(bucket.to_string()),
        Some(why) => {
            fields.problem(name, format!(" {bucket:?} is not a valid S3 bucket name ({why})"));
            None
        }
    }
}

fn check_uniqueness(customers: &[(usize, Org)], problems: &mut Vec<String>) {
    let mut orgs: HashMap<&str, usize> = HashMap::new();
    let mut prefixes: HashMap<&str, &str> = HashMap::new();
    for &(i, ref c) in customers {
        if let Some(first) = orgs.insert(&c.org, i) {
            problems.push(format!(
                "customers[{i}] ({}): org is a duplicate of customers[{first}]",
                c.org
            ));
        }
        if let Some(other) = prefixes.insert(&c.prefix, &c.org) {
            problems.push(format!(
                "customers[{i}] ({}): prefix {:?} is already used by org {other}",
                c.org, c.prefix
            ));
        }
    }
}

/// Where the config file lives, to resolve relative plugin paths against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigDir {
    /// The folder of a local config file.
    Local(std::path::PathBuf),
    /// The bucket and key prefix (ending in `/` or empty) of a config in S3.
    S3 {
        /// Config bucket.
        bucket: String,
        /// Key prefix of the config object's "folder".
        prefix: String,
    },
}

impl ConfigDir {
    /// The directory of a config at `origin` (a path or `s3://bucket/key`).
    pub fn of(origin: &str) -> ConfigDir {
        match origin.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) {
            Some((bucket, key)) => ConfigDir::S3 {
                bucket: bucket.to_string(),
                prefix: key.rfind('/').map(|i| key[..=i].to_string()).unwrap_or_default(),
            },
            None => ConfigDir::Local(
                std::path::Path::new(origin)
                    .parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default(),
            ),
        }
    }
}

fn valid_org(org: &str) -> bool {
    (1..=64).contains(&org.len())
        && org
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
