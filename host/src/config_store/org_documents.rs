//! The org documents form: what each document held when it was last read, and a refresh
//! that lists the folder, reads only the documents whose tag changed (concurrently), drops
//! the orgs whose document is gone, and lets each changed org in or refuses it on its own
//! ([`admit`]).
//!
//! A document that cannot be parsed is refused for its org, which keeps its entry in force
//! (or stays unconfigured); so is one that cannot be read for good (access denied, too
//! large). One that could not be read for now is read again at the next refresh; on a cold
//! start that fails the load instead, so no org's records are routed as if it had none.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_s3::Client;
use futures::stream::{self, StreamExt};

use super::ConfigLoadError;
use super::document::{self, Fetched};
use super::listing::{self, Listed, document_location};
use super::snapshot::{self, Snapshot};
use crate::config::{
    Admitted, Config, ConfigDir, DEFAULTS_DOCUMENT, Defaults, DocumentEntries, Org, Refusal, admit,
    parse_defaults, parse_org_document,
};
use crate::env::ConfigLocation;
use crate::s3::{RetryPolicy, with_retries};

/// How many documents are read at once.
pub(super) const READ_CONCURRENCY: usize = 64;
/// Attempts at a document that could not be read for now, in one refresh.
const READ_ATTEMPTS: u32 = 3;

/// What one document held when it was last read.
#[derive(Debug, Default)]
struct Document {
    /// The tag it was read at.
    tag: String,
    /// The entry in force.
    in_force: Option<Org>,
    /// A valid version that was refused: weighed again at every refresh.
    wanted: Option<Org>,
    /// Why the version at `tag` cannot be used (unparsable, unreadable for good): said
    /// again at every refresh until the document changes.
    refused: Option<Refusal>,
}

/// Every org document, by name, and the defaults.
#[derive(Debug, Default)]
pub(super) struct OrgDocuments {
    documents: BTreeMap<String, Document>,
    /// The defaults in force, and the tag they were read at.
    defaults: (Option<String>, Defaults),
    /// Why the defaults document at that tag is refused.
    defaults_refused: Option<Refusal>,
}

/// What a refresh reads with.
pub(super) struct Reader<'a> {
    pub client: &'a Client,
    /// The folder.
    pub location: &'a ConfigLocation,
    pub bucket_owner: Option<&'a str>,
    pub source_bucket: Option<&'a str>,
    /// Whether nothing is in force yet.
    pub cold: bool,
}

impl Reader<'_> {
    /// Reads document `name`, retrying what could not be read for now.
    async fn read(&self, name: &str) -> Result<Fetched, ConfigLoadError> {
        let location = document_location(self.location, name);
        let retry = RetryPolicy::new(READ_ATTEMPTS - 1, Duration::from_millis(100));
        let (result, _attempts) = with_retries(&retry, || {
            document::read(self.client, &location, None, self.bucket_owner)
        })
        .await;
        result
    }
}

/// The parsed documents of `snapshot` (if any), by name, with the ETag each was taken at;
/// parsed on blocking threads, two halves at once.
async fn parse_snapshot(
    snapshot: Option<Snapshot>,
    folder: &ConfigLocation,
) -> HashMap<String, (String, Read)> {
    let Some(snapshot) = snapshot else {
        return HashMap::new();
    };
    let mut documents: Vec<(String, (String, String))> = snapshot.into_iter().collect();
    let second = documents.split_off(documents.len() / 2);
    let halves = [documents, second].map(|half| {
        let folder = folder.clone();
        tokio::task::spawn_blocking(move || {
            half.into_iter()
                .map(|(name, (etag, text))| {
                    let origin = document_location(&folder, &name).to_string();
                    let read = parse(&text, &origin);
                    (name, (etag, read))
                })
                .collect::<Vec<_>>()
        })
    });
    let mut parsed = HashMap::new();
    for half in halves {
        // A parse that panicked is a bug; its documents are then read one by one.
        if let Ok(half) = half.await {
            parsed.extend(half);
        }
    }
    parsed
}

