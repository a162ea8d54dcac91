//! `artifact-export plugin diff OLD NEW`: both plugins asked the same questions; the inputs
//! whose decisions differ (as the shadow compares them: sets of targets, any skip equals any
//! skip), side by side, and how many differ. `--reports` replays past invocations: each
//! routed object record of a report or of JSON log lines, asked again as it was asked
//! ([`artifact_export::report::replay`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use artifact_export::backfill::reconcile::thousands;
use artifact_export::event::{RecordBody, SourceObject, parse_event_text};
use artifact_export::plan::cases::{
    case_given, case_object, decision_json, describe, parse_cases, settings_text,
};
use artifact_export::plan::same_decision;
use artifact_export::policy::{DecisionError, Given, Plugin, Verdict};
use artifact_export::report::replay::parse_reports;
use artifact_export::route::Target;
use serde_json::{Value, json};

/// One question asked of both plugins.
struct Input {
    /// How the input is named in the output (case name, key, or event record).
    label: String,
    org: String,
    object: SourceObject,
    proposed: Vec<Target>,
    /// The input's own settings (a case's), used when the command line gives none.
    settings: Option<String>,
    /// What a 0.2 plugin is given beyond the event (a case's facts and tags, a report's
    /// HEAD facts); a 0.1 plugin is given none of it.
    given: Given,
}

/// Where the inputs come from.
pub enum Source {
    Cases(PathBuf),
    Keys(PathBuf),
    Events(PathBuf),
    Reports(PathBuf),
}

/// The records of `--reports` that were not compared.
#[derive(Default)]
struct LeftOut {
    /// Without a key or an org: never a plugin's question.
    unrouted: usize,
    /// Of another org than `--org`.
    other_org: usize,
}

impl LeftOut {
    fn total(&self) -> usize {
        self.unrouted + self.other_org
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.unrouted > 0 {
            parts.push(format!(
                "{} without a key or an org",
                thousands(self.unrouted as u64)
            ));
        }
        if self.other_org > 0 {
            parts.push(format!("{} of another org", thousands(self.other_org as u64)));
        }
        let total = self.total();
        let records = if total == 1 { "record" } else { "records" };
        match parts.is_empty() {
            true => "0 records left out".to_string(),
            false => format!(
                "{} {records} left out ({})",
                thousands(total as u64),
                parts.join(", ")
            ),
        }
    }
}

fn read(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{what} {}: could not be read", path.display()))
}

/// The org of a key when `--org` is not given: its first path segment.
fn org_of(org: Option<&str>, key: &str, origin: &str) -> Result<String> {
    match org {
        Some(org) => Ok(org.to_string()),
        None => match key.split_once('/') {
            Some((org, _)) if !org.is_empty() => Ok(org.to_string()),
            _ => bail!("{origin}: key {key:?} has no org prefix; pass --org"),
        },
    }
}

/// What plain suffix matching proposes for a key read from keys or events: the org's
/// `<org>-export` bucket, the same key (as `plugin test` proposes).
fn input(label: String, org: String, object: SourceObject) -> Input {
    let proposed = vec![Target::new(format!("{org}-export"), object.key.clone())];
    Input {
        label,
        org,
        object,
        proposed,
        settings: None,
        given: Given::default(),
    }
}

