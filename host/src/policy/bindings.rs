//! Host bindings generated from `wit/policy.wit` (package `artifact-export:policy@0.1.0`).
//!
//! A future `0.2` gets a module of its own beside this one; the loader picks by what the
//! component exports.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "copy-policy",
});

pub use self::artifact_export::policy::types::Level;
