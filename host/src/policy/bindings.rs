//! Host bindings generated from `wit/policy.wit` (package `artifact-export:policy@0.1.0`).
//!
//! A future `0.2` gets a module of its own beside this one; the loader picks by what the
//! component exports.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "copy-policy",
});

pub use self::artifact_export::policy::types::Level;

/// The WIT package the bindings above were generated from, as text: read at build time from
/// the same file as `bindgen!`, so `plugin wit` and `plugin new` hand an author exactly the
/// contract this host runs.
pub const WIT: &str = include_str!("../../../wit/policy.wit");

/// The file name of [`WIT`] (the package has one file).
pub const WIT_FILE: &str = "policy.wit";
