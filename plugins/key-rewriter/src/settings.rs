//! The plugin's settings: `{"replacePrefix": {"from": "...", "to": "..."}, "datePartition": bool}`.
//!
//! Every error starts with `settings:` and names the field, e.g.
//! `settings: replacePrefix.from: expected a string, got a number`.

use serde_json::{Map, Value};

/// Parsed settings. The default (from `{}`) rewrites nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Replace this leading prefix of each destination key.
    pub replace_prefix: Option<ReplacePrefix>,
    /// Insert `YYYY/MM/DD/` (UTC date of the event) after the (new) prefix.
    pub date_partition: bool,
}

/// `replacePrefix`: a key starting with `from` gets `to` in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacePrefix {
    /// The prefix to look for; may be empty (then `to` is prepended to every key).
    pub from: String,
    /// Its replacement; may be empty (then `from` is just removed).
    pub to: String,
}

impl Settings {
    /// Parses the settings JSON. An empty or all-whitespace string counts as `{}`;
    /// a field set to `null` counts as absent; unknown fields are errors (catches typos).
    pub fn parse(text: &str) -> Result<Settings, String> {
        if text.trim().is_empty() {
            return Ok(Settings::default());
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("settings: not valid JSON: {e}"))?;
        let Value::Object(fields) = value else {
            return Err(format!("settings: expected a JSON object, got {}", kind(&value)));
        };
        check_fields(&fields, "", &["replacePrefix", "datePartition"])?;
        let replace_prefix = match fields.get("replacePrefix") {
            None | Some(Value::Null) => None,
            Some(Value::Object(rp)) => {
                check_fields(rp, "replacePrefix", &["from", "to"])?;
                Some(ReplacePrefix {
                    from: string_field(rp, "replacePrefix.from", "from")?,
                    to: string_field(rp, "replacePrefix.to", "to")?,
                })
            }
            Some(other) => {
                return Err(format!(
                    "settings: replacePrefix: expected an object like {{\"from\": \"org2/\", \"to\": \"exports/\"}}, got {}",
                    kind(other)
                ));
            }
        };
        let date_partition = match fields.get("datePartition") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "settings: datePartition: expected true or false, got {}",
                    kind(other)
                ));
            }
        };
        Ok(Settings {
            replace_prefix,
            date_partition,
        })
    }
}

fn string_field(map: &Map<String, Value>, path: &str, name: &str) -> Result<String, String> {
    match map.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(format!("settings: {path} is missing")),
        Some(other) => Err(format!(
            "settings: {path}: expected a string, got {}",
            kind(other)
        )),
    }
}

fn check_fields(map: &Map<String, Value>, at: &str, known: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(unknown) => {
            let at = if at.is_empty() {
                String::new()
            } else {
                format!("{at}: ")
            };
            Err(format!(
                "settings: {at}unknown field {unknown:?} (expected {})",
                known.join(", ")
            ))
        }
    }
}

/// "a string", "a number", ... for error messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Settings::parse(text).unwrap_err()
    }

    #[test]
    fn full_and_empty() {
        let s = Settings::parse(
            r#"{"replacePrefix": {"from": "org2/", "to": "exports/"}, "datePartition": true}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            Settings {
                replace_prefix: Some(ReplacePrefix {
                    from: "org2/".into(),
                    to: "exports/".into()
                }),
                date_partition: true,
            }
        );
        assert_eq!(Settings::parse("{}").unwrap(), Settings::default());
        assert_eq!(Settings::parse("").unwrap(), Settings::default());
        assert_eq!(
            Settings::parse(r#"{"replacePrefix": null, "datePartition": null}"#).unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err("{").starts_with("settings: not valid JSON"));
        assert_eq!(err("[]"), "settings: expected a JSON object, got a list");
        assert_eq!(
            err(r#"{"datePartiton": true}"#),
            "settings: unknown field \"datePartiton\" (expected replacePrefix, datePartition)"
        );
        assert_eq!(
            err(r#"{"datePartition": "yes"}"#),
            "settings: datePartition: expected true or false, got a string"
        );
        assert!(
            err(r#"{"replacePrefix": "org2/"}"#).starts_with("settings: replacePrefix: expected an object")
        );
        assert_eq!(
            err(r#"{"replacePrefix": {"to": "x/"}}"#),
            "settings: replacePrefix.from is missing"
        );
        assert_eq!(
            err(r#"{"replacePrefix": {"from": "a/"}}"#),
            "settings: replacePrefix.to is missing"
        );
        assert_eq!(
            err(r#"{"replacePrefix": {"from": 1, "to": "x/"}}"#),
            "settings: replacePrefix.from: expected a string, got a number"
        );
        assert_eq!(
            err(r#"{"replacePrefix": {"from": "a/", "to": "b/", "too": 1}}"#),
            "settings: replacePrefix: unknown field \"too\" (expected from, to)"
        );
    }
}
