//! The configuration written back as JSON ([`Config::to_json`]), for tests: the round-trip
//! property test and the parsers' unit tests. Compiled only into test builds (`cfg(test)`,
//! or the `test-support` feature this crate's own tests turn on), never into the function.

use serde_json::{Map, Value};

use super::{
    AssumedRole, Config, ConfigDir, Encryption, ObjectLockPolicy, OnError, Org, PluginSource, PluginSpec,
    StorageClass,
};

impl Config {
    /// The configuration as a JSON document that [`Config::parse`] reads back into an equal
    /// `Config` when given the same `origin`: every field written out (defaults included),
    /// local plugin paths relative to the origin's folder when they are inside it (the parser
    /// resolves them against it), S3 sources as `s3://bucket/key`.
    pub fn to_json(&self, origin: &str) -> Value {
        let dir = ConfigDir::of(origin);
        let customers: Vec<Value> = self
            .customers
            .iter()
            .map(|c| {
                let mut fields = Map::new();
                fields.insert("org".into(), Value::from(c.org.as_str()));
                fields.insert(
                    "destinationBucket".into(),
                    Value::from(c.destination_bucket.as_str()),
                );
                fields.insert("prefix".into(), Value::from(c.prefix.as_str()));
                if let Some(suffixes) = &c.suffixes {
                    fields.insert("suffixes".into(), Value::from(suffixes.as_slice().to_vec()));
                }
                if let Some(spec) = &c.plugin {
                    fields.insert("plugin".into(), plugin_object(spec, &dir));
                }
                if !c.allowed_buckets.is_empty() {
                    fields.insert("allowedBuckets".into(), Value::from(c.allowed_buckets.clone()));
                }
                if let Some(role) = &c.role {
                    role_fields(role, &mut fields);
                }
                write_fields(c, &mut fields);
                Value::Object(fields)
            })
            .collect();
        serde_json::json!({"customers": customers, "retry": self.retry})
    }
}

/// `spec` as the `plugin` object of a config in `dir`.
fn plugin_object(spec: &PluginSpec, dir: &ConfigDir) -> Value {
    let source = match (&spec.source, dir) {
        // A path the parser joined to the config's folder: written relative to it again.
        (PluginSource::File(path), ConfigDir::Local(dir)) => path
            .strip_prefix(dir)
            .map_or_else(|_| path.display().to_string(), |p| p.display().to_string()),
        (source, _) => source.to_string(),
    };
    let mut fields = Map::new();
    fields.insert("source".into(), Value::from(source));
    if let Some(sha) = spec.sha256 {
        fields.insert("sha256".into(), Value::from(hex::encode(sha)));
    }
    // `settings` holds the serialized object the parser was given; it is valid JSON.
    fields.insert(
        "settings".into(),
        serde_json::from_str(&spec.settings).unwrap_or_else(|_| Value::Object(Default::default())),
    );
    fields.insert(
        "timeoutMs".into(),
        Value::from(u64::try_from(spec.timeout.as_millis()).unwrap_or(u64::MAX)),
    );
    fields.insert(
        "maxMemoryMiB".into(),
        Value::from(spec.max_memory_bytes / (1024 * 1024)),
    );
    fields.insert("maxInstructions".into(), Value::from(spec.max_instructions));
    fields.insert("precompiled".into(), Value::from(spec.precompiled));
    let on_error = match spec.on_error {
        OnError::Fail => "fail",
        OnError::Skip => "skip",
        OnError::Default => "default",
    };
    fields.insert("onError".into(), Value::from(on_error));
    if let Some(candidate) = &spec.candidate {
        fields.insert("candidate".into(), plugin_object(candidate, dir));
    }
    Value::Object(fields)
}

/// The org's role as config JSON fields.
fn role_fields(role: &AssumedRole, fields: &mut Map<String, Value>) {
    fields.insert("roleArn".into(), Value::from(role.role_arn.as_str()));
    if let Some(id) = &role.external_id {
        fields.insert("externalId".into(), Value::from(id.as_str()));
    }
}

/// The org's write fields as JSON: only those not at their default.
fn write_fields(org: &Org, fields: &mut Map<String, Value>) {
    if let StorageClass::Fixed(class) = &org.storage_class {
        fields.insert("storageClass".into(), Value::from(class.as_str()));
    }
    match &org.encryption {
        None => {}
        Some(Encryption::Aes256) => {
            fields.insert("encryption".into(), serde_json::json!({"type": "AES256"}));
        }
        Some(Encryption::Kms { key_id, bucket_key }) => {
            let mut kms = Map::new();
            kms.insert("type".into(), Value::from("aws:kms"));
            if let Some(id) = key_id {
                kms.insert("kmsKeyId".into(), Value::from(id.as_str()));
            }
            if let Some(b) = bucket_key {
                kms.insert("bucketKey".into(), Value::from(*b));
            }
            fields.insert("encryption".into(), Value::Object(kms));
        }
    }
    if org.deletes != super::Deletes::Ignore {
        fields.insert("deletes".into(), Value::from(org.deletes.as_str()));
    }
    if let Some(acl) = org.acl {
        fields.insert("acl".into(), Value::from(acl.as_str()));
    }
    if let Some(owner) = &org.expected_bucket_owner {
        fields.insert("expectedBucketOwner".into(), Value::from(owner.as_str()));
    }
    if org.object_lock != ObjectLockPolicy::Copy {
        fields.insert("objectLock".into(), Value::from(org.object_lock.as_str()));
    }
}
