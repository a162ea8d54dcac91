//! Loading a plugin: the bytes (file or S3), the pinned SHA-256, then a component compiled
//! from `.wasm` or deserialized from a `.cwasm` precompiled for this engine.

use aws_sdk_s3::Client;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

use crate::bounded::{MAX_PLUGIN_BYTES, ReadError, collect_body, human, read_file_to_limit};
use crate::config::{PluginSource, PluginSpec};
use crate::s3::classify;

/// Why a plugin could not be loaded. Every message names the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file or object could not be read.
    #[error("plugin {plugin}: could not be read: {reason}")]
    Unreadable {
        /// Where it was read from.
        plugin: String,
        /// The I/O or S3 error.
        reason: String,
    },
    /// The file or object is larger than [`MAX_PLUGIN_BYTES`]; nothing beyond was read.
    #[error("plugin {plugin}: larger than the {} limit for a plugin; expected a smaller .wasm or .cwasm", human(*limit))]
    TooLarge {
        /// Where it was read from.
        plugin: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The bytes are not the pinned ones.
    #[error("plugin {plugin}: sha256 mismatch: config pins {expected}, file has {actual}")]
    ShaMismatch {
        /// Where it was read from.
        plugin: String,
        /// The configured digest.
        expected: String,
        /// The digest of the bytes read.
        actual: String,
    },
    /// Not a component, or compilation failed.
    #[error("plugin {plugin}: not a usable WebAssembly component: {reason}")]
    Invalid {
        /// Where it was read from.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
    /// A `.cwasm` made by another engine or configuration.
    #[error(
        "plugin {plugin}: precompiled for a different engine ({reason}); recompile it with `artifact-export plugin compile` of this version"
    )]
    Incompatible {
        /// Where it was read from.
        plugin: String,
        /// What wasmtime reported.
        reason: String,
    },
    /// The component does not implement the `copy-policy` world.
    #[error("plugin {plugin}: does not fit the copy-policy@0.1.0 world: {reason}")]
    WrongWorld {
        /// Where it was read from.
        plugin: String,
        /// What is missing.
        reason: String,
    },
}

/// Reads the plugin's bytes and checks them against the pinned digest. Without a client
/// (the authoring tools) only local files can be read.
pub async fn read_plugin_bytes(
    client: Option<&Client>,
    spec: &PluginSpec,
) -> Result<(Vec<u8>, [u8; 32]), LoadError> {
    let source = spec.source.to_string();
    let unreadable = |reason: String| LoadError::Unreadable {
        plugin: source.clone(),
        reason,
    };
    let bounded = |e: ReadError| match e {
        ReadError::TooLarge { limit } => LoadError::TooLarge {
            plugin: source.clone(),
            limit,
        },
        ReadError::Failed(reason) => unreadable(reason),
    };
    let bytes = match &spec.source {
        PluginSource::File(path) => read_file_to_limit(path, MAX_PLUGIN_BYTES)
            .await
            .map_err(bounded)?,
        PluginSource::S3 { bucket, key } => {
            let client = client
                .ok_or_else(|| unreadable("S3 sources need an S3 client; use a local file here".into()))?;
            let out = client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| unreadable(classify(&e).to_string()))?;
            collect_body(out.body, out.content_length, MAX_PLUGIN_BYTES)
                .await
                .map_err(bounded)?
        }
    };
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    if let Some(expected) = spec.sha256
        && expected != digest
    {
        return Err(LoadError::ShaMismatch {
            plugin: source,
            expected: hex::encode(expected),
            actual: hex::encode(digest),
        });
    }
    Ok((bytes, digest))
}

/// Compiles a `.wasm` component, or loads a `.cwasm` precompiled for `engine`.
pub fn component_from_bytes(engine: &Engine, bytes: &[u8], source: &str) -> Result<Component, LoadError> {
    match Engine::detect_precompiled(bytes) {
        Some(Precompiled::Component) => {
            // SAFETY: `Component::deserialize` trusts its input to be wasmtime output. The
            // bytes are either pinned by sha256 in the config or a local file the operator
            // placed; and wasmtime still checks the engine version and configuration
            // fingerprint, which is what turns a foreign `.cwasm` into an error below.
            unsafe { Component::deserialize(engine, bytes) }.map_err(|e| LoadError::Incompatible {
                plugin: source.to_string(),
                reason: one_line(&e),
            })
        }
        Some(Precompiled::Module) => Err(LoadError::Invalid {
            plugin: source.to_string(),
            reason: "a precompiled core module, not a component".into(),
        }),
        None => Component::new(engine, bytes).map_err(|e| LoadError::Invalid {
            plugin: source.to_string(),
            reason: one_line(&e),
        }),
    }
}

/// Compiles a `.wasm` component to a `.cwasm` for `engine`'s configuration.
pub fn precompile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
    engine.precompile_component(wasm)
}

pub(super) fn one_line(error: &wasmtime::Error) -> String {
    format!("{error:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}
