//! Noticing S3's answer to expired credentials: the role client's interceptor
//! ([`Rejections`]) remembers the access key each attempt was signed with and tells the
//! role's slot when S3 answers one of [`EXPIRED_CREDENTIALS`] to it.

use std::sync::Arc;

use aws_sdk_s3::config::interceptors::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use super::slot::Slot;
use super::sts_answer::xml_element;

/// S3's error codes for a request signed with credentials that expired: the credentials
/// must be replaced, and the request can then be sent again.
pub const EXPIRED_CREDENTIALS: [&str; 2] = ["ExpiredToken", "TokenRefreshRequired"];

/// Tells a role's slot when S3 answers one of [`EXPIRED_CREDENTIALS`] to a request signed
/// with its credentials, so the next request (the retry) is signed with new ones.
#[derive(Debug)]
pub(super) struct Rejections(pub(super) Arc<Slot>);

/// The access key id an attempt was signed with (the request is gone once it is sent).
#[derive(Debug, Clone)]
struct SignedWith(String);

impl Storable for SignedWith {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Rejections {
    fn name(&self) -> &'static str {
        "RoleCredentialRejections"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(key) = signing_key(context.request().headers().get("authorization")) {
            cfg.interceptor_state().store_put(SignedWith(key.to_string()));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (Some(response), Some(SignedWith(key))) = (context.response(), cfg.load::<SignedWith>()) else {
            return Ok(());
        };
        if is_expired_credentials(response.status().as_u16(), response.body().bytes()) {
            self.0.reject(key);
        }
        Ok(())
    }
}

/// Whether an answer (`status`, `body`) is an S3 error with one of [`EXPIRED_CREDENTIALS`]'s
/// codes.
fn is_expired_credentials(status: u16, body: Option<&[u8]>) -> bool {
    status >= 400
        && body
            .and_then(|body| xml_element(&String::from_utf8_lossy(body), "Code"))
            .is_some_and(|code| EXPIRED_CREDENTIALS.contains(&code.as_str()))
}

/// The access key id of a SigV4 `authorization` header (`… Credential=KEY/date/…`).
fn signing_key(authorization: Option<&str>) -> Option<&str> {
    let (_, rest) = authorization?.split_once("Credential=")?;
    rest.split('/').next().filter(|key| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_token_answers_and_the_refused_key() {
        let body = |code: &str| {
            format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>m</Message></Error>")
        };
        for code in EXPIRED_CREDENTIALS {
            assert!(is_expired_credentials(400, Some(body(code).as_bytes())), "{code}");
        }
        assert!(!is_expired_credentials(
            403,
            Some(body("AccessDenied").as_bytes())
        ));
        assert!(!is_expired_credentials(
            200,
            Some(body("ExpiredToken").as_bytes())
        ));
        assert!(!is_expired_credentials(400, None));
        let auth = "AWS4-HMAC-SHA256 Credential=ASIAKEY1/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";
        assert_eq!(signing_key(Some(auth)), Some("ASIAKEY1"));
        assert_eq!(signing_key(Some("Bearer x")), None);
        assert_eq!(signing_key(None), None);
    }
}
