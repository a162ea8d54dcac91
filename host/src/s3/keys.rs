//! Object keys as S3 writes them into notifications, and as `x-amz-copy-source` wants them.
//!
//! S3 event notifications form-encode keys: a space becomes `+` and everything else
//! outside the unreserved set becomes `%XX`. Decoding must therefore turn `+` into a space
//! *before* percent-decoding, or a literal `+` (sent as `%2B`) would become a space.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Why a notification key could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyDecodeError {
    /// A `%` not followed by two hex digits.
    #[error("key {key:?} has a malformed escape at byte {at}: expected %XX with two hex digits")]
    BadEscape {
        /// The key as received.
        key: String,
        /// Byte offset of the `%`.
        at: usize,
    },
    /// The decoded bytes are not UTF-8.
    #[error("key {0:?} does not decode to UTF-8")]
    NotUtf8(String),
    /// The key is empty.
    #[error("key is empty")]
    Empty,
}

/// Decodes a key from an S3 or EventBridge notification (`+` → space, then `%XX`).
pub fn decode_notification_key(encoded: &str) -> Result<String, KeyDecodeError> {
    if encoded.is_empty() {
        return Err(KeyDecodeError::Empty);
    }
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => out.push(byte),
                    None => {
                        return Err(KeyDecodeError::BadEscape {
                            key: encoded.to_string(),
                            at: i,
                        });
                    }
                }
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| KeyDecodeError::NotUtf8(encoded.to_string()))
}

/// Decodes a key (or prefix) from a listing made with `EncodingType=url`: S3 encodes it as
/// it does in notifications (`+` for a space, `%XX` for the rest), so a key with characters
/// XML cannot carry (`\r`, U+0001) comes back whole.
pub fn decode_listed_key(encoded: &str) -> Result<String, KeyDecodeError> {
    decode_notification_key(encoded)
}

/// Encodes a key the way S3 writes it into notifications (space → `+`, bytes outside the
/// unreserved set and `/` → `%XX`): the inverse of [`decode_notification_key`], for tools
/// and tests that generate events.
pub fn encode_notification_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b'*' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Characters left as they are in a copy source: RFC 3986 unreserved, plus `/` between segments.
const COPY_SOURCE_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Builds the `x-amz-copy-source` value `bucket/key` with the key percent-encoded.
pub fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", utf8_percent_encode(key, COPY_SOURCE_KEEP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_is_space_and_escaped_plus_is_plus() {
        assert_eq!(
            decode_notification_key("a+b%2Bc%C3%A9.pdf").unwrap(),
            "a b+cé.pdf"
        );
    }

    #[test]
    fn listed_keys_with_control_characters() {
        // moto quotes with `%20` for a space, S3 with `+`: both decode.
        assert_eq!(
            decode_listed_key("org1/a%0Db%01c%20d+e%2B.jpg").unwrap(),
            "org1/a\rb\u{1}c d e+.jpg"
        );
    }

    #[test]
    fn plain_keys_pass_through() {
        assert_eq!(
            decode_notification_key("org1/dir/file.jpg").unwrap(),
            "org1/dir/file.jpg"
        );
    }

    #[test]
    fn escaped_percent_and_slash() {
        assert_eq!(decode_notification_key("100%25.pdf").unwrap(), "100%.pdf");
        assert_eq!(decode_notification_key("a%2Fb").unwrap(), "a/b");
        assert_eq!(decode_notification_key("%e2%82%ac").unwrap(), "€");
    }

    #[test]
    fn malformed_escapes_are_errors_not_guesses() {
        assert_eq!(
            decode_notification_key("bad%2").unwrap_err(),
            KeyDecodeError::BadEscape {
                key: "bad%2".into(),
                at: 3
            }
        );
        assert!(matches!(
            decode_notification_key("bad%zz.pdf"),
            Err(KeyDecodeError::BadEscape { at: 3, .. })
        ));
        assert_eq!(
            decode_notification_key("%FF.pdf").unwrap_err(),
            KeyDecodeError::NotUtf8("%FF.pdf".into())
        );
        assert_eq!(decode_notification_key("").unwrap_err(), KeyDecodeError::Empty);
    }

    #[test]
    fn encoding_round_trips_and_matches_the_aws_sample() {
        assert_eq!(encode_notification_key("a b+cé.pdf"), "a+b%2Bc%C3%A9.pdf");
        for key in ["org1/a b+c%d é?#&=.jpg", "x", "a//b/ /.."] {
            assert_eq!(
                decode_notification_key(&encode_notification_key(key)).unwrap(),
                key
            );
        }
    }

    #[test]
    fn copy_source_encodes_everything_but_unreserved_and_slash() {
        assert_eq!(
            copy_source("src", "org1/a b+cé?#%.pdf"),
            "src/org1/a%20b%2Bc%C3%A9%3F%23%25.pdf"
        );
        assert_eq!(copy_source("src", "o/~x_y-z.1"), "src/o/~x_y-z.1");
    }
}
