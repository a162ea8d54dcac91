//! `tiering`: a copy-policy plugin of WIT `artifact-export:policy@0.2.0` that routes each
//! object by its content type and size (facts of the source's HEAD, which 0.2 gives) to a
//! storage class, and tags the copies.
//!
//! Settings:
//! ```json
//! {"rules": [{"contentType": "image/*", "minSize": 1048576,
//!             "storageClass": "STANDARD_IA", "tags": {"tier": "warm"}}],
//!  "skipTagged": {"key": "export", "value": "no"}}
//! ```
//! - `rules` (required, at most 32): the first rule whose conditions all hold decides;
//!   `contentType` is an exact type (`application/pdf`) or a family (`image/*`), `minSize`
//!   and `maxSize` are bytes (the HEAD's `content-length`, else the event's size). The
//!   object is copied to every `proposed` target with the rule's `storageClass` (absent: the
//!   org's) and `tags` added. No rule matches: copied to `proposed` unchanged.
//! - `skipTagged` (optional): skip an object that carries this tag. Only then does the
//!   plugin call the host's `tags` (one `GetObjectTagging`); when the tags cannot be read
//!   (a server without tagging) the decision is `err`, and the org's `onError` applies.
//!
//! The logic is plain functions over plain types ([`Rule`], [`decide_with`]), unit-tested
//! on the native target; the WebAssembly glue is the `Guest` impl at the bottom.

wit_bindgen::generate!({
    path: "../../wit/v0.2",
    world: "copy-policy",
    additional_derives: [PartialEq, Eq],
});

use artifact_export::policy::host;
use artifact_export::policy::types::Pair;
use serde_json::Value;

/// Most rules a settings object may hold.
pub const MAX_RULES: usize = 32;

/// One rule of `rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `type/subtype`, or `type/*` for a family; `None` matches any type.
    pub content_type: Option<String>,
    /// Least size in bytes.
    pub min_size: Option<u64>,
    /// Largest size in bytes.
    pub max_size: Option<u64>,
    /// The copies' storage class; `None` keeps the org's.
    pub storage_class: Option<String>,
    /// Tags added to each copy.
    pub tags: Vec<(String, String)>,
}

/// Parsed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// Skip objects carrying this tag (key, value).
    pub skip_tagged: Option<(String, String)>,
}

fn string_field(object: &serde_json::Map<String, Value>, field: &str, at: &str) -> Result<Option<String>, String> {
    match object.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{at}.{field}: expected a string")),
    }
}

fn size_field(object: &serde_json::Map<String, Value>, field: &str, at: &str) -> Result<Option<u64>, String> {
    match object.get(field) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{at}.{field}: expected a whole number of bytes")),
    }
}

