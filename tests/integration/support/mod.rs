//! Helpers shared by the test modules.

pub mod events;
pub mod guests;
/// S3 Inventory deliveries (manifest and gzip CSV files) written into a bucket.
pub mod inventory;
pub mod lambda;
/// Used by the benches only (peak RSS of a child, number formatting).
#[allow(dead_code)]
pub mod measure;
pub mod paths;
pub mod proxy;
#[macro_use]
pub mod servers;
pub mod world;
