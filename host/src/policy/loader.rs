//! Loading a plugin: the bytes (file or S3, the GET retried like a copy), the pinned
//! SHA-256, then a component compiled from `.wasm`, or, only where the config says
//! `precompiled: true`, deserialized from a `.cwasm` precompiled for this engine.

use aws_sdk_s3::Client;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

use crate::bounded::{MAX_PLUGIN_BYTES, ReadError, collect_body, human, read_file_to_limit};
use crate::config::{PluginSource, PluginSpec};
use crate::s3::{RetryPolicy, S3Failure, classify, with_retries};

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
        /// A failure a later attempt may not meet (throttling, 5xx, a dropped connection):
        /// a later invocation loads the plugin again.
        transient: bool,
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
    /// A `.cwasm` given without `precompiled: true`, or a `.wasm` with it.
    #[error("plugin {plugin}: {reason}")]
    NotAsDeclared {
        /// Where it was read from.
        plugin: String,
        /// What was found and what the config declared.
        reason: String,
    },
    /// The host's plugin engine could not start: not the plugin's doing; the record is
    /// retryable and the load is tried again.
    #[error("plugin {plugin}: the host could not load it: {reason} (a host failure; retryable)")]
    Host {
        /// Where it would be read from.
        plugin: String,
        /// What failed.
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

impl LoadError {
    /// True when a later attempt may succeed without a config change (see
    /// [`LoadError::Unreadable`], [`LoadError::Host`]): the record is retryable and the
    /// load is tried again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LoadError::Unreadable { transient: true, .. } | LoadError::Host { .. }
        )
    }
}

/// Reads the plugin's bytes and checks them against the pinned digest. Without a client
/// (the authoring tools) only local files can be read. An S3 GET is retried per `retry`
/// (the config's `retry` count, with the copy's backoff).
pub async fn read_plugin_bytes(
    client: Option<&Client>,
    spec: &PluginSpec,
    retry: &RetryPolicy,
    bucket_owner: Option<&str>,
) -> Result<(Vec<u8>, [u8; 32]), LoadError> {
    let source = spec.source.to_string();
    let unreadable = |reason: String, transient: bool| LoadError::Unreadable {
        plugin: source.clone(),
        reason,
        transient,
    };
    let bounded = |e: ReadError| match e {
        ReadError::TooLarge { limit } => LoadError::TooLarge {
            plugin: source.clone(),
            limit,
        },
        ReadError::Failed(reason) => unreadable(reason, false),
    };
    let bytes = match &spec.source {
        PluginSource::File(path) => read_file_to_limit(path, MAX_PLUGIN_BYTES)
            .await
            .map_err(bounded)?,
        PluginSource::S3 { bucket, key } => {
            let client = client.ok_or_else(|| {
                unreadable(
                    "S3 sources need an S3 client; use a local file here".into(),
                    false,
                )
            })?;
            let get = || async {
                let out = client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .set_expected_bucket_owner(bucket_owner.map(str::to_string))
                    .send()
                    .await
                    .map_err(|e| classify(&e))?;
                match collect_body(out.body, out.content_length, MAX_PLUGIN_BYTES).await {
                    Ok(bytes) => Ok(Ok(bytes)),
                    // Too large is final: no retry makes the object smaller.
                    Err(too_large @ ReadError::TooLarge { .. }) => Ok(Err(too_large)),
                    // A body cut off mid-way is as transient as a 503.
                    Err(ReadError::Failed(message)) => Err(S3Failure::Retryable {
                        code: crate::reason::FailureCode::BodyRead,
                        message,
                    }),
                }
            };
            match with_retries(retry, get).await {
                (Ok(read), _) => read.map_err(bounded)?,
                (Err(failure), attempts) => {
                    let transient = matches!(failure, S3Failure::Retryable { .. });
                    let mut reason = format!("{failure} (after {attempts} attempts)");
                    // S3 answers a request naming another bucket owner with a plain 403.
                    if let (Some(owner), S3Failure::Fatal { code, .. }) = (bucket_owner, &failure)
                        && code.is_s3("AccessDenied")
                    {
                        reason.push_str(&format!(
                            "; also the answer when bucket {bucket} is not owned by EXPECTED_BUCKET_OWNER {owner}"
                        ));
                    }
                    return Err(unreadable(reason, transient));
                }
            }
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

/// Compiles a `.wasm` component or, when the config declared the plugin `precompiled`,
/// loads a `.cwasm` precompiled for `engine`. Which one is decided by the config, never by
/// the bytes: a `.cwasm` is native code, so only an operator's explicit say-so loads one.
pub fn component_from_bytes(
    engine: &Engine,
    bytes: &[u8],
    source: &str,
    precompiled: bool,
) -> Result<Component, LoadError> {
    let not_as_declared = |reason: &str| LoadError::NotAsDeclared {
        plugin: source.to_string(),
        reason: reason.to_string(),
    };
    match (Engine::detect_precompiled(bytes), precompiled) {
        (Some(Precompiled::Component), true) => {
            // SAFETY: `Component::deserialize` trusts its input to be wasmtime output. It
            // runs only for a plugin the config declares `precompiled: true`: the operator
            // compiled it with `plugin compile` of this binary and pinned it (sha256 for S3,
            // or placed the file). wasmtime still checks the engine version and
            // configuration fingerprint, which turns a foreign `.cwasm` into an error below.
            unsafe { Component::deserialize(engine, bytes) }.map_err(|e| LoadError::Incompatible {
                plugin: source.to_string(),
                reason: one_line(&e),
            })
        }
        (Some(Precompiled::Component), false) => Err(not_as_declared(
            "is a precompiled .cwasm (native code), refused as an ordinary source; give the .wasm component, or set \"precompiled\": true if the operator compiled it with `plugin compile`",
        )),
        (Some(Precompiled::Module), _) => Err(LoadError::Invalid {
            plugin: source.to_string(),
            reason: "a precompiled core module, not a component".into(),
        }),
        (None, true) => Err(not_as_declared(
            "is declared \"precompiled\": true but is not a .cwasm from `plugin compile`",
        )),
        (None, false) => Component::new(engine, bytes).map_err(|e| LoadError::Invalid {
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
