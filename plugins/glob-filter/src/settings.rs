//! The plugin's settings:
//! `{"include": [glob...], "exclude": [glob...], "minSize": bytes, "maxSize": bytes}`.
//!
//! Every error starts with `settings:` and names the field, e.g.
//! `settings: include[1]: expected a glob string, got a number`.

use crate::glob::Glob;
use serde_json::Value;

/// Parsed settings. The default (from `{}`) lets every object through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Copy only keys matching at least one of these; empty = no include rule.
    pub include: Vec<Glob>,
    /// Never copy keys matching any of these.
    pub exclude: Vec<Glob>,
    /// Smallest size copied, in bytes (inclusive).
    pub min_size: Option<u64>,
    /// Largest size copied, in bytes (inclusive).
    pub max_size: Option<u64>,
}

const FIELDS: &[&str] = &["include", "exclude", "minSize", "maxSize"];

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
        if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "settings: unknown field {unknown:?} (expected {})",
                FIELDS.join(", ")
            ));
        }
        let settings = Settings {
            include: globs(fields.get("include"), "include")?,
            exclude: globs(fields.get("exclude"), "exclude")?,
            min_size: size(fields.get("minSize"), "minSize")?,
            max_size: size(fields.get("maxSize"), "maxSize")?,
        };
        if let (Some(min), Some(max)) = (settings.min_size, settings.max_size)
            && min > max
        {
            return Err(format!(
                "settings: minSize ({min}) is greater than maxSize ({max}); nothing could be copied"
            ));
        }
        Ok(settings)
    }
}

fn globs(value: Option<&Value>, field: &str) -> Result<Vec<Glob>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(p) => Glob::new(p).map_err(|e| format!("settings: {field}[{i}]: {e}")),
                other => Err(format!(
                    "settings: {field}[{i}]: expected a glob string, got {}",
                    kind(other)
                )),
            })
            .collect(),
        Some(other) => Err(format!(
            "settings: {field}: expected a list of glob strings like [\"**/*.jpg\"], got {}",
            kind(other)
        )),
    }
}

fn size(value: Option<&Value>, field: &str) -> Result<Option<u64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(bytes) => Ok(Some(bytes)),
            None => Err(format!(
                "settings: {field}: expected a whole number of bytes (0 or more), got {n}"
            )),
        },
        Some(other) => Err(format!(
            "settings: {field}: expected a whole number of bytes, got {}",
            kind(other)
        )),
    }
}

/// "a string", "a number", ... for error messages.
fn kind(v: &Value) -> &'static str {
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
            r#"{"include": ["**/*.jpg", "raw/**"], "exclude": ["**/tmp/**"], "minSize": 1, "maxSize": 10737418240}"#,
        )
        .unwrap();
        assert_eq!(
            s.include.iter().map(Glob::as_str).collect::<Vec<_>>(),
            ["**/*.jpg", "raw/**"]
        );
        assert_eq!(
            s.exclude.iter().map(Glob::as_str).collect::<Vec<_>>(),
            ["**/tmp/**"]
        );
        assert_eq!((s.min_size, s.max_size), (Some(1), Some(10_737_418_240)));
        assert_eq!(Settings::parse("{}").unwrap(), Settings::default());
        assert_eq!(Settings::parse(" ").unwrap(), Settings::default());
        assert_eq!(
            Settings::parse(r#"{"include": null, "maxSize": null}"#).unwrap(),
            Settings::default()
        );
        assert_eq!(
            Settings::parse(r#"{"minSize": 5, "maxSize": 5}"#)
                .unwrap()
                .min_size,
            Some(5)
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err("nope").starts_with("settings: not valid JSON"));
        assert_eq!(err("\"x\""), "settings: expected a JSON object, got a string");
        assert_eq!(
            err(r#"{"includes": []}"#),
            "settings: unknown field \"includes\" (expected include, exclude, minSize, maxSize)"
        );
        assert!(
            err(r#"{"include": "**/*.jpg"}"#)
                .starts_with("settings: include: expected a list of glob strings")
        );
        assert_eq!(
            err(r#"{"exclude": ["a", 3]}"#),
            "settings: exclude[1]: expected a glob string, got a number"
        );
        assert_eq!(err(r#"{"include": [""]}"#), "settings: include[0]: empty pattern");
        assert_eq!(
            err(r#"{"minSize": -1}"#),
            "settings: minSize: expected a whole number of bytes (0 or more), got -1"
        );
        assert_eq!(
            err(r#"{"maxSize": 1.5}"#),
            "settings: maxSize: expected a whole number of bytes (0 or more), got 1.5"
        );
        assert_eq!(
            err(r#"{"maxSize": "10GB"}"#),
            "settings: maxSize: expected a whole number of bytes, got a string"
        );
        assert!(
            err(r#"{"minSize": 10, "maxSize": 9}"#)
                .starts_with("settings: minSize (10) is greater than maxSize (9)")
        );
    }
}
