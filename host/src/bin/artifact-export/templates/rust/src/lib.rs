//! `{{name}}`: a copy-policy plugin for artifact-export.
//!
//! The host calls `decide` once per object of the org; see wit/policy.wit for every field
//! and README.md for building and testing. This one copies the object to the `proposed`
//! targets, unchanged: exactly what the org's plain suffix matching would do.

wit_bindgen::generate!({ path: "wit", world: "copy-policy" });

/// The component's export.
struct Plugin;

impl Guest for Plugin {
    fn decide(
        _org: String,
        _object: Object,
        proposed: Vec<Target>,
        _settings: String,
    ) -> Result<Decision, String> {
        Ok(Decision::Copy(proposed))
    }
}

export!(Plugin);
