//! A [`Tally`] as EMF lines: the counts line, its continuation lines (time values beyond
//! [`MAX_VALUES`]) and the `Failed`-by-`ReasonCode` lines, each one JSON object within
//! EMF's limits.

use serde_json::{Map, Value, json};

use super::tally::Tally;
use super::{MAX_DIMENSIONS, MAX_METRICS, MAX_VALUES, NAMESPACE, REASON_CODE_DIMENSION};

/// One `Failed` line per reason code, with the dimensions `dims` plus `ReasonCode`.
pub(super) fn by_code_lines(tally: &Tally, dims: &[(&str, &str)], timestamp_ms: u64) -> Vec<String> {
    tally
        .failed_by_code
        .iter()
        .map(|(code, n)| {
            let mut dims = dims.to_vec();
            dims.push((REASON_CODE_DIMENSION, code.as_str()));
            let mut members = Map::new();
            members.insert("Failed".into(), (*n).into());
            line(members, vec![definition("Failed", "Count")], &dims, timestamp_ms)
        })
        .collect()
}

/// The line with the counts (and the first values of each time metric), then continuation
/// lines with the time metrics' further values.
pub(super) fn tally_lines(tally: &Tally, dims: &[(&str, &str)], timestamp_ms: u64) -> Vec<String> {
    let mut counts: Vec<(&str, &str, u64)> = vec![
        ("Copied", "Count", tally.totals.copied as u64),
        ("Skipped", "Count", tally.totals.skipped as u64),
        ("Superseded", "Count", tally.totals.superseded as u64),
        ("Failed", "Count", tally.totals.failed as u64),
        ("BytesCopied", "Bytes", tally.totals.bytes_copied),
    ];
    // Only where a removal was propagated: lines without deletes stay as they were.
    if tally.totals.deleted > 0 {
        counts.push(("Deleted", "Count", tally.totals.deleted as u64));
    }
    let p = &tally.plugin;
    if p.decisions > 0 {
        counts.extend([
            ("PluginDecisions", "Count", p.decisions),
            ("PluginTraps", "Count", p.traps),
            ("PluginTimeouts", "Count", p.timeouts),
            ("PluginErrAnswers", "Count", p.err_answers),
            ("PluginInvalidAnswers", "Count", p.invalid_answers),
            ("PluginFallbacks", "Count", p.fallbacks),
        ]);
    }
    // Only where a 0.2 plugin read tags: other lines stay as they were.
    if p.tag_reads > 0 {
        counts.push(("PluginTagReads", "Count", p.tag_reads));
    }
    if p.shadow_agree + p.shadow_disagree + p.shadow_failed > 0 {
        counts.extend([
            ("PluginShadowAgree", "Count", p.shadow_agree),
            ("PluginShadowDisagree", "Count", p.shadow_disagree),
            ("PluginShadowFailed", "Count", p.shadow_failed),
        ]);
    }
    let times: [(&str, &[u64]); 3] = [
        ("CopyLatency", &tally.latencies_ms),
        ("ExportLag", &tally.lags_ms),
        ("PluginDecisionTime", &p.decision_ms),
    ];
    let mut lines = Vec::new();
    let chunks = times
        .iter()
        .map(|(_, v)| v.len().div_ceil(MAX_VALUES))
        .max()
        .unwrap_or(0);
    for i in 0..chunks.max(1) {
        let mut members = Map::new();
        let mut definitions = Vec::new();
        if i == 0 {
            for (name, unit, value) in &counts {
                members.insert((*name).into(), (*value).into());
                definitions.push(definition(name, unit));
            }
        }
        for (name, values) in times {
            if let Some(chunk) = values.chunks(MAX_VALUES).nth(i) {
                members.insert(name.into(), json!(chunk));
                definitions.push(definition(name, "Milliseconds"));
            }
        }
        lines.push(line(members, definitions, dims, timestamp_ms));
    }
    lines
}

/// One EMF line of `counts` (unit `Count`) with the dimensions `dims`: what other runs than
/// an invocation's records (a scheduled reconcile) publish.
pub fn count_line(counts: &[(&str, u64)], dims: &[(&str, &str)], timestamp_ms: u64) -> String {
    let mut members = Map::new();
    let mut definitions = Vec::with_capacity(counts.len());
    for (name, value) in counts {
        members.insert((*name).into(), (*value).into());
        definitions.push(definition(name, "Count"));
    }
    line(members, definitions, dims, timestamp_ms)
}

fn definition(name: &str, unit: &str) -> Value {
    json!({"Name": name, "Unit": unit})
}

fn line(
    mut members: Map<String, Value>,
    metrics: Vec<Value>,
    dims: &[(&str, &str)],
    timestamp_ms: u64,
) -> String {
    // Guaranteed by construction (a fixed list of metrics, at most two dimensions); checked
    // in debug builds so a new metric cannot quietly break EMF's limits.
    debug_assert!(metrics.len() <= MAX_METRICS && dims.len() <= MAX_DIMENSIONS);
    let mut set = Vec::with_capacity(dims.len());
    for (name, value) in dims {
        members.insert((*name).into(), (*value).into());
        set.push(*name);
    }
    // No dimensions: an empty dimension set, so the metrics are published without any.
    members.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [set],
                "Metrics": metrics,
            }],
        }),
    );
    Value::Object(members).to_string()
}
