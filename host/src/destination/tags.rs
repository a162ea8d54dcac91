//! An object's tags: the source's as S3 keeps them ([`source_tags`]), merged with what a
//! target adds ([`merged`]), written as a `Tagging` header ([`tagging_header`]).

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::reason::FailureCode;
use crate::s3::{S3Failure, classify};

/// Most tags an object may have: S3's limit.
pub const MAX_OBJECT_TAGS: usize = 10;

/// The tags of `key` in `bucket`; `None` when the server does not implement tagging
/// (Garage answers 501 NotImplemented).
pub(super) async fn source_tags(
    client: &Client,
    bucket: &str,
    key: &str,
    owner: Option<&str>,
) -> Result<Option<Vec<(String, String)>>, S3Failure> {
    match client
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .set_expected_bucket_owner(owner.map(str::to_string))
        .send()
        .await
    {
        Ok(out) => Ok(Some(
            out.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        )),
        Err(SdkError::ServiceError(e))
            if e.raw().status().as_u16() == 501 || e.err().code() == Some("NotImplemented") =>
        {
            Ok(None)
        }
        Err(e) => Err(classify(&e)),
    }
}

/// The source's `tags` with `added` merged in (an added key replaces the source's value);
/// an error when the result has more than [`MAX_OBJECT_TAGS`].
pub(super) fn merged(
    mut tags: Vec<(String, String)>,
    added: &[(String, String)],
) -> Result<Vec<(String, String)>, S3Failure> {
    let from_source = tags.len();
    for (key, value) in added {
        match tags.iter_mut().find(|(k, _)| k == key) {
            Some(kept) => kept.1 = value.clone(),
            None => tags.push((key.clone(), value.clone())),
        }
    }
    if tags.len() > MAX_OBJECT_TAGS {
        return Err(S3Failure::Fatal {
            code: FailureCode::s3("InvalidTag"),
            message: format!(
                "the target adds {} tags to the source's {from_source}: {} after merging, and an object has at most {MAX_OBJECT_TAGS}",
                added.len(),
                tags.len()
            ),
        });
    }
    Ok(tags)
}

/// `tags` as a `Tagging` header value (form-encoded); `None` when there are none.
pub(super) fn tagging_header(tags: &[(String, String)]) -> Option<String> {
    if tags.is_empty() {
        return None;
    }
    Some(
        tags.iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

const FORM_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn form_encode(text: &str) -> String {
    utf8_percent_encode(text, FORM_KEEP).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tags_are_form_encoded() {
        assert_eq!(form_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(
            tagging_header(&tags(&[("a", "1"), ("b c", "x/y")])).as_deref(),
            Some("a=1&b%20c=x%2Fy")
        );
        assert_eq!(tagging_header(&[]), None);
    }

    #[test]
    fn an_added_tag_replaces_the_sources_and_at_most_ten_remain() {
        let source = tags(&[("a", "1"), ("b", "2")]);
        assert_eq!(
            merged(source.clone(), &tags(&[("b", "9"), ("c", "3")])).unwrap(),
            tags(&[("a", "1"), ("b", "9"), ("c", "3")])
        );
        let nine: Vec<(String, String)> = (0..9).map(|i| (format!("n{i}"), String::new())).collect();
        assert_eq!(merged(source.clone(), &nine[..8]).unwrap().len(), 10);
        let err = merged(source, &nine).unwrap_err().to_string();
        assert!(err.contains("11 after merging"), "{err}");
        assert!(err.starts_with("InvalidTag"), "{err}");
    }
}
