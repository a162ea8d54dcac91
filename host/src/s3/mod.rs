//! The S3 protocol layer: the client, what an error means ([`failure`]), retries with
//! backoff ([`retry`]), key encodings ([`keys`]), the protocol's limits ([`limits`]) and the clients of
//! orgs' cross-account roles ([`roles`]).
//!
//! Everything above it (config store, plugin loader, destinations, backfill listing) talks
//! S3 through these, so an error is classified and retried the same way everywhere.

pub mod client;
pub mod failure;
pub mod keys;
pub mod limits;
pub mod names;
pub mod retry;
pub mod roles;

pub use failure::{S3Failure, SourceChange, classify};
pub use retry::{RetryPolicy, Retryable, with_retries};

/// `If-Match` / `x-amz-copy-source-if-match` value for an unquoted ETag.
pub fn if_match(etag: &str) -> String {
    format!("\"{etag}\"")
}
