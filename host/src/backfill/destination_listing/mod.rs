//! The destination's side of "already in place" from a listing of the destination instead
//! of a HEAD per object.
//!
//! For each org the backfill meets, its destination bucket is listed (`ListObjectsV2`, over
//! the org's key space within the backfill's prefix) by a task of its own that keeps a few
//! pages ready ahead. Both listings come in key order (UTF-8 bytes, which is also how Rust
//! orders `str`), so the source keys of one org and the destination's keys are merge-joined:
//! for each source key, destination keys before it are passed over, and the one equal to it,
//! if any, is what a HEAD of that key would have found. A first fill into an empty bucket
//! costs one listing request per org and no HEAD at all.
//!
//! The join only answers for the org's destination bucket under the source's own key (what
//! routing proposes). A target a plugin rewrote, or one in an `allowedBuckets` bucket, is
//! not known in advance and is still checked with a HEAD; so is every key of an org whose
//! destination listing failed (after retries). A join that loses its place can only answer
//! "absent" wrongly (the object is copied again, which is harmless), never "present": a key
//! counts as present only when the listing holds exactly that key.
//!
//! Memory: per org being listed, at most [`PAGES_AHEAD`] pages waiting, the page being read
//! and the one being fetched, each `page_size` entries of about 100 bytes plus the key
//! (roughly 0.6 MB at 1,000-key pages and 50-byte keys), whatever the number of objects. An
//! org's listing ends once the source listing has moved past its prefix, so only the orgs
//! whose prefixes are prefixes of the current key hold any.

use std::collections::VecDeque;
use std::sync::Arc;

use aws_sdk_s3::Client;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{Config, Org};
use crate::destination::Existing;
use crate::route::owner;
use crate::s3::{RetryPolicy, S3Failure};

/// Pages of one destination listing kept ready ahead of the join.
pub const PAGES_AHEAD: usize = 2;

/// What the destination listing says about a source key in its org's destination bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    /// The destination bucket listed (the org's `destinationBucket`).
    pub bucket: Arc<str>,
    /// The object under the source's key there; `None` when the listing has no such key.
    pub existing: Option<Existing>,
}

/// A destination object under its org's prefix whose key no listed source key equals:
/// a candidate for reconcile's `extra` class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// The org whose destination bucket holds it.
    pub org: String,
    /// Its key.
    pub key: String,
}

/// What the destination listings saw besides the source's keys (reconcile).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Destination objects no source key matched, in listing order per org.
    pub unmatched: Vec<Unmatched>,
    /// Orgs whose destination listing failed or could not be read: their unmatched objects
    /// are not known.
    pub unknown: Vec<String>,
}

/// The destination listings of one backfill, one per org met, answered in source-key order.
pub struct DestinationListings {
    client: Client,
    config: Arc<Config>,
    retry: RetryPolicy,
    page_size: i32,
    /// The backfill's source prefix.
    prefix: String,
    /// `--org`: no other org's destination is listed (none: every org's).
    orgs: Vec<String>,
    /// The clients of orgs with a role (reconcile): their buckets are listed as the role.
    /// An org with a role but no client here is not listed (its keys get HEADs).
    role_clients: std::collections::HashMap<String, Client>,
    /// Reconcile: what no source key matched, and the orgs met so far.
    leftovers: Option<(Leftovers, std::collections::HashSet<String>)>,
    /// Reconcile: orgs whose destination is read from an S3 Inventory (in key order) instead
    /// of a listing.
    inventories: std::collections::HashMap<String, InventoryEntries>,
    open: Vec<Cursor>,
}

impl DestinationListings {
    /// Listings with `client` (the destinations' client), for a backfill of keys under
    /// `prefix`, only `org`'s when given.
    pub fn new(
        client: Client,
        config: Arc<Config>,
        retry: RetryPolicy,
        page_size: i32,
        prefix: String,
        orgs: Vec<String>,
    ) -> Self {
        DestinationListings {
            client,
            config,
            retry,
            page_size,
            prefix,
            orgs,
            role_clients: Default::default(),
            leftovers: None,
            inventories: Default::default(),
            open: Vec::new(),
        }
    }

