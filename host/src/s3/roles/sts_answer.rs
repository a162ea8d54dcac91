//! What STS (or the connection to it) answered, as one bounded line, and whether another
//! attempt could succeed; and the S3-style XML error element reader it shares with
//! [`super::expired`].

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_types::error::display::DisplayErrorContext;

/// The longest reason kept from an STS error.
const MAX_REASON: usize = 600;

/// The text of the first `<tag>…</tag>` in `xml`.
pub(super) fn xml_element(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].to_string()).filter(|t| !t.is_empty())
}

/// `text` on one line, at most [`MAX_REASON`] bytes.
pub(super) fn one_line(text: &str) -> String {
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

/// What STS answered, as `STS answered <status> <code>: <message>` (or why it could not be
/// reached), and whether another attempt could succeed (no answer, throttling, 5xx).
pub(super) fn describe(error: &(dyn std::error::Error + 'static)) -> (String, bool) {
    let sdk = std::iter::successors(Some(error), |e| e.source())
        .find_map(|e| e.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>());
    match sdk {
        Some(SdkError::ServiceError(context)) => {
            let status = context.raw().status().as_u16();
            // A server that is not STS may answer in S3's error format, which the STS parser
            // does not read: take the code and message from the body then.
            let body = context.raw().body().bytes().map(String::from_utf8_lossy);
            let from_body = |tag: &str| body.as_deref().and_then(|b| xml_element(b, tag));
            let code = context
                .err()
                .code()
                .map(str::to_string)
                .or_else(|| from_body("Code"))
                .unwrap_or_else(|| "(no error code)".into());
            let message = context
                .err()
                .message()
                .map(str::to_string)
                .or_else(|| from_body("Message"))
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            let retryable = status == 429 || status >= 500 || code.to_ascii_lowercase().contains("throttl");
            (format!("STS answered HTTP {status} {code}{message}"), retryable)
        }
        Some(SdkError::TimeoutError(_)) => ("STS did not answer in time".into(), true),
        Some(failure @ SdkError::DispatchFailure(_)) => (
            format!("could not reach STS: {}", DisplayErrorContext(failure)),
            true,
        ),
        Some(other) => (DisplayErrorContext(other).to_string(), true),
        None => (DisplayErrorContext(error).to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        let long = "é".repeat(MAX_REASON);
        let line = one_line(&long);
        assert!(line.len() <= MAX_REASON + '…'.len_utf8());
        assert!(line.ends_with('…'));
    }

    #[test]
    fn error_elements_are_read_from_s3_style_bodies() {
        let body = "<?xml version=\"1.0\"?><Error><Code>InvalidRequest</Code><Message>no</Message></Error>";
        assert_eq!(xml_element(body, "Code").as_deref(), Some("InvalidRequest"));
        assert_eq!(xml_element(body, "Message").as_deref(), Some("no"));
        assert_eq!(xml_element(body, "RequestId"), None);
        assert_eq!(xml_element("<Code></Code>", "Code"), None);
    }
}
