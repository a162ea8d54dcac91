//! The one integration-test binary. Tests that need S3 talk to real servers on loopback
//! (Garage and moto; LocalStack too for the fidelity matrix), started by
//! `tests/servers/up.sh` on first use.

/// Shared helpers: the servers, per-test buckets, generated events, the fault proxy.
#[macro_use]
mod support;

/// `artifact-export backfill`: listing, idempotent reruns, the in-place rule, dry runs,
/// manifests, interrupts.
mod backfill;
/// S3 Batch Operations invocations (backfills): per-task result codes and response shape.
mod batch_operations;
/// Size limits of the config, plugins and events: at the limit accepted, above it refused.
mod bounded_inputs;
/// `artifact-export check`: one line per org, its first failure's reason, exit codes.
mod check;
/// The `artifact-export` binary: `invoke` and `validate`, exit codes and output.
mod cli;
/// Loading, caching and refreshing the configuration from S3.
mod config_refresh;
/// Deletes that follow the source, per org and opt-in: the safety rules, `check`, the shapes.
mod deletes;
/// The deployment template: cfn-lint, parameters, least-privilege IAM, triggers, alarms.
mod deploy;
/// The docs' links: every relative link and anchor resolves, every docs/ page is in the book.
mod docs;
/// Event fixtures (AWS's sample shapes) → parsed records; no server needed.
mod event_shapes;
/// Routing and single-request copies end to end: suffixes, orgs, keys, metadata, tags.
mod export;
/// Retries and failures, with faults injected by a proxy in front of the server.
mod faults;
/// What an export keeps: every property of an object, through every way it is copied, on
/// Garage, moto and LocalStack; Object Lock and the org's `objectLock`.
mod fidelity;
/// S3 Inventory deliveries read into key order: shuffled files, encoded keys, spills, bad inputs.
mod inventory;
/// Through the real Lambda Runtime API: cargo-lambda's emulator, the binary as the function
/// process, `cargo lambda invoke` with S3, SQS and Batch Operations events.
mod lambda_e2e;
/// The import direction of host/src (`tests/layers.py`): nothing reaches backwards.
mod layers;
/// Local mode (ENV=local): folders for destinations and source, traversal, crash safety.
mod local_mode;
/// Multipart copies above a lowered threshold.
mod multipart;
/// What operators see per record: export lag (`lagMs`) and failure reason codes.
mod observability;
/// Late, duplicated and out-of-order events: nothing goes back to an older version.
mod ordering;
/// The org documents form of the configuration: per-org admission, refresh by ETag.
mod org_documents;
/// What a plugin author starts with: `plugin wit`, `plugin new` projects built and run in
/// each language, `plugin test --cases` budgets and `--json`.
mod plugin_authors;
/// Per-org WebAssembly plugins: rewrite, filter, hostile guests, loading and pinning, plugins
/// in S3, the plugin commands.
mod plugins;
/// Property-based tests (proptest) of the input parsers: events, configs, keys, ARNs.
mod properties;
/// `reconcile`: every class per org, repairs, pending, the missing manifest, extras.
mod reconcile;
/// Cross-account roles: which credentials made the copy, a role that cannot be assumed or
/// is unknown to the server fails only its org, within a bound.
mod roles;
/// SQS-triggered invocations and their partial batch response.
mod sqs;
/// Per-org write options and integrity: storage class, encryption, ACL, expected bucket
/// owners, verified checksums (single and multipart copies).
mod write_options;