    /// Reconcile's listings: they also keep the destination objects no source key matched
    /// ([`DestinationListings::finish`]), and list the buckets of orgs with a role with
    /// their `role_clients`.
    pub fn keeping_leftovers(mut self, role_clients: std::collections::HashMap<String, Client>) -> Self {
        self.role_clients = role_clients;
        self.leftovers = Some(Default::default());
        self
    }

    /// Reads the destinations of these orgs from their inventories' entries (in key order)
    /// instead of listing them.
    pub fn with_inventories(
        mut self,
        inventories: std::collections::HashMap<String, InventoryEntries>,
    ) -> Self {
        self.inventories = inventories;
        self
    }

    /// Whether `org` is one this run lists (`--org`).
    fn wanted(&self, org: &Org) -> bool {
        self.orgs.is_empty() || self.orgs.contains(&org.org)
    }

    /// The client that lists `org`'s bucket: the role's for an org with a role (none when
    /// it has no client here), the function's otherwise.
    fn client_of(&self, org: &Org) -> Option<Client> {
        match &org.role {
            Some(_) => self.role_clients.get(&org.org).cloned(),
            None => Some(self.client.clone()),
        }
    }

    /// Once every source key was looked up: the rest of each open listing, and the whole
    /// listing of every wanted org no source key reached, as unmatched objects (reconcile;
    /// empty otherwise).
    pub async fn finish(mut self) -> Leftovers {
        let Some((mut leftovers, met)) = self.leftovers.take() else {
            return Leftovers::default();
        };
        for mut cursor in std::mem::take(&mut self.open) {
            cursor.drain(&mut leftovers).await;
        }
        let config = self.config.clone();
        for org in &config.customers {
            let overlaps = org.prefix.starts_with(&self.prefix) || self.prefix.starts_with(&org.prefix);
            if met.contains(&org.org) || !overlaps || !self.wanted(org) {
                continue;
            }
            match self.start(org) {
                Some(mut cursor) => cursor.drain(&mut leftovers).await,
                None => leftovers.unknown.push(org.org.clone()),
            }
        }
        leftovers
    }

    /// What the destination holds under `key` (a source key), or `None` when the listing
    /// cannot say (no org, another org than `--org`, the listing failed): then the caller
    /// checks with a HEAD. Keys must come in increasing order.
    pub async fn lookup(&mut self, key: &str) -> Option<Known> {
        // Every key under a prefix sorts before any larger key that does not start with
        // it: a listing whose prefix the keys have moved past is done with (reconcile:
        // once what is left of it is read).
        let passed =
            |cursor: &Cursor| !(key.starts_with(cursor.prefix.as_str()) || key < cursor.prefix.as_str());
        // Most keys pass no listing by: nothing to move then.
        if self.open.iter().any(passed) {
            let (done, open): (Vec<Cursor>, Vec<Cursor>) =
                std::mem::take(&mut self.open).into_iter().partition(passed);
            self.open = open;
            if let Some((leftovers, _)) = self.leftovers.as_mut() {
                for mut cursor in done {
                    cursor.drain(leftovers).await;
                }
            }
        }
        let config = self.config.clone();
        let org = owner(&config, key)?;
        if !self.wanted(org) {
            return None;
        }
        let at = match self.open.iter().position(|c| c.org == org.org) {
            Some(at) => at,
            None => {
                if let Some((_, met)) = self.leftovers.as_mut()
                    && !met.insert(org.org.clone())
                {
                    // Met before and finished with: keys come in order, so no more.
                    return None;
                }
                // An org with a roleArn: its bucket is read as the role, not with this client
                // (which the tenant's bucket need not grant); without the role's client its
                // keys are checked with HEADs as the role.
                let Some(cursor) = self.start(org) else {
                    if let Some((leftovers, _)) = self.leftovers.as_mut() {
                        leftovers.unknown.push(org.org.clone());
                    }
                    return None;
                };
                self.open.push(cursor);
                self.open.len() - 1
            }
        };
        let leftovers = self.leftovers.as_mut().map(|(l, _)| l);
        self.open[at].find(key, leftovers).await
    }

