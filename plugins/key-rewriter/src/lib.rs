//! `key-rewriter`: a copy-policy plugin that rewrites destination keys.
//!
//! Settings (all optional):
//! `{"replacePrefix": {"from": "org2/", "to": "exports/"}, "datePartition": true}`.
//! See `plugins/README.md` for the exact rules. The logic lives in plain functions
//! ([`settings`], [`date`], [`decide`]) that are unit-tested on the native target; the
//! WebAssembly glue is the `Guest` impl at the bottom.

wit_bindgen::generate!({
    path: "../../wit",
    world: "copy-policy",
    additional_derives: [PartialEq, Eq],
});

use artifact_export::policy::types::Level;

pub mod date;
pub mod settings;

use settings::Settings;

/// The S3 limit on key length, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The whole decision: parse `settings`, then rewrite every proposed target's key.
///
/// Settings are checked first, so a broken config surfaces on the first object the org
/// sees, whether or not that object's suffix was selected.
pub fn decide(object: &Object, proposed: &[Target], settings: &str) -> Result<Decision, String> {
    let settings = Settings::parse(settings)?;
    if proposed.is_empty() {
        return Ok(Decision::Skip("suffix not selected".into()));
    }
    // A removal must map to the key its creation got; a date taken from the removal's own
    // event time would name another key (and delete it).
    if settings.date_partition && object.event_name.starts_with("ObjectRemoved:") {
        return Ok(Decision::Skip(
            "a removal is not mapped with datePartition: its event date is not the creation's".into(),
        ));
    }
    let date = if settings.date_partition {
        Some(date::partition(&object.event_time).map_err(|e| format!("{e} (datePartition needs it)"))?)
    } else {
        None
    };
    let targets = proposed
        .iter()
        .map(|t| {
            let key = rewrite_key(&t.key, &settings, date.as_deref());
            check_key(&t.key, &key)?;
            Ok(Target {
                bucket: t.bucket.clone(),
                key,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Decision::Copy(targets))
}

/// Rewrites one destination key.
///
/// `key = from + rest` becomes `to + date + rest`; a key that does not start with `from`
/// (or no `replacePrefix` at all) becomes `date + key`. `date` is `YYYY/MM/DD/` or empty.
pub fn rewrite_key(key: &str, settings: &Settings, date: Option<&str>) -> String {
    let (head, rest) = match &settings.replace_prefix {
        Some(rp) => match key.strip_prefix(rp.from.as_str()) {
            Some(rest) => (rp.to.as_str(), rest),
            None => ("", key),
        },
        None => ("", key),
    };
    let date = date.unwrap_or("");
    let mut out = String::with_capacity(head.len() + date.len() + rest.len());
    out.push_str(head);
    out.push_str(date);
    out.push_str(rest);
    out
}

/// Rejects rewritten keys S3 would refuse.
fn check_key(original: &str, key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err(format!(
            "replacePrefix: key {original:?} becomes empty after rewriting"
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "key {original:?} becomes {} bytes after rewriting; S3 allows at most {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    Ok(())
}

/// Sends a line to the host's log; on a native build (unit tests) it goes to stderr.
fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    artifact_export::policy::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// The component's export.
pub struct KeyRewriter;

impl Guest for KeyRewriter {
    fn decide(
        org: String,
        object: Object,
        proposed: Vec<Target>,
        settings: String,
    ) -> Result<Decision, String> {
        let decision = decide(&object, &proposed, &settings)?;
        if let Decision::Copy(targets) = &decision {
            for (from, to) in proposed.iter().zip(targets) {
                if from.key != to.key {
                    log(Level::Debug, &format!("{org}: {} -> {}", from.key, to.key));
                }
            }
        }
        Ok(decision)
    }
}

export!(KeyRewriter);

/// Runs a `cases.json` table (format in plugins/README.md) against the native logic.
#[cfg(test)]
#[path = "../../shared/cases.rs"]
mod cases;

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, event_time: &str) -> Object {
        Object {
            bucket: "source".into(),
            key: key.into(),
            size: Some(1),
            etag: String::new(),
            version_id: None,
            event_time: event_time.into(),
            event_name: "ObjectCreated:Put".into(),
        }
    }

    fn target(bucket: &str, key: &str) -> Target {
        Target {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    const SETTINGS: &str = r#"{"replacePrefix": {"from": "org2/", "to": "exports/"}, "datePartition": true}"#;

    #[test]
    fn readme_example() {
        let o = object("org2/photos/a.jpg", "2026-11-25T10:04:05.123Z");
        let d = decide(&o, &[target("org2-export", "org2/photos/a.jpg")], SETTINGS).unwrap();
        assert_eq!(
            d,
            Decision::Copy(vec![target("org2-export", "exports/2026/11/25/photos/a.jpg")])
        );
    }

    #[test]
    fn prefix_only_and_date_only() {
        let s = Settings::parse(r#"{"replacePrefix": {"from": "org2/", "to": "exports/"}}"#).unwrap();
        assert_eq!(rewrite_key("org2/a/b.jpg", &s, None), "exports/a/b.jpg");
        assert_eq!(rewrite_key("other/a.jpg", &s, None), "other/a.jpg");
        let s = Settings::parse(r#"{"datePartition": true}"#).unwrap();
        assert_eq!(
            rewrite_key("org2/a.jpg", &s, Some("2026/01/02/")),
            "2026/01/02/org2/a.jpg"
        );
    }

    #[test]
    fn non_matching_key_gets_date_at_front() {
        let s = Settings::parse(SETTINGS).unwrap();
        assert_eq!(
            rewrite_key("elsewhere/a.jpg", &s, Some("2026/11/25/")),
            "2026/11/25/elsewhere/a.jpg"
        );
    }

    #[test]
    fn empty_from_prepends_and_empty_to_strips() {
        let s = Settings::parse(r#"{"replacePrefix": {"from": "", "to": "x/"}}"#).unwrap();
        assert_eq!(rewrite_key("a.jpg", &s, None), "x/a.jpg");
        let s = Settings::parse(r#"{"replacePrefix": {"from": "org2/", "to": ""}}"#).unwrap();
        assert_eq!(rewrite_key("org2/a.jpg", &s, None), "a.jpg");
    }

    #[test]
    fn removals_map_to_the_same_key_unless_the_date_partitions() {
        let mut removed = object("org2/photos/a.jpg", "2026-11-27T10:04:05.123Z");
        removed.event_name = "ObjectRemoved:Delete".into();
        let proposed = [target("org2-export", "org2/photos/a.jpg")];
        let d = decide(&removed, &proposed, SETTINGS).unwrap();
        assert!(
            matches!(&d, Decision::Skip(why) if why.contains("datePartition")),
            "{d:?}"
        );
        let stable = r#"{"replacePrefix": {"from": "org2/", "to": "exports/"}}"#;
        assert_eq!(
            decide(&removed, &proposed, stable).unwrap(),
            Decision::Copy(vec![target("org2-export", "exports/photos/a.jpg")])
        );
    }

    #[test]
    fn empty_proposed_skips() {
        let d = decide(&object("org2/a.txt", ""), &[], SETTINGS).unwrap();
        assert_eq!(d, Decision::Skip("suffix not selected".into()));
    }

    #[test]
    fn bad_settings_checked_before_empty_proposed() {
        let e = decide(&object("org2/a.txt", ""), &[], r#"{"datePartition": "yes"}"#).unwrap_err();
        assert!(e.contains("datePartition"), "{e}");
    }

    #[test]
    fn missing_event_time_is_an_error_only_with_date_partition() {
        let o = object("org2/a.jpg", "");
        let e = decide(&o, &[target("b", "org2/a.jpg")], SETTINGS).unwrap_err();
        assert!(e.contains("event-time") && e.contains("datePartition"), "{e}");
        let d = decide(
            &o,
            &[target("b", "org2/a.jpg")],
            r#"{"replacePrefix": {"from": "org2/", "to": "e/"}}"#,
        );
        assert_eq!(d.unwrap(), Decision::Copy(vec![target("b", "e/a.jpg")]));
    }

    #[test]
    fn empty_and_too_long_results_are_errors() {
        let o = object("org2/", "");
        let e = decide(
            &o,
            &[target("b", "org2/")],
            r#"{"replacePrefix": {"from": "org2/", "to": ""}}"#,
        )
        .unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let long = format!("org2/{}", "k".repeat(1000));
        let to = "t".repeat(100);
        let s = format!(r#"{{"replacePrefix": {{"from": "org2/", "to": "{to}"}}}}"#);
        let e = decide(&object(&long, ""), &[target("b", &long)], &s).unwrap_err();
        assert!(e.contains("1024"), "{e}");
    }

    #[test]
    fn every_target_is_rewritten_in_order() {
        let o = object("org2/a.jpg", "2026-02-03T00:00:00Z");
        let p = [target("b1", "org2/a.jpg"), target("b2", "other/a.jpg")];
        let d = decide(&o, &p, SETTINGS).unwrap();
        assert_eq!(
            d,
            Decision::Copy(vec![
                target("b1", "exports/2026/02/03/a.jpg"),
                target("b2", "2026/02/03/other/a.jpg"),
            ])
        );
    }

    #[test]
    fn guest_export_runs_natively() {
        let o = object("org2/a.jpg", "2026-11-25T10:04:05Z");
        let d = <KeyRewriter as Guest>::decide(
            "org2".into(),
            o,
            vec![target("b", "org2/a.jpg")],
            SETTINGS.into(),
        );
        assert_eq!(
            d.unwrap(),
            Decision::Copy(vec![target("b", "exports/2026/11/25/a.jpg")])
        );
    }

    #[test]
    fn cases_file() {
        cases::run(include_str!("../cases.json"), <KeyRewriter as Guest>::decide);
    }
}
