//! `glob-filter`: a copy-policy plugin that filters objects by key globs and size.
//!
//! Settings (all optional):
//! `{"include": ["**/*.jpg", "raw/**"], "exclude": ["**/tmp/**"], "minSize": 1, "maxSize": 10737418240}`.
//! See `plugins/README.md` for the exact rules. The logic lives in plain functions
//! ([`glob`], [`settings`], [`decide`]) that are unit-tested on the native target; the
//! WebAssembly glue is the `Guest` impl at the bottom.

wit_bindgen::generate!({
    path: "../../wit",
    world: "copy-policy",
    additional_derives: [PartialEq, Eq],
});

pub mod glob;
pub mod settings;

use settings::Settings;

/// The whole decision. Settings are checked first (so a broken config surfaces on the first
/// object the org sees); then, in this order, the first rule that rejects the object gives
/// the skip reason: empty `proposed`, `exclude`, `include`, `minSize`/`maxSize`. An object
/// that passes every rule is copied to `proposed`, unchanged.
pub fn decide(object: &Object, proposed: &[Target], settings: &str) -> Result<Decision, String> {
    let settings = Settings::parse(settings)?;
    Ok(match skip_reason(object, proposed, &settings) {
        Some(reason) => Decision::Skip(reason),
        None => Decision::Copy(proposed.to_vec()),
    })
}

/// Why `object` is not copied, or `None` when it passes every rule.
pub fn skip_reason(object: &Object, proposed: &[Target], settings: &Settings) -> Option<String> {
    if proposed.is_empty() {
        return Some("suffix not selected".into());
    }
    let key = object.key.as_str();
    if let Some((i, g)) = settings.exclude.iter().enumerate().find(|(_, g)| g.matches(key)) {
        return Some(format!("excluded by exclude[{i}] {:?}", g.as_str()));
    }
    if !settings.include.is_empty() && !settings.include.iter().any(|g| g.matches(key)) {
        let list: Vec<&str> = settings.include.iter().map(glob::Glob::as_str).collect();
        return Some(format!("matches no include pattern {list:?}"));
    }
    if settings.min_size.is_some() || settings.max_size.is_some() {
        let Some(size) = object.size else {
            return Some("size unknown, so minSize/maxSize cannot be checked".into());
        };
        if let Some(min) = settings.min_size
            && size < min
        {
            return Some(format!("size {size} is below minSize {min}"));
        }
        if let Some(max) = settings.max_size
            && size > max
        {
            return Some(format!("size {size} is above maxSize {max}"));
        }
    }
    None
}

/// The component's export.
pub struct GlobFilter;

impl Guest for GlobFilter {
    fn decide(
        _org: String,
        object: Object,
        proposed: Vec<Target>,
        settings: String,
    ) -> Result<Decision, String> {
        decide(&object, &proposed, &settings)
    }
}

export!(GlobFilter);

/// Runs a `cases.json` table (format in plugins/README.md) against the native logic.
#[cfg(test)]
#[path = "../../shared/cases.rs"]
mod cases;

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, size: Option<u64>) -> Object {
        Object {
            bucket: "source".into(),
            key: key.into(),
            size,
            etag: String::new(),
            version_id: None,
            event_time: String::new(),
            event_name: "ObjectCreated:Put".into(),
        }
    }

    fn proposed() -> Vec<Target> {
        vec![Target {
            bucket: "org2-export".into(),
            key: "org2/x".into(),
        }]
    }

    const SETTINGS: &str = r#"{"include": ["**/*.jpg", "raw/**"], "exclude": ["**/tmp/**"], "minSize": 1, "maxSize": 10737418240}"#;

    fn run(key: &str, size: Option<u64>) -> Decision {
        decide(&object(key, size), &proposed(), SETTINGS).unwrap()
    }

    #[test]
    fn passes_copy_proposed_unchanged() {
        assert_eq!(run("org2/a.jpg", Some(10)), Decision::Copy(proposed()));
        assert_eq!(run("raw/a.bin", Some(10)), Decision::Copy(proposed()));
        assert_eq!(
            run("org2/a.jpg", Some(10_737_418_240)),
            Decision::Copy(proposed())
        );
    }

    #[test]
    fn reasons_name_the_rule() {
        assert_eq!(
            run("org2/tmp/a.jpg", Some(10)),
            Decision::Skip("excluded by exclude[0] \"**/tmp/**\"".into())
        );
        assert_eq!(
            run("org2/a.png", Some(10)),
            Decision::Skip("matches no include pattern [\"**/*.jpg\", \"raw/**\"]".into())
        );
        assert_eq!(
            run("org2/a.jpg", Some(0)),
            Decision::Skip("size 0 is below minSize 1".into())
        );
        assert_eq!(
            run("org2/a.jpg", Some(10_737_418_241)),
            Decision::Skip("size 10737418241 is above maxSize 10737418240".into())
        );
        assert!(matches!(run("org2/a.jpg", None), Decision::Skip(r) if r.contains("size unknown")));
    }

    #[test]
    fn exclude_wins_over_include_and_size_ignored_without_rules() {
        let d = decide(
            &object("raw/tmp/a.jpg", None),
            &proposed(),
            r#"{"include": ["raw/**"], "exclude": ["**/tmp/**"]}"#,
        );
        assert!(matches!(d.unwrap(), Decision::Skip(r) if r.starts_with("excluded by exclude[0]")));
        let d = decide(
            &object("raw/a.jpg", None),
            &proposed(),
            r#"{"include": ["raw/**"]}"#,
        );
        assert_eq!(d.unwrap(), Decision::Copy(proposed()));
    }

    #[test]
    fn empty_settings_copy_everything_proposed() {
        assert_eq!(
            decide(&object("x", None), &proposed(), "{}").unwrap(),
            Decision::Copy(proposed())
        );
    }

    #[test]
    fn empty_proposed_skips_after_checking_settings() {
        let d = decide(&object("org2/a.jpg", Some(1)), &[], SETTINGS).unwrap();
        assert_eq!(d, Decision::Skip("suffix not selected".into()));
        let e = decide(&object("org2/a.jpg", Some(1)), &[], r#"{"minSize": "1"}"#).unwrap_err();
        assert!(e.contains("minSize"), "{e}");
    }

    #[test]
    fn cases_file() {
        cases::run(include_str!("../cases.json"), <GlobFilter as Guest>::decide);
    }
}
