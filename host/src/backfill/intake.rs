//! Where a run's objects come from: the source's listing page by page ([`list_rest`]) or an
//! S3 Inventory of it in key order ([`inventory_rest`]). Either way each object goes on with
//! what the destination listings know of it, and once all are sent the listings' leftovers
//! (reconcile) come back.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::destination_listing::{DestinationListings, Known, Leftovers};
use super::inventory::{InventoryEntry, InventoryError};
use super::listing::{self, Listed, list_page};
use super::progress::Progress;
use crate::s3::RetryPolicy;

/// What the intake sends on: the object and what the destination listing knows of it.
pub(super) type Intake = mpsc::Sender<(Listed, Option<Known>)>;

/// Sends `listed` on with what `destinations` knows of it; `false` once the receiver is gone
/// (interrupted).
async fn forward(
    listed: Listed,
    progress: &Progress,
    destinations: &mut Option<DestinationListings>,
    tx: &Intake,
) -> bool {
    progress.listed(listed.object.size.unwrap_or(0));
    let known = match destinations.as_mut() {
        Some(destinations) => destinations.lookup(&listed.object.key).await,
        None => None,
    };
    tx.send((listed, known)).await.is_ok()
}

/// Once every object was sent: the destinations' unmatched objects.
async fn finish(progress: &Progress, destinations: Option<DestinationListings>) -> Leftovers {
    let leftovers = match destinations {
        Some(destinations) => destinations.finish().await,
        None => Leftovers::default(),
    };
    progress.listing_finished();
    leftovers
}

/// Sends the objects of `first` and of every following page into `tx`, each with what
/// `destinations` knows of it; stops quietly when the receiver is gone (interrupted), and
/// returns the failure when a page cannot be listed. Once all is listed: the destinations'
/// unmatched objects (reconcile).
#[allow(clippy::too_many_arguments)]
pub(super) async fn list_rest(
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    page_size: i32,
    first: listing::Page,
    owner: Option<String>,
    retry: RetryPolicy,
    progress: Arc<Progress>,
    mut destinations: Option<DestinationListings>,
    tx: Intake,
) -> Result<Leftovers, String> {
    let mut page = first;
    loop {
        for listed in page.objects {
            if !forward(listed, &progress, &mut destinations, &tx).await {
                return Ok(Leftovers::default());
            }
        }
        let Some(token) = page.next else {
            return Ok(finish(&progress, destinations).await);
        };
        page = list_page(
            &client,
            &bucket,
            &prefix,
            page_size,
            Some(token),
            owner.as_deref(),
            &retry,
        )
        .await
        .map_err(|failure| {
            format!(
                "listing s3://{bucket}/{prefix} stopped after {} objects: {failure}",
                progress.snapshot().listed
            )
        })?;
    }
}

/// Sends the entries of a source inventory (in key order) into `tx` as objects of `bucket`,
/// as [`list_rest`] does a listing's; a read that fails part-way is the run's listing error.
pub(super) async fn inventory_rest(
    mut entries: mpsc::Receiver<Result<InventoryEntry, InventoryError>>,
    bucket: String,
    progress: Arc<Progress>,
    mut destinations: Option<DestinationListings>,
    tx: Intake,
) -> Result<Leftovers, String> {
    while let Some(entry) = entries.recv().await {
        let entry = entry.map_err(|e| {
            format!(
                "the source inventory stopped after {} objects: {e}",
                progress.snapshot().listed
            )
        })?;
        if !forward(entry.listed(&bucket), &progress, &mut destinations, &tx).await {
            return Ok(Leftovers::default());
        }
    }
    Ok(finish(&progress, destinations).await)
}
