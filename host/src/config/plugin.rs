//! The `plugin` and `allowedBuckets` fields of a customer.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::fields::FieldReader;
use super::{ConfigDir, bucket_name_problem, kind};

/// Default per-call wall-clock deadline: a backstop, not the budget (that is
/// `maxInstructions`). High enough that a loaded machine or a small Lambda does not trip
/// it for a plugin within its instruction budget.
pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
/// Default per-call memory cap.
pub const DEFAULT_MAX_MEMORY_MIB: u64 = 16;
/// Default per-call instruction budget (wasmtime fuel, about one unit per wasm
/// instruction, instantiation included). The example plugins use 6,000 to 39,000 per
/// decision (`plugin test --cases` prints it), so this leaves them 500 times the room, and
/// still stops a runaway plugin within milliseconds (20 M fuel is ~3 ms of a busy loop).
pub const DEFAULT_MAX_INSTRUCTIONS: u64 = 20_000_000;
/// Largest `maxInstructions` a config may set (several seconds of CPU).
pub const MAX_MAX_INSTRUCTIONS: u64 = 10_000_000_000;

/// Where a plugin's component comes from, resolved against the config's location.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PluginSource {
    /// A local file (a `.wasm` component, or with `precompiled: true` a `.cwasm`).
    File(PathBuf),
    /// An object in S3.
    S3 {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginSource::File(path) => write!(f, "{}", path.display()),
            PluginSource::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// What happens to a record when the plugin traps, times out, runs out of memory or
/// answers `err`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// The record fails (and is retried by Lambda).
    Fail,
    /// The record is skipped.
    Skip,
    /// Plain suffix matching decides, as if the org had no plugin.
    Default,
}

/// A customer's plugin, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// Where the component is loaded from.
    pub source: PluginSource,
    /// Expected SHA-256 of the file's bytes (required for S3 sources).
    pub sha256: Option<[u8; 32]>,
    /// The `settings` JSON object, serialized, handed to every call.
    pub settings: String,
    /// Deadline of one decision.
    pub timeout: Duration,
    /// Memory cap of one decision's instance, in bytes.
    pub max_memory_bytes: u64,
    /// Instruction budget of one decision (wasmtime fuel).
    pub max_instructions: u64,
    /// `precompiled: true`: the source is a `.cwasm` the operator compiled with
    /// `plugin compile` (native code, trusted); otherwise it must be a `.wasm` component.
    pub precompiled: bool,
    /// What a failed decision means for the record.
    pub on_error: OnError,
    /// `candidate`: a plugin asked the same question beside this one on live events, whose
    /// answers are only compared with this plugin's (a shadow), never acted on. Its own
    /// source, sha256, settings and limits; never a candidate itself.
    pub candidate: Option<Box<PluginSpec>>,
}

pub(super) fn parse_plugin(
    who: &str,
    value: &Value,
    config_dir: &ConfigDir,
    problems: &mut Vec<String>,
) -> Option<PluginSpec> {
    parse_spec(who, "plugin", value, config_dir, problems)
}

/// The plugin at `path` (`plugin`, or `plugin.candidate`, which may not have its own).
fn parse_spec(
    who: &str,
    path: &str,
    value: &Value,
    config_dir: &ConfigDir,
    problems: &mut Vec<String>,
) -> Option<PluginSpec> {
    let Value::Object(object) = value else {
        problems.push(format!(
            "{who}: {path}: expected an object with \"source\", got {}",
            kind(value)
        ));
        return None;
    };
    let mut fields = FieldReader::new(object, format!("{who}: {path}."), problems);
    let source = match fields.required_string(
        "source",
        "a path or s3://bucket/key",
        " is missing; expected a path or s3://bucket/key",
    ) {
        Some(s) if !s.trim().is_empty() => resolve_source(&mut fields, s, config_dir),
        Some(_) => {
            fields.problem("source", ": expected a path or s3://bucket/key, got a string");
            None
        }
        None => None,
    };
    let sha256 = fields
        .string("sha256", "a string")
        .and_then(|s| match hex::decode(s.trim()) {
            Ok(bytes) if bytes.len() == 32 => bytes.try_into().ok(),
            _ => {
                fields.problem("sha256", format!(" {s:?} is not valid; expected 64 hex digits"));
                None
            }
        });
    if let Some(PluginSource::S3 { .. }) = &source
        && fields.value("sha256").is_none()
    {
        fields.problem(
            "sha256",
            " is required for a plugin loaded from S3 (pin the exact bytes)",
        );
    }
    let settings = match fields.value("settings") {
        None => "{}".to_string(),
        Some(value @ Value::Object(_)) => value.to_string(),
        Some(other) => {
            fields.problem(
                "settings",
                format!(": expected a JSON object, got {}", kind(other)),
            );
            String::new()
        }
    };
    let timeout_ms = fields.whole_number("timeoutMs", DEFAULT_TIMEOUT_MS, 1..=10_000);
    let memory_mib = fields.whole_number("maxMemoryMiB", DEFAULT_MAX_MEMORY_MIB, 1..=1024);
    let max_instructions = fields.whole_number(
        "maxInstructions",
        DEFAULT_MAX_INSTRUCTIONS,
        1..=MAX_MAX_INSTRUCTIONS,
    );
    let precompiled = fields.boolean("precompiled", false);
    let on_error = fields.choice(
        "onError",
        OnError::Fail,
        &[
            ("fail", OnError::Fail),
            ("skip", OnError::Skip),
            ("default", OnError::Default),
        ],
    );
    // Only the plugin itself reads `candidate`: in a candidate it is an unknown field.
    let candidate = if path == "plugin" {
        match fields.value("candidate") {
            None => Ok(None),
            Some(value) => {
                let path = format!("{path}.candidate");
                parse_spec(who, &path, value, config_dir, fields.problems())
                    .map(|spec| Some(Box::new(spec)))
                    .ok_or(())
            }
        }
    } else {
        Ok(None)
    };
    if !fields.finish() {
        return None;
    }
    Some(PluginSpec {
        candidate: candidate.ok()?,
        source: source?,
        sha256,
        settings,
        timeout: Duration::from_millis(timeout_ms),
        max_memory_bytes: memory_mib * 1024 * 1024,
        max_instructions,
        precompiled,
        on_error,
    })
}

