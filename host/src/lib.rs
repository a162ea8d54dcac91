//! artifact-export: routes objects created in a shared source bucket to each
//! organization's destination bucket with server-side copies.
//!
//! The data path, one module per step: [`event`] (every event shape → source objects) →
//! [`route`] (org + suffix) → [`copy`] (single or multipart, conditional, retried) →
//! [`report`]. [`handler`] strings them together; the binaries only parse input and print.
//! See ARCHITECTURE.md for the codemap and invariants.

pub mod backfill;
pub mod bounded;
pub mod config;
pub mod config_store;
pub mod copy;
pub mod env;
pub mod event;
pub mod handler;
pub mod key_encoding;
pub mod local_copy;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod report;
pub mod route;
pub mod s3_client;
pub mod suffix;