/// The records of a file of reports or log lines, as they were asked: only `org`'s when given.
fn replayed(path: &Path, org: Option<&str>) -> Result<(Vec<Input>, LeftOut)> {
    let text = read(path, "reports")?;
    let replay = parse_reports(&text).map_err(|e| anyhow!("reports {} {e}", path.display()))?;
    let mut left_out = LeftOut {
        unrouted: replay.left_out,
        other_org: 0,
    };
    let mut inputs = Vec::new();
    for record in replay.inputs {
        if org.is_some_and(|org| org != record.org) {
            left_out.other_org += 1;
            continue;
        }
        let proposed = record
            .proposed
            .iter()
            .map(|p| Target::new(p.bucket.clone(), p.key.clone()))
            .collect();
        // What a 0.2 plugin was given, as the report wrote it: the HEAD's facts, and the
        // answer its `tags` call got (a plugin that did not call it then is told so).
        let tags = match (&record.facts.tags, &record.facts.tags_error) {
            (Some(tags), _) => Ok(tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            (None, Some(why)) => Err(why.clone()),
            (None, None) => {
                Err("the report holds no tags: no plugin read them when it was written".to_string())
            }
        };
        let given = Given {
            facts: record.facts.head.clone().map(Arc::new),
            tags: Some(Arc::new(move |_| tags.clone())),
        };
        inputs.push(Input {
            object: record.object(),
            label: record.label,
            org: record.org,
            proposed,
            settings: None,
            given,
        });
    }
    Ok((inputs, left_out))
}

/// The inputs, and for `--reports` the records left out.
fn inputs(source: &Source, org: Option<&str>) -> Result<(Vec<Input>, Option<LeftOut>)> {
    let inputs: Result<Vec<Input>> = match source {
        Source::Reports(path) => {
            let (inputs, left_out) = replayed(path, org)?;
            return Ok((inputs, Some(left_out)));
        }
        Source::Cases(path) => {
            let text = read(path, "cases")?;
            let cases = parse_cases(&text, &path.display().to_string()).map_err(|e| anyhow!(e))?;
            Ok(cases
                .into_iter()
                .map(|case| Input {
                    object: case_object(&case.key, case.size, case.event_time.as_deref()),
                    given: case_given(case.object.as_ref(), case.size, case.tags.as_ref()),
                    proposed: case.proposed_targets(),
                    settings: case.settings.as_ref().map(|s| settings_text(Some(s))),
                    org: org.map_or(case.org.clone(), str::to_string),
                    label: case.name,
                })
                .collect())
        }
        Source::Keys(path) => {
            let text = read(path, "keys")?;
            let mut inputs = Vec::new();
            for (n, line) in text.lines().enumerate() {
                let key = line.trim_end_matches('\r');
                if key.is_empty() {
                    continue;
                }
                let origin = format!("keys {} line {}", path.display(), n + 1);
                let org = org_of(org, key, &origin)?;
                inputs.push(input(key.to_string(), org, case_object(key, None, None)));
            }
            Ok(inputs)
        }
        Source::Events(path) => {
            let text = read(path, "events")?;
            let event = parse_event_text(&text).map_err(|e| anyhow!("events {}: {e}", path.display()))?;
            let mut inputs = Vec::new();
            for record in event.records {
                let origin = format!("events {} record {}", path.display(), record.locator);
                match record.body {
                    RecordBody::Object(object) => {
                        let org = org_of(org, &object.key, &origin)?;
                        let label = format!("{} ({})", object.key, record.locator);
                        inputs.push(input(label, org, object));
                    }
                    RecordBody::Ignored { .. } => {}
                    RecordBody::Invalid { reason } => bail!("{origin}: {reason}"),
                }
            }
            Ok(inputs)
        }
    };
    Ok((inputs?, None))
}

/// Whether two answers decide the same; two failures are the same decision (the record fails).
fn same(a: &Result<Verdict, DecisionError>, b: &Result<Verdict, DecisionError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => same_decision(a, b),
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

/// The settings each plugin is given for the decisions.
pub struct DiffSettings {
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Runs both plugins over the inputs: exit 0 when none differ, 1 when some do.
pub fn diff(
    old: &Plugin,
    new: &Plugin,
    source: &Source,
    org: Option<&str>,
    settings: &DiffSettings,
    json_out: bool,
) -> Result<ExitCode> {
    let (inputs, left_out) = inputs(source, org)?;
    let mut differences = Vec::new();
    for input in &inputs {
        let own = input.settings.clone().unwrap_or_else(|| "{}".to_string());
        let old_settings = settings.old.clone().unwrap_or_else(|| own.clone());
        let new_settings = settings.new.clone().unwrap_or_else(|| own.clone());
        let a = old
            .decide_measured_given(
                &input.org,
                &input.object,
                &input.proposed,
                &old_settings,
                &input.given,
            )
            .0;
        let b = new
            .decide_measured_given(
                &input.org,
                &input.object,
                &input.proposed,
                &new_settings,
                &input.given,
            )
            .0;
        if !same(&a, &b) {
            differences.push((input, a, b));
        }
    }
    if json_out {
        let mut doc = json!({
            "compared": inputs.len(),
            "differing": differences.len(),
            "differences": differences.iter().map(|(input, a, b)| json!({
                "input": input.label,
                "org": input.org,
                "key": input.object.key,
                "old": decision_json(a),
                "new": decision_json(b),
            })).collect::<Vec<Value>>(),
        });
        if let Some(left_out) = &left_out {
            doc["leftOut"] = json!(left_out.total());
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for (input, a, b) in &differences {
            println!("{} (org {})", input.label, input.org);
            println!("      old: {}", describe(a));
            println!("      new: {}", describe(b));
        }
        if let Some(left_out) = &left_out {
            println!("{}", left_out.describe());
        }
        println!(
            "{} of {} differ",
            thousands(differences.len() as u64),
            thousands(inputs.len() as u64)
        );
    }
    Ok(if differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
