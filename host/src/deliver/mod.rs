//! The copy step, one for every entry point: an object's targets copied to where its org's
//! copies go ([`deliver`]), as the org's role when it has one, each outcome reported.
//!
//! The handler calls it once a record is planned, the backfill once its in-place check
//! leaves targets to copy; neither chooses a client or names a role itself. A removal the
//! org propagates goes through [`remove`] instead, with the same client.

use crate::config::Org;
use crate::destination::{CopyOptions, Destination, S3Destination, SourceHead};
use crate::event::SourceObject;
use crate::exporter::Exporter;
use crate::report::TargetReport;
use crate::route::Target;
use crate::s3::roles::AssumeRoleFailed;

mod given;
mod remove;

pub use given::{TagsSeen, facts_of, given_for};
pub use remove::{Removed, is_export_of, remove};

/// Where one org's copies go.
enum OrgDestination<'e> {
    /// The function's destination (an org without a role, or local mode).
    Shared(&'e Destination),
    /// The destination buckets written as the org's role, and the role's ARN.
    Role(S3Destination, &'e str),
}

/// Where `org`'s copies go: as its role when it has one (and the destination is S3).
async fn org_destination<'e>(
    exporter: &'e Exporter,
    org: Option<&'e Org>,
) -> Result<OrgDestination<'e>, AssumeRoleFailed> {
    let role = match org {
        Some(org) => exporter.role_destination(org).await?.zip(org.role.as_ref()),
        None => None,
    };
    Ok(match role {
        Some((destination, role)) => OrgDestination::Role(destination, role.role_arn.as_str()),
        None => OrgDestination::Shared(exporter.destination()),
    })
}

/// The source's HEAD, read ahead by whoever will copy `object` (the org's role when it has
/// one) while the record is planned: `None` when the copy reads none, when the read failed
/// (the copy reads it again and reports why) or when the role cannot be assumed (never read
/// with the function's rights instead).
pub async fn read_source_ahead(
    exporter: &Exporter,
    org: Option<&Org>,
    object: &SourceObject,
    options: &CopyOptions,
) -> Option<SourceHead> {
    match org_destination(exporter, org).await.ok()? {
        OrgDestination::Shared(destination) => destination.read_source_head(object, options).await,
        OrgDestination::Role(destination, _) => destination.read_source_head(object, options).await,
    }
}

/// Copies `object` to each of `targets` (concurrently) where `org`'s copies go: the
/// destination bucket written as the org's `roleArn` when it has one, the function's
/// destination otherwise. `options` are the object's ([`CopyOptions::for_object`]).
///
/// One report per target, in `targets`' order; a failure of a copy made as a role names the
/// role. Fails only when the org's role cannot be assumed (then nothing was copied: other
/// orgs' objects never wait for that role).
pub async fn deliver(
    exporter: &Exporter,
    org: Option<&Org>,
    object: &SourceObject,
    targets: &[Target],
    options: &CopyOptions,
) -> Result<Vec<TargetReport>, AssumeRoleFailed> {
    let destination = org_destination(exporter, org).await?;
    let deliveries = futures::future::join_all(targets.iter().map(|target| async {
        match &destination {
            OrgDestination::Shared(shared) => shared.copy(object, target, options).await,
            OrgDestination::Role(as_role, _) => as_role.copy(object, target, options).await,
        }
    }))
    .await;
    Ok(deliveries
        .into_iter()
        .map(|delivery| match &destination {
            OrgDestination::Role(_, arn) => delivery.naming_role(arn),
            OrgDestination::Shared(_) => delivery,
        })
        .map(TargetReport::from)
        .collect())
}
