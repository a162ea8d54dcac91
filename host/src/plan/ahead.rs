//! An invocation's plugin decisions, asked ahead of the copies.
//!
//! When an invocation starts, the handler routes every object record (pure, no I/O) and
//! [`PlanAhead::new`] keeps, per org with a plugin, the requests of its records. The first of an org's
//! records to ask starts the org's lane ([`Plugin::decide_ahead`]): one blocking thread that
//! decides all of them back to back while the records wait for their copies, so a decision
//! costs what the decision costs, not two thread wake-ups. Each org has its own lane: a slow
//! or stuck plugin delays only its own org's records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::shadow::ShadowLines;
use crate::event::SourceObject;
use crate::policy::{Answer, DecisionError, Given, Pending, Plugin, Request};
use crate::route::Proposal;

/// The requests of an invocation's records, by org, until each org's lane starts.
#[derive(Default)]
pub struct PlanAhead {
    /// One lane per org with a plugin.
    lanes: Vec<Mutex<OrgLane>>,
    /// The lane of each record that has a request, by record index.
    lane_of: HashMap<usize, usize>,
    /// The disagreement lines of candidate plugins logged so far in the invocation.
    shadow_lines: ShadowLines,
}

enum OrgLane {
    /// Not started: the record indexes and their requests, in event order.
    Waiting(Vec<(usize, Request)>),
    /// Started: each record's answer, by record index; for a plugin that is given the
    /// source's facts, what each record still has to give (sent when it asks).
    Started(HashMap<usize, (oneshot::Receiver<Answer>, Option<oneshot::Sender<Given>>)>),
}

impl PlanAhead {
    /// Keeps a request for each routed object (by record index) whose org has a plugin,
    /// with what routing proposed for it.
    pub fn new<'a, 'c: 'a>(
        routed: impl IntoIterator<Item = (usize, &'a SourceObject, &'a Proposal<'c>)>,
    ) -> Self {
        let mut lane_by_org: HashMap<&str, usize> = HashMap::new();
        let mut waiting: Vec<Vec<(usize, Request)>> = Vec::new();
        let mut lane_of = HashMap::new();
        for (index, object, proposal) in routed {
            let Some((org, spec)) = proposal.org.and_then(|o| Some((o, o.plugin.as_ref()?))) else {
                continue;
            };
            let lane = *lane_by_org.entry(org.org.as_str()).or_insert_with(|| {
                waiting.push(Vec::new());
                waiting.len() - 1
            });
            waiting[lane].push((
                index,
                Request {
                    org: org.org.clone(),
                    object: object.clone(),
                    proposed: proposal.proposed.clone(),
                    settings: spec.settings.clone(),
                    given: Pending::default(),
                },
            ));
            lane_of.insert(index, lane);
        }
        Self {
            lanes: waiting
                .into_iter()
                .map(|requests| Mutex::new(OrgLane::Waiting(requests)))
                .collect(),
            lane_of,
            shadow_lines: ShadowLines::default(),
        }
    }

    /// The invocation's budget of disagreement lines.
    pub(super) fn shadow_lines(&self) -> &ShadowLines {
        &self.shadow_lines
    }

    /// The answer to record `index`'s request to its org's `plugin`, starting the org's lane
    /// if this is the first of its records to ask; `None` when no request was kept for it.
    ///
    /// `given`: what the record gives a 0.2 plugin (the source's HEAD facts, its tags). For
    /// such a plugin the lane's later requests wait for theirs, which each record sends
    /// when it asks (having read its HEAD first).
    pub async fn answer(&self, index: usize, plugin: &Arc<Plugin>, given: &Given) -> Option<Answer> {
        let receiver = {
            let mut lane = self.lanes[*self.lane_of.get(&index)?]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let OrgLane::Waiting(requests) = &mut *lane {
                let wants = plugin.wants_facts();
                let waiting = std::mem::take(requests);
                let (mut indexes, mut senders) = (Vec::new(), Vec::new());
                let mut lane_requests = Vec::with_capacity(waiting.len());
                for (at, mut request) in waiting {
                    // Each request of a plugin given the source's facts waits for them; its
                    // record sends them when it asks (this one, just below).
                    let sender = wants.then(|| {
                        let (sender, pending) = Pending::later();
                        request.given = pending;
                        sender
                    });
                    indexes.push(at);
                    lane_requests.push(request);
                    senders.push(sender);
                }
                let receivers = plugin.clone().decide_ahead(lane_requests);
                *lane = OrgLane::Started(
                    indexes
                        .into_iter()
                        .zip(receivers.into_iter().zip(senders))
                        .collect(),
                );
            }
            let OrgLane::Started(receivers) = &mut *lane else {
                return None;
            };
            let (receiver, sender) = receivers.remove(&index)?;
            if let Some(sender) = sender {
                let _ = sender.send(given.clone());
            }
            receiver
        };
        Some(receiver.await.unwrap_or_else(|_| Answer {
            result: Err(DecisionError::Host(
                "the org's decision thread ended without an answer".into(),
            )),
            elapsed: std::time::Duration::ZERO,
            shadow: None,
            tag_reads: 0,
        }))
    }
}
