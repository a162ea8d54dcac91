//! An invocation's plugin decisions, asked ahead of the copies.
//!
//! When an invocation starts, [`PlanAhead::new`] routes every object record (pure, no I/O)
//! and keeps, per org with a plugin, the requests of its records. The first of an org's
//! records to ask starts the org's lane ([`Plugin::decide_ahead`]): one blocking thread that
//! decides all of them back to back while the records wait for their copies, so a decision
//! costs what the decision costs, not two thread wake-ups. Each org has its own lane: a slow
//! or stuck plugin delays only its own org's records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::{Proposal, propose};
use crate::config::Config;
use crate::event::{EventRecord, RecordBody, SourceObject};
use crate::policy::{Answer, DecisionError, Plugin, Request};
use crate::suffix::SuffixSet;

/// The requests of an invocation's records, by org, until each org's lane starts.
#[derive(Default)]
pub struct PlanAhead {
    orgs: Mutex<HashMap<String, OrgLane>>,
}

enum OrgLane {
    /// Not started: the record indexes and their requests, in event order.
    Waiting(Vec<(usize, Request)>),
    /// Started: each record's answer, by record index.
    Started(HashMap<usize, oneshot::Receiver<Answer>>),
}

impl PlanAhead {
    /// Routes each object record of `records` (indexed by position) and keeps a request for
    /// each whose org has a plugin.
    pub fn new(config: &Config, suffixes: &SuffixSet, records: &[EventRecord]) -> Self {
        Self::for_objects(
            config,
            suffixes,
            records
                .iter()
                .enumerate()
                .filter_map(|(index, record)| match &record.body {
                    RecordBody::Object(object) => Some((index, object)),
                    _ => None,
                }),
        )
    }

    /// [`PlanAhead::new`] over indexed objects.
    pub fn for_objects<'o>(
        config: &Config,
        suffixes: &SuffixSet,
        objects: impl IntoIterator<Item = (usize, &'o SourceObject)>,
    ) -> Self {
        if config.customers.iter().all(|c| c.plugin.is_none()) {
            // Nothing to ask ahead: no record is routed twice for nothing.
            return Self::default();
        }
        let mut orgs: HashMap<String, OrgLane> = HashMap::new();
        for (index, object) in objects {
            let Proposal {
                customer, proposed, ..
            } = propose(config, suffixes, object);
            let Some((org, spec)) = customer.and_then(|c| Some((c, c.plugin.as_ref()?))) else {
                continue;
            };
            let request = Request {
                org: org.org.clone(),
                object: object.clone(),
                proposed,
                settings: spec.settings.clone(),
            };
            if let OrgLane::Waiting(requests) = orgs
                .entry(org.org.clone())
                .or_insert_with(|| OrgLane::Waiting(Vec::new()))
            {
                requests.push((index, request));
            }
        }
        Self {
            orgs: Mutex::new(orgs),
        }
    }

    /// The answer to record `index`'s request to `org`'s `plugin`, starting the org's lane
    /// if this is the first of its records to ask; `None` when no request was kept for it.
    pub async fn answer(&self, index: usize, org: &str, plugin: &Arc<Plugin>) -> Option<Answer> {
        let receiver = {
            let mut orgs = self.orgs.lock().unwrap_or_else(PoisonError::into_inner);
            let lane = orgs.get_mut(org)?;
            if let OrgLane::Waiting(requests) = lane {
                let (indexes, requests): (Vec<usize>, Vec<Request>) =
                    std::mem::take(requests).into_iter().unzip();
                let receivers = plugin.clone().decide_ahead(requests);
                *lane = OrgLane::Started(indexes.into_iter().zip(receivers).collect());
            }
            let OrgLane::Started(receivers) = lane else {
                return None;
            };
            receivers.remove(&index)?
        };
        Some(receiver.await.unwrap_or_else(|_| Answer {
            result: Err(DecisionError::Host(
                "the org's decision thread ended without an answer".into(),
            )),
            elapsed: std::time::Duration::ZERO,
        }))
    }
}
