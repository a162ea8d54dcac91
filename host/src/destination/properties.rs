//! The properties of the source a copy writes itself, read from the source's HEAD (the one
//! the copy already makes): headers, user metadata, `Expires`, the website redirect and the
//! Object Lock.
//!
//! S3 does not carry all of them: a `CopyObject` with the COPY directive drops
//! `WebsiteRedirectLocation` (S3's CopyObject reference: it "is not copied when using the
//! x-amz-metadata-directive header") and the Object Lock, and a multipart upload starts
//! with nothing of the source. So both paths write the same set, from the same HEAD: a
//! `CopyObject` with the REPLACE directive, a `CreateMultipartUpload` with the same fields.
//! Tags are not here: `CopyObject` carries them (tagging directive COPY), a multipart copy
//! reads them (GetObjectTagging).

use std::collections::HashMap;

use aws_sdk_s3::operation::copy_object::builders::CopyObjectFluentBuilder;
use aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{MetadataDirective, ObjectLockLegalHoldStatus, ObjectLockMode};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

/// The source's Object Lock, as its HEAD shows it (`x-amz-object-lock-mode`,
/// `-retain-until-date`, `-legal-hold`; S3 shows them to a reader allowed
/// `s3:GetObjectRetention` and `s3:GetObjectLegalHold`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectLock {
    /// Retention mode and date, when the source has a retention (a date already past is no
    /// retention: S3 refuses to write one).
    pub retention: Option<(ObjectLockMode, DateTime)>,
    /// A legal hold is on.
    pub legal_hold: bool,
}

impl ObjectLock {
    /// Read from `head`, as of `now`.
    pub fn from_head(head: &HeadObjectOutput, now: DateTime) -> Self {
        let retention = match (head.object_lock_mode(), head.object_lock_retain_until_date()) {
            (Some(mode), Some(until)) if until.secs() > now.secs() => Some((mode.clone(), *until)),
            _ => None,
        };
        ObjectLock {
            retention,
            legal_hold: head.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On),
        }
    }

    /// Whether there is anything to carry.
    pub fn is_set(&self) -> bool {
        self.retention.is_some() || self.legal_hold
    }
}

/// What a copy writes from the source's HEAD.
#[derive(Debug, Clone, Default)]
pub(super) struct SourceProperties {
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    metadata: Option<HashMap<String, String>>,
    /// `Expires`, when the HEAD's value is an HTTP date (one that is not cannot be sent back).
    expires: Option<DateTime>,
    website_redirect_location: Option<String>,
    /// The lock to write: the source's, once the org's `objectLock` and the destination
    /// bucket allow it ([`SourceProperties::without_lock`] otherwise).
    pub lock: ObjectLock,
}

impl SourceProperties {
    /// From the source's `head`.
    pub fn from_head(head: &HeadObjectOutput) -> Self {
        SourceProperties {
            content_type: head.content_type().map(str::to_string),
            content_encoding: head.content_encoding().map(str::to_string),
            content_disposition: head.content_disposition().map(str::to_string),
            content_language: head.content_language().map(str::to_string),
            cache_control: head.cache_control().map(str::to_string),
            metadata: head.metadata().cloned(),
            expires: head
                .expires_string()
                .and_then(|s| DateTime::from_str(s, Format::HttpDate).ok()),
            website_redirect_location: head.website_redirect_location().map(str::to_string),
            lock: ObjectLock::from_head(head, DateTime::from(std::time::SystemTime::now())),
        }
    }

    /// The same, writing no Object Lock.
    pub fn without_lock(mut self) -> Self {
        self.lock = ObjectLock::default();
        self
    }

    /// `request` writing these properties instead of copying the source's (REPLACE).
    pub fn on_copy(&self, request: CopyObjectFluentBuilder) -> CopyObjectFluentBuilder {
        let (mode, until, hold) = self.lock_headers();
        request
            .metadata_directive(MetadataDirective::Replace)
            .set_content_type(self.content_type.clone())
            .set_content_encoding(self.content_encoding.clone())
            .set_content_disposition(self.content_disposition.clone())
            .set_content_language(self.content_language.clone())
            .set_cache_control(self.cache_control.clone())
            .set_metadata(self.metadata.clone())
            .set_expires(self.expires)
            .set_website_redirect_location(self.website_redirect_location.clone())
            .set_object_lock_mode(mode)
            .set_object_lock_retain_until_date(until)
            .set_object_lock_legal_hold_status(hold)
    }

    /// `request` (a multipart copy's upload) writing these properties.
    pub fn on_create(
        &self,
        request: CreateMultipartUploadFluentBuilder,
    ) -> CreateMultipartUploadFluentBuilder {
        let (mode, until, hold) = self.lock_headers();
        request
            .set_content_type(self.content_type.clone())
            .set_content_encoding(self.content_encoding.clone())
            .set_content_disposition(self.content_disposition.clone())
            .set_content_language(self.content_language.clone())
            .set_cache_control(self.cache_control.clone())
            .set_metadata(self.metadata.clone())
            .set_expires(self.expires)
            .set_website_redirect_location(self.website_redirect_location.clone())
            .set_object_lock_mode(mode)
            .set_object_lock_retain_until_date(until)
            .set_object_lock_legal_hold_status(hold)
    }

    fn lock_headers(
        &self,
    ) -> (
        Option<ObjectLockMode>,
        Option<DateTime>,
        Option<ObjectLockLegalHoldStatus>,
    ) {
        let (mode, until) = match &self.lock.retention {
            Some((mode, until)) => (Some(mode.clone()), Some(*until)),
            None => (None, None),
        };
        (
            mode,
            until,
            self.lock.legal_hold.then_some(ObjectLockLegalHoldStatus::On),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(mode: Option<&str>, until: Option<i64>, hold: Option<&str>) -> HeadObjectOutput {
        HeadObjectOutput::builder()
            .set_object_lock_mode(mode.map(ObjectLockMode::from))
            .set_object_lock_retain_until_date(until.map(DateTime::from_secs))
            .set_object_lock_legal_hold_status(hold.map(ObjectLockLegalHoldStatus::from))
            .build()
    }

    #[test]
    fn a_retention_is_carried_while_it_lasts_and_a_hold_while_it_is_on() {
        let now = DateTime::from_secs(1_000);
        let lock = ObjectLock::from_head(&head(Some("COMPLIANCE"), Some(2_000), Some("ON")), now);
        assert_eq!(
            lock,
            ObjectLock {
                retention: Some((ObjectLockMode::Compliance, DateTime::from_secs(2_000))),
                legal_hold: true
            }
        );
        let past = ObjectLock::from_head(&head(Some("GOVERNANCE"), Some(999), Some("OFF")), now);
        assert!(!past.is_set(), "{past:?}");
        assert!(!ObjectLock::from_head(&head(None, None, None), now).is_set());
        assert!(!ObjectLock::from_head(&head(Some("GOVERNANCE"), None, None), now).is_set());
    }

    #[test]
    fn an_expires_that_is_no_http_date_is_left_out() {
        let good = HeadObjectOutput::builder()
            .expires_string("Wed, 02 Jan 2030 03:04:05 GMT")
            .build();
        assert_eq!(
            SourceProperties::from_head(&good).expires,
            Some(DateTime::from_secs(1_893_553_445))
        );
        let bad = HeadObjectOutput::builder().expires_string("never").build();
        assert_eq!(SourceProperties::from_head(&bad).expires, None);
    }
}
