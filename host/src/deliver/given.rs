//! What a 0.2 plugin is given beyond the event, read as whoever copies the object: the
//! source's HEAD (its facts, [`facts_of`]) and a reader of its tags that runs only if the
//! plugin calls `tags`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_types::date_time::Format;

use super::{OrgDestination, org_destination};
use crate::config::Org;
use crate::destination::{CopyOptions, Destination, S3Destination, SourceHead};
use crate::event::SourceObject;
use crate::exporter::Exporter;
use crate::policy::{FactChecksum, Given, ObjectFacts, TagReader};

/// The tags a plugin's `tags` call read (or why it could not), kept for the record's report:
/// a replay gives the plugin the same answer.
#[derive(Clone, Default)]
pub struct TagsSeen(Arc<Mutex<Option<TagsRead>>>);

/// What one `tags` call answered: the tags, or why there are none.
pub type TagsRead = Result<Vec<(String, String)>, String>;

impl TagsSeen {
    /// What was read; `None` when no plugin called `tags`.
    pub fn take(&self) -> Option<TagsRead> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn keep(&self, read: &TagsRead) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(read.clone());
    }
}

/// What `head` (the source's HEAD, read ahead for the copy as well) gives a 0.2 plugin: its
/// facts, and a reader of the object's tags as whoever copies it, which keeps what it read
/// in the returned [`TagsSeen`]. Facts are `None` without a HEAD (it failed: the copy reads
/// it again and reports why; local mode); the tag reader is `None` in local mode or when
/// the org's role cannot be assumed.
pub async fn given_for(
    exporter: &Exporter,
    org: Option<&Org>,
    object: &SourceObject,
    options: &CopyOptions,
    head: Option<&SourceHead>,
) -> (Given, TagsSeen) {
    let facts = head.map(|head| Arc::new(facts_of(head)));
    let reader = match org_destination(exporter, org).await {
        Ok(OrgDestination::Role(destination, _)) => Some(destination),
        Ok(OrgDestination::Shared(Destination::S3(destination))) => Some(destination.clone()),
        Ok(OrgDestination::Shared(Destination::Folder(_))) | Err(_) => None,
    };
    let seen = TagsSeen::default();
    let tags = reader.map(|destination| {
        let read = tag_reader(destination, object, options);
        let kept = seen.clone();
        Arc::new(move |left: Duration| {
            let answer = read(left);
            kept.keep(&answer);
            answer
        }) as TagReader
    });
    (Given { facts, tags }, seen)
}

/// Reads `object`'s tags through `destination` on the calling (blocking) thread, waiting at
/// most the S3 request timeout and the time the decision has left.
fn tag_reader(destination: S3Destination, object: &SourceObject, options: &CopyOptions) -> TagReader {
    let runtime = tokio::runtime::Handle::current();
    let object = object.clone();
    let owner = options.source_owner.clone();
    let request_timeout = options.timeouts.request;
    Arc::new(move |left: Duration| {
        let limit = left.min(request_timeout);
        let read = destination.read_source_tags(&object, owner.as_deref());
        match runtime.block_on(tokio::time::timeout(limit, read)) {
            Ok(read) => read,
            Err(_) => Err(format!(
                "GetObjectTagging did not answer within {} ms",
                limit.as_millis()
            )),
        }
    })
}

/// The facts of a source's HEAD as a 0.2 plugin's `object` carries them.
pub fn facts_of(head: &SourceHead) -> ObjectFacts {
    let head = &head.0;
    ObjectFacts {
        content_type: head.content_type().map(str::to_string),
        content_length: head.content_length().and_then(|n| u64::try_from(n).ok()),
        last_modified: head.last_modified().and_then(|t| t.fmt(Format::DateTime).ok()),
        storage_class: Some(
            head.storage_class()
                .map_or("STANDARD", |class| class.as_str())
                .to_string(),
        ),
        // In name order (a map).
        metadata: head
            .metadata()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        checksum: crate::destination::checksum::ObjectChecksum::from_head(head).map(|c| FactChecksum {
            algorithm: c.checksum.algorithm,
            value: c.checksum.value,
        }),
    }
}
