//! What the host gives a 0.2 plugin beyond the event: the facts of the source's HEAD
//! ([`ObjectFacts`]) and a way to read the object's tags on demand ([`TagReader`]), and how a
//! request in an org's lane waits for them ([`Pending`]).
//!
//! Plain data and a callback: nothing here knows S3. Whoever makes the request (the handler,
//! `plugin test`) fills them in; a 0.1 plugin is given none of it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// The facts of the source's HEAD a 0.2 plugin decides by. Every field is `None` (or empty)
/// when it is not known. Its JSON (camelCase, an absent fact left out) is the one form of
/// these facts everywhere: a cases file's `object`, `plugin test`'s `given`, the report's
/// `object.head`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectFacts {
    /// `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Content-Length`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    /// `Last-Modified`, RFC 3339 (whole seconds, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The storage class (`STANDARD` when S3 names none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// User metadata: names without `x-amz-meta-`, in name order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The full-object checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<FactChecksum>,
}

/// A full-object checksum as a 0.2 plugin is given it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactChecksum {
    /// `CRC32`, `CRC32C`, `CRC64NVME`, `SHA1` or `SHA256`.
    pub algorithm: String,
    /// Base64, as S3 writes it.
    pub value: String,
}

/// Reads the object's tags, waiting at most the given time: `Err` says why there are none
/// to give (no tagging on the server, access denied, gone, timed out). Called at most once
/// per decision, on the decision's thread.
pub type TagReader = Arc<dyn Fn(Duration) -> Result<Vec<(String, String)>, String> + Send + Sync>;

/// What one decision is given beyond the event.
#[derive(Clone, Default)]
pub struct Given {
    /// The source's HEAD facts, when read.
    pub facts: Option<Arc<ObjectFacts>>,
    /// How to read its tags, where they can be read.
    pub tags: Option<TagReader>,
}

impl std::fmt::Debug for Given {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Given")
            .field("facts", &self.facts)
            .field("tags", &self.tags.as_ref().map(|_| "reader"))
            .finish()
    }
}

/// What a request in a lane is given: known when the request was made, or sent later by
/// its record (which reads the source's HEAD first). The lane waits for it before the
/// decision's deadline starts.
#[derive(Debug)]
pub struct Pending(Mutex<PendingState>);

#[derive(Debug)]
enum PendingState {
    Ready(Given),
    Waiting(oneshot::Receiver<Given>),
}

impl Default for Pending {
    fn default() -> Self {
        Pending::ready(Given::default())
    }
}

impl Pending {
    /// Known now.
    pub fn ready(given: Given) -> Self {
        Pending(Mutex::new(PendingState::Ready(given)))
    }

    /// Sent later through the returned sender; a sender dropped unsent gives nothing.
    pub fn later() -> (oneshot::Sender<Given>, Self) {
        let (sender, receiver) = oneshot::channel();
        (sender, Pending(Mutex::new(PendingState::Waiting(receiver))))
    }

    /// Whether it is still to be sent.
    pub fn is_waiting(&self) -> bool {
        matches!(
            *self.0.lock().unwrap_or_else(PoisonError::into_inner),
            PendingState::Waiting(_)
        )
    }

    /// What was given, waiting for it if need be (a blocking thread only).
    pub fn wait(&self) -> Given {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let given = match std::mem::replace(&mut *state, PendingState::Ready(Given::default())) {
            PendingState::Ready(given) => given,
            PendingState::Waiting(receiver) => receiver.blocking_recv().unwrap_or_default(),
        };
        *state = PendingState::Ready(given.clone());
        given
    }
}
