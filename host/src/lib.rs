//! artifact-export: routes objects created in a shared source bucket to each
//! organization's destination bucket with server-side copies.
//!
//! The data path, one module per step: [`event`] (every event shape → source objects) →
//! [`plan`] ([`route`]: org + suffix; [`policy`]: the org's plugin) → [`destination`]
//! (server-side copy into a bucket, or a folder in local mode; [`deliver`]: an org's
//! targets, as its role) → [`report`]. [`handler`] strings them together over an
//! [`exporter::Exporter`]; the binaries only parse input and
//! print. Everything that speaks S3 goes through [`s3`]. See ARCHITECTURE.md for the codemap
//! and invariants.

pub mod backfill;
pub mod bounded;
pub mod check;
pub mod config;
pub mod config_store;
pub mod deliver;
pub mod destination;
pub mod env;
pub mod event;
pub mod exporter;
pub mod handler;
pub mod logging;
pub mod metrics;
pub mod plan;
pub mod policy;
pub mod reason;
pub mod report;
pub mod route;
pub mod s3;
pub mod suffix;