/// What the document `text` at `origin` wants.
fn parse(text: &str, origin: &str) -> Read {
    match parse_org_document(text, origin) {
        Ok(org) => Read::Valid(Box::new(org)),
        Err(e) => Read::Refused {
            reason: e.to_string(),
        },
    }
}

/// A document read at a refresh: what it now wants, or why it is refused.
enum Read {
    Valid(Box<Org>),
    Refused {
        reason: String,
    },
    Gone,
    /// Could not be read for now at a cold start: the load fails.
    Failed(ConfigLoadError),
}

impl OrgDocuments {
    /// Brings every document up to date; returns the configuration when what is in force
    /// changed (`None`: unchanged), and the refusals of this refresh.
    pub(super) async fn refresh(
        &mut self,
        reader: &Reader<'_>,
    ) -> Result<(Option<Config>, Vec<Refusal>), ConfigLoadError> {
        // A cold start takes what it can from the snapshot, parsed while the folder is
        // listed; a refresh cuts the listing at the names it knows.
        let snapshot = match reader.cold {
            true => snapshot::read(reader.client, reader.location, reader.bucket_owner).await,
            false => None,
        };
        let mut known: Vec<String> = match &snapshot {
            Some(snapshot) => snapshot.keys().cloned().collect(),
            None => self.documents.keys().cloned().collect(),
        };
        known.sort_unstable();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let (listed, mut parsed) = tokio::join!(
            listing::list(reader.client, reader.location, reader.bucket_owner, &known),
            parse_snapshot(snapshot, reader.location)
        );
        let listed = listed?;
        drop(known);
        let mut refusals = Vec::new();
        let (defaults, listed): (Vec<Listed>, Vec<Listed>) =
            listed.into_iter().partition(|l| l.name == DEFAULTS_DOCUMENT);
        let mut changed = self.refresh_defaults(reader, defaults.first()).await?;
        // Orgs whose document is gone are dropped.
        let before = self.documents.len();
        let names: std::collections::HashSet<&str> = listed.iter().map(|l| l.name.as_str()).collect();
        self.documents.retain(|name, _| names.contains(name.as_str()));
        drop(names);
        changed |= self.documents.len() != before;
        // What changed: from the snapshot where it holds the listed version, else read.
        let mut from_snapshot = Vec::new();
        let mut to_read = Vec::new();
        for l in listed {
            if self.documents.get(&l.name).map(|d| &d.tag) == Some(&l.tag) {
                continue;
            }
            match parsed.remove(&l.name) {
                Some((etag, read)) if etag == l.tag => from_snapshot.push((l, read)),
                _ => to_read.push(l),
            }
        }
        drop(parsed);
        let reads: Vec<(Listed, Read)> = stream::iter(to_read.into_iter().map(|l| async move {
            let fetched = reader.read(&l.name).await;
            (l, fetched)
        }))
        .buffer_unordered(READ_CONCURRENCY)
        .filter_map(|(l, fetched)| async move {
            let origin = document_location(reader.location, &l.name).to_string();
            let read = match fetched {
                Ok(Fetched::Changed { text, .. }) => parse(&text, &origin),
                Ok(Fetched::Gone | Fetched::Unchanged) => Read::Gone,
                Err(e) if e.is_retryable() && reader.cold => Read::Failed(e),
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e, "org document could not be read for now; read again at the next refresh");
                    return None;
                }
                Err(e) => Read::Refused { reason: e.to_string() },
            };
            Some((l, read))
        })
        .collect()
        .await;
        for (listed, read) in from_snapshot.into_iter().chain(reads) {
            // Before anything is noted of the document, so the next attempt reads it again.
            let read = match read {
                Read::Failed(e) => return Err(e),
                read => read,
            };
            let origin = document_location(reader.location, &listed.name).to_string();
            let document = self.documents.entry(listed.name.clone()).or_default();
            document.tag = listed.tag.clone();
            document.refused = None;
            match read {
                Read::Valid(org) if document.in_force.as_ref() == Some(&*org) => document.wanted = None,
                Read::Valid(org) => document.wanted = Some(*org),
                Read::Refused { reason } => {
                    document.wanted = None;
                    let org = document
                        .in_force
                        .as_ref()
                        .map(|o| o.org.clone())
                        .unwrap_or_else(|| listed.name.trim_end_matches(".json").to_string());
                    document.refused = Some(Refusal {
                        document: origin,
                        org,
                        reason,
                    });
                }
                Read::Failed(e) => return Err(e),
                Read::Gone => {
                    self.documents.remove(&listed.name);
                    changed = true;
                }
            }
        }
        // What cannot be used is said at every refresh, for as long as it stays so.
        refusals.extend(self.defaults_refused.iter().cloned());
        refusals.extend(self.documents.values().filter_map(|d| d.refused.clone()));
        changed |= self.admit(reader, &mut refusals);
        if !changed && !reader.cold {
            return Ok((None, refusals));
        }
        let orgs = self
            .documents
            .values()
            .filter_map(|d| d.in_force.clone())
            .collect();
        Ok((Some(Config::from_orgs(orgs, self.defaults.1.retry)), refusals))
    }

    /// Reads the defaults document when its tag changed; an invalid one is refused and the
    /// defaults in force stay. Returns whether the defaults in force changed.
    async fn refresh_defaults(
        &mut self,
        reader: &Reader<'_>,
        listed: Option<&Listed>,
    ) -> Result<bool, ConfigLoadError> {
        let Some(listed) = listed else {
            let changed = self.defaults != (None, Defaults::default());
            self.defaults = (None, Defaults::default());
            self.defaults_refused = None;
            return Ok(changed);
        };
        if self.defaults.0.as_deref() == Some(listed.tag.as_str()) {
            return Ok(false);
        }
        let origin = document_location(reader.location, &listed.name).to_string();
        let parsed = match reader.read(&listed.name).await {
            Ok(Fetched::Changed { text, .. }) => parse_defaults(&text, &origin).map_err(|e| e.to_string()),
            Ok(Fetched::Gone | Fetched::Unchanged) => Ok(Defaults::default()),
            Err(e) if e.is_retryable() && reader.cold => return Err(e),
            Err(e) if e.is_retryable() => return Ok(false),
            Err(e) => Err(e.to_string()),
        };
        let before = self.defaults.1;
        self.defaults_refused = None;
        match parsed {
            Ok(defaults) => self.defaults = (Some(listed.tag.clone()), defaults),
            Err(reason) => {
                self.defaults.0 = Some(listed.tag.clone());
                self.defaults_refused = Some(Refusal {
                    document: origin,
                    org: DEFAULTS_DOCUMENT.trim_end_matches(".json").into(),
                    reason,
                });
            }
        }
        Ok(self.defaults.1 != before)
    }

    /// Lets in the wanted versions [`admit`] allows; returns whether any was.
    fn admit(&mut self, reader: &Reader<'_>, refusals: &mut Vec<Refusal>) -> bool {
        if self.documents.values().all(|d| d.wanted.is_none()) {
            return false;
        }
        let entries: Vec<DocumentEntries> = self
            .documents
            .iter_mut()
            .map(|(name, d)| DocumentEntries {
                document: document_location(reader.location, name).to_string(),
                in_force: d.in_force.take(),
                wanted: d.wanted.take(),
            })
            .collect();
        let config_dir = ConfigDir::of(&document_location(reader.location, DEFAULTS_DOCUMENT).to_string());
        let (admitted, refused) = admit(&entries, &config_dir, reader.source_bucket);
        refusals.extend(refused);
        let mut any = false;
        for ((document, entry), admitted) in self.documents.values_mut().zip(entries).zip(admitted) {
            match admitted {
                Admitted::Wanted => {
                    document.in_force = entry.wanted;
                    any = true;
                }
                Admitted::Kept | Admitted::Unconfigured => {
                    document.in_force = entry.in_force;
                    document.wanted = entry.wanted;
                }
            }
        }
        any
    }
}