fn resolve_source(fields: &mut FieldReader, source: &str, config_dir: &ConfigDir) -> Option<PluginSource> {
    if let Some(rest) = source.strip_prefix("s3://") {
        return match rest.split_once('/') {
            Some((bucket, key)) if !key.is_empty() && bucket_name_problem(bucket).is_none() => {
                Some(PluginSource::S3 {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                })
            }
            _ => {
                fields.problem(
                    "source",
                    format!(" {source:?} is not valid; expected s3://bucket/key"),
                );
                None
            }
        };
    }
    let path = std::path::Path::new(source);
    Some(match config_dir {
        _ if path.is_absolute() => PluginSource::File(path.to_path_buf()),
        ConfigDir::Local(dir) => PluginSource::File(dir.join(path)),
        ConfigDir::S3 { bucket, prefix } => PluginSource::S3 {
            bucket: bucket.clone(),
            key: format!("{prefix}{}", source.trim_start_matches("./")),
        },
    })
}

pub(super) fn parse_allowed_buckets(fields: &mut FieldReader) -> Vec<String> {
    let Some(value) = fields.value("allowedBuckets") else {
        return Vec::new();
    };
    let Value::Array(items) = value else {
        fields.problem(
            "allowedBuckets",
            format!(": expected a list of bucket names, got {}", kind(value)),
        );
        return Vec::new();
    };
    let mut buckets = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = format!("allowedBuckets[{i}]");
        match item.as_str() {
            Some(b) => buckets.extend(super::bucket_name(fields, &name, b)),
            None => fields.problem(&name, format!(": expected a bucket name, got {}", kind(item))),
        }
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn customer(plugin: &str, origin: &str) -> Result<super::super::Org, Vec<String>> {
        let text = format!(
            r#"{{"customers":[{{"org":"org2","destinationBucket":"org2-export","allowedBuckets":["org2-archive"],"plugin":{plugin}}}]}}"#
        );
        Config::parse(&text, origin)
            .map(|c| c.customers.into_iter().next().unwrap())
            .map_err(|e| e.problems)
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = customer(r#"{"source":"plugins/org2.wasm"}"#, "/etc/export/config.json").unwrap();
        let p = c.plugin.clone().unwrap();
        assert_eq!(
            p.source,
            PluginSource::File("/etc/export/plugins/org2.wasm".into())
        );
        assert_eq!(p.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
        assert_eq!(p.max_memory_bytes, 16 << 20);
        assert_eq!(p.max_instructions, DEFAULT_MAX_INSTRUCTIONS);
        assert!(!p.precompiled);
        assert_eq!(p.on_error, OnError::Fail);
        assert_eq!(p.settings, "{}");
        assert!(c.may_target("org2-archive") && c.may_target("org2-export") && !c.may_target("org1-export"));
    }

    #[test]
    fn relative_to_a_config_in_s3_and_sha_required() {
        let sha = "ab".repeat(32);
        let c = customer(
            &format!(r#"{{"source":"plugins/org2.cwasm","precompiled":true,"sha256":"{sha}","settings":{{"a":1}},"onError":"default","maxInstructions":5000}}"#),
            "s3://cfg-bucket/export/config.json",
        )
        .unwrap();
        let p = c.plugin.unwrap();
        assert_eq!(
            p.source,
            PluginSource::S3 {
                bucket: "cfg-bucket".into(),
                key: "export/plugins/org2.cwasm".into()
            }
        );
        assert_eq!(p.sha256, Some([0xab; 32]));
        assert_eq!(p.settings, r#"{"a":1}"#);
        assert_eq!(p.on_error, OnError::Default);
        assert!(p.precompiled);
        assert_eq!(p.max_instructions, 5000);
        let err = customer(r#"{"source":"s3://plugins-bucket/org2.wasm"}"#, "c.json").unwrap_err();
        assert_eq!(
            err,
            [
                "customers[0] (org2): plugin.sha256 is required for a plugin loaded from S3 (pin the exact bytes)"
            ]
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let err = customer(
            r#"{"source":"x.wasm","sha256":"xyz","timeoutMs":0,"maxMemoryMiB":"16","maxInstructions":0,"precompiled":"yes","onError":"retry","setings":{}}"#,
            "c.json",
        )
        .unwrap_err();
        assert_eq!(
            err,
            [
                "customers[0] (org2): plugin: unknown field \"setings\"; did you mean \"settings\"?",
                "customers[0] (org2): plugin.sha256 \"xyz\" is not valid; expected 64 hex digits",
                "customers[0] (org2): plugin.timeoutMs: 0 is not allowed; expected a whole number 1 to 10000",
                "customers[0] (org2): plugin.maxMemoryMiB: expected a whole number 1 to 1024, got a string",
                "customers[0] (org2): plugin.maxInstructions: 0 is not allowed; expected a whole number 1 to 10000000000",
                "customers[0] (org2): plugin.precompiled: expected true or false, got a string",
                "customers[0] (org2): plugin.onError \"retry\" is not valid; expected \"fail\", \"skip\" or \"default\"",
            ]
        );
    }

    #[test]
    fn a_candidate_is_a_plugin_of_its_own_and_has_no_candidate() {
        let sha = "cd".repeat(32);
        let c = customer(
            &format!(
                r#"{{"source":"plugins/v3.wasm","settings":{{"a":1}},"onError":"skip",
                    "candidate":{{"source":"s3://plugins-bucket/v4.wasm","sha256":"{sha}","settings":{{"b":2}},"timeoutMs":50,"maxMemoryMiB":32}}}}"#
            ),
            "/etc/export/config.json",
        )
        .unwrap();
        let p = c.plugin.unwrap();
        assert_eq!(p.on_error, OnError::Skip);
        assert_eq!(p.settings, r#"{"a":1}"#);
        let candidate = p.candidate.unwrap();
        assert_eq!(
            candidate.source,
            PluginSource::S3 {
                bucket: "plugins-bucket".into(),
                key: "v4.wasm".into()
            }
        );
        assert_eq!(candidate.sha256, Some([0xcd; 32]));
        assert_eq!(candidate.settings, r#"{"b":2}"#);
        assert_eq!(candidate.timeout, Duration::from_millis(50));
        assert_eq!(candidate.max_memory_bytes, 32 << 20);
        assert_eq!(candidate.max_instructions, DEFAULT_MAX_INSTRUCTIONS);
        assert!(candidate.candidate.is_none());
        // Its fields are checked like a plugin's, named under plugin.candidate; it may not
        // have a candidate of its own; it must be an object.
        let err = customer(
            r#"{"source":"v3.wasm","candidate":{"source":"s3://plugins-bucket/v4.wasm","timeoutMs":0,"candidate":{"source":"v5.wasm"}}}"#,
            "c.json",
        )
        .unwrap_err();
        assert_eq!(
            err,
            [
                "customers[0] (org2): plugin.candidate: unknown field \"candidate\"; expected one of source, sha256, settings, timeoutMs, maxMemoryMiB, maxInstructions, precompiled, onError",
                "customers[0] (org2): plugin.candidate.sha256 is required for a plugin loaded from S3 (pin the exact bytes)",
                "customers[0] (org2): plugin.candidate.timeoutMs: 0 is not allowed; expected a whole number 1 to 10000",
            ]
        );
        let err = customer(r#"{"source":"v3.wasm","candidate":"v4.wasm"}"#, "c.json").unwrap_err();
        assert_eq!(
            err,
            ["customers[0] (org2): plugin.candidate: expected an object with \"source\", got a string"]
        );
        // Written back as it was read.
        let text = r#"{"customers":[{"org":"org2","destinationBucket":"org2-export","plugin":{"source":"/p/v3.wasm","candidate":{"source":"/p/v4.wasm","settings":{"b":2}}}}]}"#;
        let config = Config::parse(text, "/etc/export/config.json").unwrap();
        let again = Config::parse(
            &config.to_json("/etc/export/config.json").to_string(),
            "/etc/export/config.json",
        )
        .unwrap();
        assert_eq!(again.customers[0].plugin, config.customers[0].plugin);
        assert!(again.customers[0].plugin.as_ref().unwrap().candidate.is_some());
    }

    #[test]
    fn allowed_buckets_are_checked() {
        let text = r#"{"customers":[{"org":"a","destinationBucket":"a-out","allowedBuckets":["ok-bucket","Bad_Bucket",3]}]}"#;
        let err = Config::parse(text, "c.json").unwrap_err().problems;
        assert_eq!(
            err,
            [
                "customers[0] (a): allowedBuckets[1] \"Bad_Bucket\" is not a valid S3 bucket name (lowercase letters, digits, dots, hyphens)",
                "customers[0] (a): allowedBuckets[2]: expected a bucket name, got a number",
            ]
        );
    }
}