    /// The listing of `org`'s destination bucket, or `None` when there is no client to list
    /// it with (an org with a role, outside reconcile).
    fn start(&mut self, org: &Org) -> Option<Cursor> {
        let inventory = self.inventories.remove(&org.org);
        let client = match inventory {
            Some(_) => self.client.clone(),
            None => self.client_of(org)?,
        };
        // Both are prefixes of the key that brought this org up, so the longer one holds
        // the other: the org's keys within the backfill.
        let prefix = if self.prefix.len() > org.prefix.len() {
            self.prefix.clone()
        } else {
            org.prefix.clone()
        };
        let bucket: Arc<str> = Arc::from(org.destination_bucket.as_str());
        let (tx, rx) = mpsc::channel(PAGES_AHEAD);
        let task = match inventory {
            Some(entries) => tokio::spawn(pages_of_inventory(entries, prefix.clone(), self.page_size, tx)),
            None => tokio::spawn(list_destination(
                client,
                bucket.clone(),
                org.expected_bucket_owner.clone(),
                prefix.clone(),
                self.page_size,
                self.retry,
                tx,
            )),
        };
        Some(Cursor {
            org: org.org.clone(),
            prefix,
            bucket,
            pages: rx,
            page: VecDeque::new(),
            state: State::Reading,
            task,
        })
    }
}

/// One destination key and what a HEAD would say about it.
#[derive(Debug)]
struct Entry {
    key: String,
    existing: Existing,
}

/// A page of the destination listing; `last` after the final one.
struct Page {
    entries: Vec<Entry>,
    last: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    /// Every page has been received.
    Complete,
    /// The listing failed or ended without its last page: HEAD from here on.
    Failed,
}

/// The join's place in one org's destination listing.
struct Cursor {
    org: String,
    prefix: String,
    bucket: Arc<str>,
    pages: mpsc::Receiver<Result<Page, S3Failure>>,
    page: VecDeque<Entry>,
    state: State,
    task: JoinHandle<()>,
}

impl Drop for Cursor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Cursor {
    /// What the listing holds under `key`; the keys passed over on the way are unmatched
    /// (kept in `leftovers` when given).
    async fn find(&mut self, key: &str, mut leftovers: Option<&mut Leftovers>) -> Option<Known> {
        loop {
            if self.state == State::Failed {
                return None;
            }
            while let Some(front) = self.page.front() {
                match front.key.as_str().cmp(key) {
                    std::cmp::Ordering::Less => {
                        let passed = self.page.pop_front()?;
                        if let Some(leftovers) = leftovers.as_deref_mut() {
                            leftovers.unmatched.push(Unmatched {
                                org: self.org.clone(),
                                key: passed.key,
                            });
                        }
                    }
                    std::cmp::Ordering::Equal => {
                        let entry = self.page.pop_front()?;
                        return Some(self.known(Some(entry.existing)));
                    }
                    std::cmp::Ordering::Greater => return Some(self.known(None)),
                }
            }
            if self.state == State::Complete {
                return Some(self.known(None));
            }
            self.next_page().await;
        }
    }

    /// Reads what is left of the listing into `leftovers` as unmatched; an org whose listing
    /// failed is named unknown.
    async fn drain(&mut self, leftovers: &mut Leftovers) {
        loop {
            leftovers
                .unmatched
                .extend(self.page.drain(..).map(|entry| Unmatched {
                    org: self.org.clone(),
                    key: entry.key,
                }));
            match self.state {
                State::Complete => return,
                State::Failed => {
                    leftovers.unknown.push(self.org.clone());
                    return;
                }
                State::Reading => self.next_page().await,
            }
        }
    }

    /// Receives the next page; the listing's failure or early end makes it `Failed`.
    async fn next_page(&mut self) {
        {
            match self.pages.recv().await {
                Some(Ok(page)) => {
                    self.page = page.entries.into();
                    if page.last {
                        self.state = State::Complete;
                    }
                }
                Some(Err(failure)) => {
                    tracing::warn!(
                        bucket = %self.bucket,
                        prefix = %self.prefix,
                        "listing the destination failed ({failure}); checking org {}'s objects one by one (HEAD)",
                        self.org
                    );
                    self.state = State::Failed;
                }
                None => self.state = State::Failed,
            }
        }
    }

    fn known(&self, existing: Option<Existing>) -> Known {
        Known {
            bucket: self.bucket.clone(),
            existing,
        }
    }
}

mod pages;
#[cfg(test)]
mod tests;

pub use pages::InventoryEntries;
use pages::{list_destination, pages_of_inventory};
