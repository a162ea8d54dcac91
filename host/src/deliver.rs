//! The copy step, one for every entry point: an object's targets copied to where its org's
//! copies go ([`deliver`]), as the org's role when it has one, each outcome reported.
//!
//! The handler calls it once a record is planned, the backfill once its in-place check
//! leaves targets to copy; neither chooses a client or names a role itself.

use crate::config::Org;
use crate::destination::CopyOptions;
use crate::event::SourceObject;
use crate::exporter::Exporter;
use crate::report::TargetReport;
use crate::route::Target;
use crate::s3::roles::AssumeRoleFailed;

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
    let as_role = match org {
        Some(org) => exporter.role_destination(org).await?,
        None => None,
    };
    let role_arn = as_role
        .as_ref()
        .and(org)
        .and_then(|org| org.role.as_ref())
        .map(|role| role.role_arn.as_str());
    let destination = exporter.destination();
    let deliveries = futures::future::join_all(targets.iter().map(|target| async {
        match &as_role {
            Some(as_role) => as_role.copy(object, target, options).await,
            None => destination.copy(object, target, options).await,
        }
    }))
    .await;
    Ok(deliveries
        .into_iter()
        .map(|delivery| match role_arn {
            Some(arn) => delivery.naming_role(arn),
            None => delivery,
        })
        .map(TargetReport::from)
        .collect())
}
