//! Log output: JSON lines in Lambda (CloudWatch Logs Insights can query them), readable
//! text on a terminal. Logs always go to stderr so stdout carries only the report.
//!
//! Values in log lines come from outside: object keys, S3 error messages, plugin log lines.
//! A key holding a newline or an ANSI escape sequence must not be able to start a line that
//! looks like one of ours, or recolour and rewrite a terminal. JSON escapes the C0 controls
//! (newline, CR, ESC, …) itself, so a JSON line stays one line; the text format escapes
//! every control character in every field value and message here ([`escape_controls`]).

use std::fmt::Write as _;
use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Installs the global subscriber. `filter` is `RUST_LOG`'s value (`env::process_env`): when
/// set and valid, it overrides the default `info` level.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let filter = filter
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    // A second init (tests, embedding) keeps the first subscriber; that is fine.
    let _ = subscriber(format, filter, std::io::stderr, ansi).try_init();
}

/// The subscriber [`init`] installs, writing to `writer`: separate so tests can capture
/// exactly what the binaries print. `ansi` colours the text format's levels (a terminal).
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
        LogFormat::Text => Box::new(
            builder
                .compact()
                .fmt_fields(
                    format::debug_fn(|w, field, value| {
                        // `%x` fields arrive as values whose Debug is their Display; `?x`
                        // fields already escape inside string literals, but not in every
                        // Debug impl. Escape the formatted text either way.
                        let text = escape_controls(&format!("{value:?}"));
                        if field.name() == "message" {
                            w.write_str(&text)
                        } else {
                            write!(w, "{field}={text}")
                        }
                    })
                    .delimited(" "),
                )
                .finish(),
        ),
    }
}

/// `text` with every character that could end a line, move the cursor or start a terminal
/// escape sequence written as a visible escape: `\n`, `\r`, `\t`, and `\u{..}` for the other
/// C0 controls (ESC included), DEL, the C1 controls, the Unicode line and paragraph
/// separators and the bidirectional overrides (which reorder what a terminal shows).
/// Backslashes are left alone: `?` fields are escaped by Debug already, and doubling them
/// would garble those.
pub fn escape_controls(text: &str) -> String {
    let needs = |c: char| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(needs) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// For tests of what is logged: a log destination that keeps what was written.
#[cfg(test)]
pub(crate) mod captured {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    /// A writer that keeps what was written (clones share it).
    #[derive(Clone, Default)]
    pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl Captured {
        /// Everything written so far, as text.
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::captured::Captured;
    use super::*;

    const HOSTILE: &str = "org1/a.jpg\n2026-01-01T00:00:00Z  INFO record outcome=copied\r\u{1b}[2K\u{1b}[31mred\u{7f}\u{9b}1m\u{2028}end";

    fn logged(format: LogFormat) -> String {
        let out = Captured::default();
        let subscriber = subscriber(format, EnvFilter::new("info"), out.clone(), false);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(key = %HOSTILE, debug = ?HOSTILE, "record {HOSTILE}");
            tracing::warn!(reason = HOSTILE, "plugin log");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn text_lines_escape_controls_in_messages_and_every_field() {
        let text = logged(LogFormat::Text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "one line per event: {text:?}");
        for line in &lines {
            assert!(
                !line.chars().any(|c| c.is_control()),
                "no control character survives: {line:?}"
            );
            assert!(!line.contains('\u{2028}'), "{line:?}");
        }
        assert!(
            lines[0].contains("record org1/a.jpg\\n2026-01-01T00:00:00Z  INFO record"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("key=org1/a.jpg\\n"), "{}", lines[0]);
        assert!(
            lines[0].contains("\\u{1b}[31mred\\u{7f}\\u{9b}1m\\u{2028}end"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("reason=\"org1/a.jpg\\n"), "{}", lines[1]);
    }

    #[test]
    fn json_lines_are_escaped_by_json() {
        let text = logged(LogFormat::Json);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "one line per event: {text:?}");
        for line in &lines {
            let parsed: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
            assert!(!line.contains('\u{1b}') && !line.contains('\r'), "{line:?}");
            assert!(parsed.is_object());
        }
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["key"], HOSTILE, "the value itself is intact");
    }

    #[test]
    fn plain_text_is_untouched_and_controls_are_visible() {
        assert_eq!(escape_controls("org1/a b+é.jpg \\n"), "org1/a b+é.jpg \\n");
        assert_eq!(
            escape_controls("a\nb\r\tc\u{0}\u{1b}"),
            "a\\nb\\r\\tc\\u{0}\\u{1b}"
        );
        assert_eq!(escape_controls("\u{85}\u{202e}"), "\\u{85}\\u{202e}");
    }
}
