//! `artifact-export invoke`: the Lambda handler once, on an event file, with the same
//! environment as in Lambda. The report goes to stdout as JSON, logs to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use artifact_export::destination::aborts::ABORT_TIMEOUT;
use artifact_export::env::{Lookup, Settings};
use artifact_export::event::parse_event_text;
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle;
use artifact_export::report::Outcome;

use crate::exit::{BadInput, failed_if};
use crate::input::read_event_text;

/// `--output both`: the report and what Lambda would return.
#[derive(serde::Serialize)]
struct Both<'r> {
    report: &'r artifact_export::report::Report,
    response: serde_json::Value,
}

/// What `invoke` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InvokeOutput {
    /// The report: one entry per record, totals.
    Report,
    /// What Lambda would return: Batch Operations answer, SQS batchItemFailures, or the
    /// invocation error.
    Response,
    /// `{"report": …, "response": …}`.
    Both,
}

/// Exit 0 when no record failed, 1 when any did, 2 on bad input.
pub async fn invoke(
    event_path: &Path,
    config_file: Option<PathBuf>,
    output: InvokeOutput,
    get: Lookup<'_>,
) -> Result<ExitCode, BadInput> {
    // Bounded (Lambda's 6 MiB payload cap), from a file or stdin.
    let text = read_event_text(event_path)?;
    let event = parse_event_text(&text).with_context(|| format!("event {}", event_path.display()))?;
    // The records hold what they need: the text is not kept while they are copied.
    drop(text);
    let settings = Settings::from_lookup_with_config(get, config_file)?;
    let exporter = Exporter::from_env(settings).await;
    exporter.config().await?;
    let report = handle(&exporter, event).await;
    // The process ends with this command: multipart aborts still running end first.
    exporter.aborts().settle(ABORT_TIMEOUT).await;
    // The report serialized as itself (fields in its own order, as before `--output`),
    // straight to stdout: never the whole document in memory (10,000 records are MiBs).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match output {
        InvokeOutput::Report => serde_json::to_writer_pretty(&mut out, &report),
        InvokeOutput::Response => serde_json::to_writer_pretty(&mut out, &report.lambda_answer()),
        InvokeOutput::Both => serde_json::to_writer_pretty(
            &mut out,
            &Both {
                report: &report,
                response: report.lambda_answer(),
            },
        ),
    }
    .map_err(std::io::Error::from)
    .and_then(|()| writeln!(out))
    .and_then(|()| out.flush())
    .context("write the report to stdout")?;
    Ok(failed_if(
        report.records.iter().any(|r| r.outcome == Outcome::Failed),
    ))
}
