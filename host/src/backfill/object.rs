//! One listed object of a backfill: its plan (as an event's), the in-place check of each
//! target, and the copy step ([`deliver`]) for the targets that need it.

use crate::config::{Config, Encryption, Org};
use crate::deliver::{deliver, given_for, read_source_ahead};
use crate::destination::{CopyOptions, Existing, S3Destination, SourceHead, Sse};
use crate::exporter::Exporter;
use crate::plan::{Ask, Decision, Planned, plan};
use crate::report::{Outcome, TargetReport};
use crate::route::{Target, propose};
use crate::s3::S3Failure;

use super::destination_listing::Known;
use super::in_place::{Copied, Side, already_copied};
use super::listing::Listed;
use super::{BackfillOptions, Gap, ObjectOutcome, ObjectResult};

/// What every object of one backfill run shares.
pub(super) struct RunContext<'a> {
    pub(super) exporter: &'a Exporter,
    /// The destination buckets (a backfill runs only between buckets).
    pub(super) destination: &'a S3Destination,
    pub(super) config: &'a std::sync::Arc<Config>,
    /// Reconcile: a gap whose source was written after this is pending.
    pub(super) pending_after: Option<aws_smithy_types::DateTime>,
    /// The run's copy options, before any object's own.
    pub(super) copy: CopyOptions,
    pub(super) options: &'a BackfillOptions,
}

pub(super) async fn backfill_object(
    run: &RunContext<'_>,
    listed: Listed,
    known: Option<Known>,
) -> ObjectResult {
    let settings = run.exporter.settings();
    let proposal = propose(run.config, &settings.suffixes, &listed.object);
    let owner = proposal.org;
    let plugin = match owner {
        Some(owner) => run.exporter.plugin_of(run.config, owner).await,
        None => None,
    };
    // A 0.2 plugin decides by the source's HEAD, as on a live event: read first (as whoever
    // copies), then kept for the in-place check and the copy.
    let wants_facts = matches!(&plugin, Some(Ok(p)) if p.wants_facts());
    let (headed, given) = match wants_facts {
        true => {
            let copy = run.copy.for_object(owner);
            let head = read_source_ahead(run.exporter, owner, &listed.object, &copy).await;
            let (given, _) = given_for(run.exporter, owner, &listed.object, &copy, head.as_ref()).await;
            (head, given)
        }
        false => (None, Default::default()),
    };
    let ask = match wants_facts {
        true => Ask::Given {
            object: &listed.object,
            given: &given,
        },
        false => Ask::Now(&listed.object),
    };
    let Planned { decision, .. } = plan(proposal, plugin.as_ref(), ask).await;
    let org = owner.map(|c| c.org.clone());
    let wanted = &run.options.orgs;
    let mut named = Vec::new();
    let (outcome, gap) = match decision {
        _ if !wanted.is_empty() && !org.as_ref().is_some_and(|o| wanted.contains(o)) => {
            let skipped = format!(
                "belongs to {}, not --org {}",
                org.as_deref()
                    .map_or("no org".to_string(), |o| format!("org {o}")),
                wanted.join(", ")
            );
            (ObjectOutcome::Skipped(skipped), None)
        }
        Decision::Skip(reason) => (ObjectOutcome::Skipped(reason), None),
        Decision::Fail(failed) => (ObjectOutcome::Failed(failed.reason), None),
        Decision::Copy(targets) => {
            let copy = run.copy.for_object(owner);
            named.clone_from(&targets);
            export_to(run, owner, &copy, &listed, known, targets, headed).await
        }
    };
    ObjectResult {
        listed,
        org,
        outcome,
        gap,
        targets: named,
    }
}

fn could_not_check(target: &Target, failure: &S3Failure) -> ObjectOutcome {
    ObjectOutcome::Failed(format!(
        "could not check s3://{}/{}: {failure}",
        target.bucket, target.key
    ))
}

