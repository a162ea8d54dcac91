//! Shared by the plugins' unit tests (included with `#[path]`): runs a `cases.json` table
//! (format in plugins/README.md) against a plugin's native `decide` logic, building the
//! object exactly as the host's `plugin test` runner is specified to.

use crate::{Decision, Object, Target};
use serde_json::Value;

fn targets(v: &Value) -> Vec<Target> {
    v.as_array()
        .expect("a list of targets")
        .iter()
        .map(|t| Target {
            bucket: t["bucket"].as_str().expect("target.bucket").into(),
            key: t["key"].as_str().expect("target.key").into(),
        })
        .collect()
}

/// Runs every case through `decide(org, object, proposed, settings)` and fails listing all
/// the cases whose outcome differs from `expect`.
pub fn run(text: &str, decide: impl Fn(String, Object, Vec<Target>, String) -> Result<Decision, String>) {
    let cases: Value = serde_json::from_str(text).expect("cases.json is JSON");
    let cases = cases.as_array().expect("cases.json is a list");
    assert!(cases.len() >= 6, "at least 6 cases");
    let mut failures = Vec::new();
    for c in cases {
        let name = c["name"].as_str().expect("case.name");
        let org = c["org"].as_str().expect("case.org");
        let object = Object {
            bucket: "source".into(),
            key: c["key"].as_str().expect("case.key").into(),
            size: c.get("size").and_then(Value::as_u64),
            etag: String::new(),
            version_id: None,
            event_time: c.get("eventTime").and_then(Value::as_str).unwrap_or("").into(),
            event_name: "ObjectCreated:Put".into(),
        };
        let settings = match c.get("settings") {
            None => "{}".to_string(),
            Some(Value::String(raw)) => raw.clone(),
            Some(v) => v.to_string(),
        };
        let proposed = targets(&c["proposed"]);
        let got = decide(org.into(), object, proposed, settings);
        let expect = &c["expect"];
        let ok = match (expect.get("copy"), expect.get("skip"), expect.get("error"), &got) {
            (Some(want), None, None, Ok(Decision::Copy(t))) => *t == targets(want),
            (None, Some(want), None, Ok(Decision::Skip(r))) => r.contains(want.as_str().unwrap()),
            (None, None, Some(want), Err(e)) => e.contains(want.as_str().unwrap()),
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: expected {expect}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
