//! Host bindings generated from the WIT packages the host runs side by side:
//! `artifact-export:policy@0.1.0` (`wit/policy.wit`, [`v0_1`]) and `@0.2.0`
//! (`wit/v0.2/policy.wit`, [`v0_2`]). The loader picks by the world a component implements.

/// `artifact-export:policy@0.1.0`.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/policy.wit",
        world: "copy-policy",
    });

    pub use self::artifact_export::policy::types::Level;
}

/// `artifact-export:policy@0.2.0`.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2/policy.wit",
        world: "copy-policy",
    });

    pub use self::artifact_export::policy::types::{Checksum, Level, Pair};
}

/// A version of the WIT contract: what `plugin wit` and `plugin new` hand an author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WitVersion {
    /// `artifact-export:policy@0.1.0`.
    V0_1,
    /// `artifact-export:policy@0.2.0`: HEAD facts, tags on demand, per-target class and tags.
    V0_2,
}

impl WitVersion {
    /// Every version the host runs, oldest first.
    pub const ALL: [WitVersion; 2] = [WitVersion::V0_1, WitVersion::V0_2];
    /// The version `plugin new` and `plugin wit` use unless told otherwise.
    pub const DEFAULT: WitVersion = WitVersion::V0_2;

    /// `0.1` or `0.2`.
    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1 => "0.1",
            WitVersion::V0_2 => "0.2",
        }
    }

    /// The version named `0.1`/`0.2` (or `0.1.0`/`0.2.0`).
    pub fn parse(text: &str) -> Option<WitVersion> {
        match text.trim() {
            "0.1" | "0.1.0" => Some(WitVersion::V0_1),
            "0.2" | "0.2.0" => Some(WitVersion::V0_2),
            _ => None,
        }
    }

    /// The package as text: read at build time from the same file as `bindgen!`, so an
    /// author gets exactly the contract this host runs.
    pub fn wit(self) -> &'static str {
        match self {
            WitVersion::V0_1 => include_str!("../../../wit/policy.wit"),
            WitVersion::V0_2 => include_str!("../../../wit/v0.2/policy.wit"),
        }
    }
}

impl std::fmt::Display for WitVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The file name of each package (each has one file).
pub const WIT_FILE: &str = "policy.wit";