impl Settings {
    /// Parses the settings JSON; the error names the field.
    pub fn parse(text: &str) -> Result<Settings, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("settings: not JSON: {e}"))?;
        let top = value.as_object().ok_or("settings: expected a JSON object")?;
        for field in top.keys() {
            if field != "rules" && field != "skipTagged" {
                return Err(format!("settings.{field}: unknown field; expected rules or skipTagged"));
            }
        }
        let rules = top
            .get("rules")
            .and_then(Value::as_array)
            .ok_or("settings.rules: expected a list of rules")?;
        if rules.len() > MAX_RULES {
            return Err(format!("settings.rules: {} rules; at most {MAX_RULES}", rules.len()));
        }
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let at = format!("settings.rules[{i}]");
                let rule = rule.as_object().ok_or(format!("{at}: expected an object"))?;
                for field in rule.keys() {
                    if !["contentType", "minSize", "maxSize", "storageClass", "tags"].contains(&field.as_str()) {
                        return Err(format!(
                            "{at}.{field}: unknown field; expected contentType, minSize, maxSize, storageClass or tags"
                        ));
                    }
                }
                let tags = match rule.get("tags") {
                    None => Vec::new(),
                    Some(Value::Object(tags)) => tags
                        .iter()
                        .map(|(k, v)| match v {
                            Value::String(v) => Ok((k.clone(), v.clone())),
                            _ => Err(format!("{at}.tags.{k}: expected a string")),
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => return Err(format!("{at}.tags: expected an object of strings")),
                };
                Ok(Rule {
                    content_type: string_field(rule, "contentType", &at)?,
                    min_size: size_field(rule, "minSize", &at)?,
                    max_size: size_field(rule, "maxSize", &at)?,
                    storage_class: string_field(rule, "storageClass", &at)?,
                    tags,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let skip_tagged = match top.get("skipTagged") {
            None => None,
            Some(Value::Object(tag)) => match (tag.get("key"), tag.get("value")) {
                (Some(Value::String(k)), Some(Value::String(v))) => Some((k.clone(), v.clone())),
                _ => return Err("settings.skipTagged: expected {\"key\": string, \"value\": string}".into()),
            },
            Some(_) => return Err("settings.skipTagged: expected an object".into()),
        };
        Ok(Settings { rules, skip_tagged })
    }
}

impl Rule {
    /// Whether the rule holds for an object of `content_type` and `size`.
    pub fn matches(&self, content_type: Option<&str>, size: Option<u64>) -> bool {
        if let Some(want) = &self.content_type {
            // `text/html; charset=utf-8` is of type `text/html`.
            let Some(have) = content_type.map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            else {
                return false;
            };
            let want = want.to_ascii_lowercase();
            let matched = match want.strip_suffix("/*") {
                Some(family) => have.split('/').next() == Some(family),
                None => have == want,
            };
            if !matched {
                return false;
            }
        }
        if self.min_size.is_some() || self.max_size.is_some() {
            let Some(size) = size else { return false };
            if self.min_size.is_some_and(|min| size < min) || self.max_size.is_some_and(|max| size > max) {
                return false;
            }
        }
        true
    }
}

/// The decision for `object` (its content type and size) over `proposed`; `tags` reads the
/// object's tags, called only when `skipTagged` is set.
pub fn decide_with(
    content_type: Option<&str>,
    size: Option<u64>,
    proposed: &[Target],
    settings: &Settings,
    tags: impl FnOnce() -> Result<Vec<(String, String)>, String>,
) -> Result<Decision, String> {
    if proposed.is_empty() {
        return Ok(Decision::Skip("suffix not selected".into()));
    }
    if let Some((key, value)) = &settings.skip_tagged {
        let tags = tags().map_err(|why| format!("skipTagged needs the object's tags: {why}"))?;
        if tags.iter().any(|(k, v)| k == key && v == value) {
            return Ok(Decision::Skip(format!("tagged {key}={value}")));
        }
    }
    let Some(rule) = settings.rules.iter().find(|r| r.matches(content_type, size)) else {
        return Ok(Decision::Copy(proposed.to_vec()));
    };
    Ok(Decision::Copy(
        proposed
            .iter()
            .map(|t| Target {
                storage_class: rule.storage_class.clone().or_else(|| t.storage_class.clone()),
                tags: t
                    .tags
                    .iter()
                    .filter(|p| !rule.tags.iter().any(|(k, _)| *k == p.key))
                    .cloned()
                    .chain(rule.tags.iter().map(|(key, value)| Pair {
                        key: key.clone(),
                        value: value.clone(),
                    }))
                    .collect(),
                ..t.clone()
            })
            .collect(),
    ))
}

struct Plugin;

impl Guest for Plugin {
    fn decide(_org: String, object: Object, proposed: Vec<Target>, settings: String) -> Result<Decision, String> {
        let settings = Settings::parse(&settings)?;
        let size = object.content_length.or(object.size);
        decide_with(object.content_type.as_deref(), size, &proposed, &settings, || {
            host::tags().map(|tags| tags.into_iter().map(|p| (p.key, p.value)).collect())
        })
    }
}

export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn proposed() -> Vec<Target> {
        vec![Target {
            bucket: "org2-export".into(),
            key: "org2/a".into(),
            storage_class: None,
            tags: Vec::new(),
        }]
    }

    fn settings() -> Settings {
        Settings::parse(
            r#"{"rules": [{"contentType": "image/*", "minSize": 100, "storageClass": "STANDARD_IA", "tags": {"tier": "warm"}},
                          {"contentType": "application/pdf", "storageClass": "GLACIER_IR"}],
                "skipTagged": {"key": "export", "value": "no"}}"#,
        )
        .unwrap()
    }

    fn no_tags() -> Result<Vec<(String, String)>, String> {
        Ok(Vec::new())
    }

    #[test]
    fn the_first_matching_rule_sets_class_and_tags() {
        let got = decide_with(Some("image/png"), Some(500), &proposed(), &settings(), no_tags).unwrap();
        let Decision::Copy(targets) = got else { panic!("{got:?}") };
        assert_eq!(targets[0].storage_class.as_deref(), Some("STANDARD_IA"));
        assert_eq!(targets[0].tags, [Pair { key: "tier".into(), value: "warm".into() }]);
        let got = decide_with(Some("application/pdf; x=y"), None, &proposed(), &settings(), no_tags).unwrap();
        let Decision::Copy(targets) = got else { panic!("{got:?}") };
        assert_eq!(targets[0].storage_class.as_deref(), Some("GLACIER_IR"));
        // Too small for the image rule, no other: unchanged.
        let got = decide_with(Some("image/png"), Some(5), &proposed(), &settings(), no_tags).unwrap();
        assert_eq!(got, Decision::Copy(proposed()));
    }

    #[test]
    fn skip_tagged_reads_tags_and_an_unreadable_tag_set_is_an_error() {
        let tagged = || Ok(vec![("export".to_string(), "no".to_string())]);
        let got = decide_with(Some("image/png"), Some(500), &proposed(), &settings(), tagged).unwrap();
        assert_eq!(got, Decision::Skip("tagged export=no".into()));
        let err = decide_with(None, None, &proposed(), &settings(), || Err("no tagging".into())).unwrap_err();
        assert!(err.contains("no tagging"), "{err}");
    }

    #[test]
    fn bad_settings_name_the_field() {
        assert!(Settings::parse("{}").unwrap_err().contains("settings.rules"));
        assert!(
            Settings::parse(r#"{"rules": [{"minSize": "big"}]}"#)
                .unwrap_err()
                .contains("rules[0].minSize")
        );
        assert!(Settings::parse(r#"{"rules": [], "x": 1}"#).unwrap_err().contains("settings.x"));
    }
}