/// `known`: what the destination listing says of the source's key in the org's bucket; a
/// target it does not cover (a rewritten key, another bucket) is checked with a HEAD.
/// `headed`: the source's HEAD when the plan read one (a 0.2 plugin's facts).
async fn export_to(
    run: &RunContext<'_>,
    org: Option<&Org>,
    copy: &CopyOptions,
    listed: &Listed,
    known: Option<Known>,
    targets: Vec<Target>,
    headed: Option<SourceHead>,
) -> (ObjectOutcome, Option<Gap>) {
    // An org with a roleArn is checked and written as its role, like an event's records.
    let as_role = match org {
        Some(org) => match run.exporter.role_destination(org).await {
            Ok(as_role) => as_role,
            Err(failed) => return (ObjectOutcome::Failed(failed.to_string()), None),
        },
        None => None,
    };
    let mut gap = None;
    let destination = as_role.as_ref().unwrap_or(run.destination);
    let mut missing = Vec::with_capacity(targets.len());
    // The source as the listing shows it (or as the plan's HEAD did); read with a HEAD at
    // most once, and only when the in-place rule asks for it.
    let mut source = match &headed {
        Some(head) => Existing::from_head(&head.0).sharpened_by(&listed.facts()),
        None => listed.facts(),
    };
    // That HEAD, when read: the copy below uses it instead of reading its own.
    let mut source_head = headed;
    // A listing shows no encryption: a copy this org wrote is SSE-KMS if the org says so.
    let listed_sse = match copy.write.encryption {
        Some(Encryption::Kms { .. }) => Sse::Kms,
        _ => Sse::Unknown,
    };
    for target in targets {
        if !run.options.force {
            let listing = known
                .as_ref()
                .filter(|k| *k.bucket == *target.bucket && target.key == listed.object.key);
            let owner = copy.write.owner_of(&target.bucket);
            let head = || destination.existing(&target, owner, &copy.retry);
            let mut existing = match listing.map(|known| &known.existing) {
                Some(found) => found.clone().map(|found| Existing {
                    sse: listed_sse,
                    ..found
                }),
                None => match head().await {
                    Ok(found) => found,
                    Err(failure) => return (could_not_check(&target, &failure), None),
                },
            };
            // Each side is read with a HEAD at most once (already_copied never asks for a
            // side read already): three rounds at most.
            let mut in_place = false;
            for _ in 0..3 {
                let Some(found) = existing.as_ref() else { break };
                match already_copied(&source, found) {
                    Copied::Yes => in_place = true,
                    Copied::No => {}
                    Copied::ReadHead(Side::Destination) => {
                        existing = match head().await {
                            Ok(headed) => headed.map(|headed| headed.sharpened_by(found)),
                            Err(failure) => return (could_not_check(&target, &failure), None),
                        };
                        continue;
                    }
                    Copied::ReadHead(Side::Source) => {
                        // Read as whoever copies (the org's role, when it has one): a role
                        // that cannot read the source is never told "in place" on the
                        // strength of the function's rights.
                        source = match destination.source_head(&listed.object, copy).await {
                            Ok((headed, head)) => {
                                source_head = Some(head);
                                headed.sharpened_by(&source)
                            }
                            Err(S3Failure::SourceChanged(why)) => {
                                return (ObjectOutcome::Superseded(why.to_string()), None);
                            }
                            Err(failure) => {
                                let failed = format!(
                                    "could not read s3://{}/{}: {failure}",
                                    listed.object.bucket, listed.object.key
                                );
                                return (ObjectOutcome::Failed(failed), None);
                            }
                        };
                        continue;
                    }
                }
                break;
            }
            if in_place {
                continue;
            }
            gap = gap.max(Some(match existing {
                None => Gap::Missing,
                Some(_) => Gap::Differs,
            }));
        }
        missing.push(target);
    }
    if missing.is_empty() {
        return (ObjectOutcome::InPlace, None);
    }
    if let Some(pending_after) = run.pending_after
        && listed.last_modified.is_some_and(|at| at > pending_after)
    {
        return (ObjectOutcome::Pending, None);
    }
    if run.options.dry_run {
        return (ObjectOutcome::WouldCopy(missing), gap);
    }
    let copy = &CopyOptions {
        source_head,
        ..copy.clone()
    };
    let reports = match deliver(run.exporter, org, &listed.object, &missing, copy).await {
        Ok(reports) => reports,
        Err(failed) => return (ObjectOutcome::Failed(failed.to_string()), gap),
    };
    let described = |t: &TargetReport| {
        format!(
            "s3://{}/{}: {}",
            t.destination_bucket,
            t.destination_key,
            t.reason.as_deref().unwrap_or("")
        )
    };
    match TargetReport::worst(&reports) {
        Some(failed) if failed.outcome == Outcome::Failed => {
            return (ObjectOutcome::Failed(described(failed)), gap);
        }
        Some(superseded) if superseded.outcome == Outcome::Superseded => {
            return (ObjectOutcome::Superseded(described(superseded)), gap);
        }
        _ => {}
    }
    let bytes = reports.iter().filter_map(|t| t.bytes).sum();
    (ObjectOutcome::Copied { bytes }, gap)
}
