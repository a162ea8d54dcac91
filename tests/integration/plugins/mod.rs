use artifact_export::report::Report;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// `plugin test`, `plugin compile`, `plan` and `validate` with plugins, from the command line.
mod commands;
/// What a plugin's answer does: rewrite, filter, `onError` fallbacks, long reasons cut.
mod decisions;
/// Plugins read from S3: pinned by sha256, warmed up, retried, each org waiting for its own.
mod from_s3;
/// Hostile and demanding guests: each cap stops them, and only their own records suffer.
mod hostile;
/// Loading and pinning local plugins: sha256 pins, precompiled `.cwasm` declared or refused.
mod loading;
/// `plugin diff --reports`: a real invocation's report replayed through two plugins.
pub(crate) mod replay;
/// `plugin.candidate`: shadow decisions compared with the plugin's, never acted on.
mod shadow;
/// WIT 0.2 beside 0.1: HEAD facts, tags on demand, a target's own class and tags.
mod wit_0_2;

fn sha256_hex(path: &str) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The org's EMF counts line.
fn org_line(report: &Report, org: &str) -> Value {
    artifact_export::metrics::emf_lines(report, 0)
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["Org"] == org && l.get("Copied").is_some())
        .unwrap_or_else(|| panic!("no counts line for {org}"))
}

fn record<'a>(report: &'a Report, key: &str) -> &'a artifact_export::report::RecordReport {
    report
        .records
        .iter()
        .find(|r| r.key.as_deref() == Some(key))
        .unwrap()
}

/// Config: org1 plain, then one org per `(org, plugin json)`.
fn config_with(orgs: &[(String, String)], plugins: &[(&str, Value)]) -> String {
    let customers: Vec<Value> = orgs
        .iter()
        .map(|(org, bucket)| {
            let mut c = json!({"org": org, "destinationBucket": bucket});
            if let Some((_, plugin)) = plugins.iter().find(|(o, _)| o == org) {
                c["plugin"] = plugin.clone();
            }
            c
        })
        .collect();
    json!({"customers": customers, "retry": 0}).to_string()
}

fn run(cmd: &mut std::process::Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
