//! `artifact-export reconcile`: every class counted per org (a plugin's rewritten keys and
//! an org with a role included), the gaps repaired, pending within the grace period, the
//! missing manifest, and extras counted but never deleted.

use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Value, json};

use crate::support::paths::binary;
use crate::support::servers::{Server, moto};
use crate::support::world::World;

const ROLE: &str = "arn:aws:iam::123456789012:role/tenants/artifact-writer";

/// org1 plain; org2 with key-rewriter moving `org2/` to `org2/exports/` (rewritten keys stay
/// under the org's prefix, where a reconcile looks for extras).
async fn reconcile_world(server: &'static Server) -> World {
    let plugin = json!({
        "source": plugin_artifacts::KEY_REWRITER,
        "timeoutMs": 5000,
        "settings": {"replacePrefix": {"from": "org2/", "to": "org2/exports/"}}
    });
    World::with_config(server, &["org1", "org2"], |orgs| {
        json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org2", "destinationBucket": orgs[1].1, "plugin": plugin}
        ], "retry": 0})
        .to_string()
    })
    .await
}

fn command(world: &World, endpoint: &str, name: &str, args: &[&str]) -> Command {
    let mut cmd = binary();
    cmd.envs(world.function_env("jpg"))
        .env("AWS_ENDPOINT_URL", endpoint)
        .args([name, "--bucket", &world.source, "--progress-interval", "0"])
        .args(args);
    cmd
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(mut cmd: Command) -> Run {
    let out = cmd.output().expect("run artifact-export");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `reconcile --json`: the exit code and the document.
fn reconcile_json(world: &World, endpoint: &str, args: &[&str]) -> (Option<i32>, Value, String) {
    let out = run(command(
        world,
        endpoint,
        "reconcile",
        &[&["--json"], args].concat(),
    ));
    let document = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr));
    (out.code, document, out.stderr)
}

/// One org's entry of a `--json` document.
fn org<'a>(document: &'a Value, name: &str) -> &'a Value {
    document["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["org"] == name)
        .unwrap_or_else(|| panic!("no org {name} in {document}"))
}

fn counts(entry: &Value) -> [u64; 6] {
    ["in_place", "missing", "differs", "pending", "skipped", "extra"]
        .map(|class| entry[class].as_u64().unwrap())
}

async fn put_dest(world: &World, bucket: &str, key: &str, body: &'static [u8]) {
    world
        .client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap();
}

/// Exported once, then broken in every way: each class is counted for its org, the manifest
/// lists exactly the gaps, `--repair` closes them, and the next reconcile exits 0 with the
/// extra object still there.
async fn every_class_is_counted_and_repair_closes_the_gaps(server: &'static Server) {
    let world = reconcile_world(server).await;
    for key in [
        "org1/a.jpg",
        "org1/b b+.jpg",
        "org1/c é.jpg",
        "org1/d.txt",
        "org2/x.jpg",
        "org2/y.jpg",
    ] {
        world.put(key, format!("first {key}").as_bytes()).await;
    }
    let filled = run(command(&world, &server.endpoint, "backfill", &[]));
    assert_eq!(filled.code, Some(0), "{}", filled.stderr);
    let (dest1, dest2) = (
        world.bucket_of("org1").to_string(),
        world.bucket_of("org2").to_string(),
    );
    // A complete export reconciles with exit 0.
    let (code, document, stderr) = reconcile_json(&world, &server.endpoint, &["--grace-minutes", "0"]);
    assert_eq!(code, Some(0), "{document}\n{stderr}");
    assert_eq!(document["complete"], true);
    assert_eq!(
        counts(org(&document, "org1")),
        [2 + 1, 0, 0, 0, 1, 0],
        "{document}"
    );
    assert_eq!(counts(org(&document, "org2")), [2, 0, 0, 0, 0, 0], "{document}");

    // Gaps: one deleted, one overwritten with other bytes (same key), one never exported,
    // one rewritten target deleted; and an object no source maps to.
    world
        .client
        .delete_object()
        .bucket(&dest1)
        .key("org1/b b+.jpg")
        .send()
        .await
        .unwrap();
    put_dest(&world, &dest1, "org1/c é.jpg", b"other bytes, other size").await;
    world.put("org1/new.jpg", b"never exported").await;
    world
        .client
        .delete_object()
        .bucket(&dest2)
        .key("org2/exports/y.jpg")
        .send()
        .await
        .unwrap();
    put_dest(&world, &dest1, "org1/zz-extra.jpg", b"no source").await;

    // Within the grace period every gap is pending: not yet a gap, exit 0.
    let (code, document, stderr) = reconcile_json(&world, &server.endpoint, &[]);
    assert_eq!(counts(org(&document, "org1")), [1, 0, 0, 3, 1, 1], "{document}");
    assert_eq!(counts(org(&document, "org2")), [1, 0, 0, 1, 0, 0], "{document}");
    assert_eq!(code, Some(0), "{document}\n{stderr}");

    let manifest = tempfile::tempdir().unwrap();
    let manifest_path = manifest.path().join("missing.csv");
    let (code, document, stderr) = reconcile_json(
        &world,
        &server.endpoint,
        &[
            "--grace-minutes",
            "0",
            "--missing-manifest",
            manifest_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{document}\n{stderr}");
    assert_eq!(document["complete"], false);
    let org1 = org(&document, "org1");
    assert_eq!(counts(org1), [1, 2, 1, 0, 1, 1], "{document}");
    assert_eq!(org1["examples"]["differs"], json!(["org1/c é.jpg"]));
    assert_eq!(org1["examples"]["extra"], json!(["org1/zz-extra.jpg"]));
    let mut missing: Vec<String> = serde_json::from_value(org1["examples"]["missing"].clone()).unwrap();
    missing.sort();
    assert_eq!(missing, ["org1/b b+.jpg", "org1/new.jpg"]);
    // The rewritten target that is there is not an extra; the deleted one is missing.
    let org2 = org(&document, "org2");
    assert_eq!(counts(org2), [1, 1, 0, 0, 0, 0], "{document}");
    assert_eq!(org2["examples"]["missing"], json!(["org2/y.jpg"]));
    let mut rows: Vec<String> = std::fs::read_to_string(&manifest_path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    rows.sort();
    let source = &world.source;
    assert_eq!(
        rows,
        [
            format!("{source},org1/b%20b%2B.jpg"),
            format!("{source},org1/c%20%C3%A9.jpg"),
            format!("{source},org1/new.jpg"),
            format!("{source},org2/y.jpg"),
        ]
    );

    // The lines: one per org and a total.
    let lines = run(command(
        &world,
        &server.endpoint,
        "reconcile",
        &["--grace-minutes", "0"],
    ));
    assert_eq!(lines.code, Some(1));
    assert!(
        lines
            .stdout
            .contains("org1: 1 in place, 2 missing, 1 differs, 0 pending, 1 skipped, 1 extra"),
        "{}",
        lines.stdout
    );
    assert!(
        lines
            .stdout
            .contains("total: 2 in place, 3 missing, 1 differs, 0 pending, 1 skipped, 1 extra"),
        "{}",
        lines.stdout
    );

    let repaired = run(command(
        &world,
        &server.endpoint,
        "reconcile",
        &["--grace-minutes", "0", "--repair"],
    ));
    assert_eq!(repaired.code, Some(0), "{}\n{}", repaired.stdout, repaired.stderr);
    assert!(
        repaired.stdout.contains("repaired 3, repair failed 0"),
        "{}",
        repaired.stdout
    );
    assert_eq!(
        world.get(&dest1, "org1/c é.jpg").await.as_deref(),
        Some(&b"first org1/c \xc3\xa9.jpg"[..])
    );
    let (code, document, stderr) = reconcile_json(&world, &server.endpoint, &["--grace-minutes", "0"]);
    assert_eq!(code, Some(0), "{document}\n{stderr}");
    assert_eq!(document["complete"], true);
    assert_eq!(counts(org(&document, "org1")), [4, 0, 0, 0, 1, 1], "{document}");
    assert_eq!(counts(org(&document, "org2")), [2, 0, 0, 0, 0, 0], "{document}");
    assert!(
        world.get(&dest1, "org1/zz-extra.jpg").await.is_some(),
        "extras are never deleted"
    );
}

/// `--org` limits the account (and its lines) to the orgs named; an org none of whose
/// objects exist still gets its line, with its destination's objects as extras; a bad
/// `--org` is bad input.
async fn orgs_are_selected_and_an_empty_org_still_has_its_line(server: &'static Server) {
    let world = World::new(server, &["org1", "org2"]).await;
    world.put("org1/a.jpg", b"a").await;
    put_dest(&world, world.bucket_of("org2"), "org2/left-over.jpg", b"x").await;
    let (code, document, stderr) = reconcile_json(
        &world,
        &server.endpoint,
        &["--grace-minutes", "0", "--org", "org2"],
    );
    assert_eq!(code, Some(0), "{document}\n{stderr}");
    let orgs = document["orgs"].as_array().unwrap();
    assert_eq!(orgs.len(), 1, "{document}");
    assert_eq!(counts(&orgs[0]), [0, 0, 0, 0, 0, 1], "{document}");
    let bad = run(command(&world, &server.endpoint, "reconcile", &["--org", "org9"]));
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("--org org9"), "{}", bad.stderr);
}

on_each_server!(
    every_class_is_counted_and_repair_closes_the_gaps,
    orgs_are_selected_and_an_empty_org_still_has_its_line,
);

/// An org with a `roleArn` is reconciled as its role: its destination listed and its
/// targets checked with the role's credentials (moto: STS), its extras found, its gaps
/// repaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_with_a_role_is_reconciled_as_the_role() {
    let server = moto();
    let world = World::with_config(server, &["org1", "org2"], |orgs| {
        json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1, "roleArn": ROLE, "externalId": "tenant-1"},
            {"org": "org2", "destinationBucket": orgs[1].1},
        ], "retry": 0})
        .to_string()
    })
    .await;
    world.put("org1/a.jpg", b"a").await;
    world.put("org1/b.jpg", b"b").await;
    let dest1 = world.bucket_of("org1").to_string();
    put_dest(&world, &dest1, "org1/a.jpg", b"a").await;
    put_dest(&world, &dest1, "org1/extra.jpg", b"e").await;
    let with_sts = |mut cmd: Command| {
        cmd.env("AWS_ENDPOINT_URL_STS", &server.endpoint);
        cmd
    };
    let out = run(with_sts(command(
        &world,
        &server.endpoint,
        "reconcile",
        &["--grace-minutes", "0", "--json"],
    )));
    let document: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stderr));
    assert_eq!(out.code, Some(1), "{document}\n{}", out.stderr);
    assert_eq!(counts(org(&document, "org1")), [1, 1, 0, 0, 0, 1], "{document}");
    let repaired = run(with_sts(command(
        &world,
        &server.endpoint,
        "reconcile",
        &["--grace-minutes", "0", "--repair"],
    )));
    assert_eq!(repaired.code, Some(0), "{}\n{}", repaired.stdout, repaired.stderr);
    assert_eq!(world.get(&dest1, "org1/b.jpg").await.as_deref(), Some(&b"b"[..]));
}

/// An SQS client of `server` (moto), signing with the server's test credentials.
fn sqs_client(server: &'static Server) -> aws_sdk_sqs::Client {
    let env: std::collections::HashMap<String, String> = server.child_env().into_iter().collect();
    let credentials = aws_credential_types::Credentials::new(
        &env["AWS_ACCESS_KEY_ID"],
        &env["AWS_SECRET_ACCESS_KEY"],
        None,
        None,
        "reconcile-test",
    );
    let conf = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .endpoint_url(&server.endpoint)
        .credentials_provider(credentials)
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

/// `--repair-via-queue`: one S3-notification message per gap, grouped by org, which the
/// function, invoked on the messages as SQS would, reads like S3's own and repairs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_sent_to_the_queue_are_repaired_by_the_function() {
    use artifact_export::event::parse_event;
    use artifact_export::handler::handle;
    use aws_sdk_sqs::types::MessageSystemAttributeName;

    let server = moto();
    let world = World::new(server, &["org1", "org2"]).await;
    world.put("org1/a b+é.jpg", b"a").await;
    world.put("org2/b.jpg", b"b").await;
    let sqs = sqs_client(server);
    let queue = sqs
        .create_queue()
        .queue_name(crate::support::world::unique_bucket("repairs"))
        .send()
        .await
        .unwrap();
    let url = queue.queue_url().unwrap().to_string();

    let out = run(command(
        &world,
        &server.endpoint,
        "reconcile",
        &["--grace-minutes", "0", "--repair-via-queue", &url],
    ));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("repair queue: 2 messages sent, 0 not sent"),
        "{}",
        out.stderr
    );
    assert!(
        world.keys(world.bucket_of("org1")).await.is_empty(),
        "nothing copied by reconcile itself"
    );

    let received = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let messages = received.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    let mut groups: Vec<&str> = messages
        .iter()
        .map(|m| {
            m.attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                .map(String::as_str)
                .unwrap_or_else(|| panic!("no MessageGroupId on {m:?}"))
        })
        .collect();
    groups.sort();
    assert_eq!(groups, ["org1", "org2"]);
    let bodies: Vec<(&str, Value)> = messages
        .iter()
        .map(|m| {
            (
                m.message_id().unwrap(),
                serde_json::from_str(m.body().unwrap()).unwrap(),
            )
        })
        .collect();
    let event = crate::support::events::sqs_event(&bodies);
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&event).unwrap(),
    )
    .await;
    assert!(!report.must_fail_invocation(), "{report:?}");
    assert_eq!(world.keys(world.bucket_of("org1")).await, ["org1/a b+é.jpg"]);
    assert_eq!(world.keys(world.bucket_of("org2")).await, ["org2/b.jpg"]);
    let (code, document, stderr) = reconcile_json(&world, &server.endpoint, &["--grace-minutes", "0"]);
    assert_eq!(code, Some(0), "{document}\n{stderr}");
}

/// The EMF lines of a scheduled run, by their `Org` dimension (`None`: all orgs).
fn emf_by_org(lines: &[String]) -> Vec<(Option<String>, Value)> {
    lines
        .iter()
        .map(|line| {
            let line: Value = serde_json::from_str(line).unwrap();
            (line["Org"].as_str().map(str::to_string), line)
        })
        .collect()
}

/// The function's scheduled reconcile (`{"reconcile": …}`): the account as its answer, and
/// `ExportsMissing` / `ExportsDiffering` / `ExportsPending` per org and over all orgs; a
/// deadline that comes first ends it `ReconcileIncomplete`, never complete.
async fn a_scheduled_reconcile_publishes_its_account_and_never_a_partial_complete(server: &'static Server) {
    use artifact_export::backfill::scheduled::{request_of, run_scheduled};

    let world = World::new(server, &["org1", "org2"]).await;
    for i in 0..5 {
        world.put(&format!("org1/{i}.jpg"), b"never exported").await;
    }
    world.put("org2/new.jpg", b"just now").await;
    let exporter = world.exporter(world.settings("jpg"));
    let request = |grace: u64| {
        request_of(&json!({"reconcile": {"bucket": world.source, "graceMinutes": grace}}).to_string())
            .unwrap()
            .unwrap()
    };
    let outcome = run_scheduled(&exporter, &request(0), None).await.unwrap();
    assert_eq!(outcome.incomplete, None);
    assert!(!outcome.complete());
    assert_eq!(outcome.answer()["complete"], false);
    let lines = emf_by_org(&outcome.emf_lines(1));
    let all = &lines.iter().find(|(org, _)| org.is_none()).unwrap().1;
    assert_eq!(
        (
            all["ExportsMissing"].as_u64(),
            all["ReconcileIncomplete"].as_u64()
        ),
        (Some(6), Some(0))
    );
    let org1 = &lines
        .iter()
        .find(|(org, _)| org.as_deref() == Some("org1"))
        .unwrap()
        .1;
    assert_eq!(org1["ExportsMissing"], 5);
    assert_eq!(
        org1["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Org"]])
    );

    // Within the grace period: pending, not missing.
    let outcome = run_scheduled(&exporter, &request(15), None).await.unwrap();
    let lines = emf_by_org(&outcome.emf_lines(1));
    let org2 = &lines
        .iter()
        .find(|(org, _)| org.as_deref() == Some("org2"))
        .unwrap()
        .1;
    assert_eq!(
        (org2["ExportsMissing"].as_u64(), org2["ExportsPending"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(outcome.complete(), "{}", outcome.answer());

    // The deadline has come: stopped, said so, not complete.
    let outcome = run_scheduled(&exporter, &request(15), Some(std::time::Instant::now()))
        .await
        .unwrap();
    let why = outcome.incomplete.clone().expect("incomplete");
    assert!(why.contains("deadline"), "{why}");
    assert!(!outcome.complete());
    assert_eq!(outcome.answer()["complete"], false);
    let lines = emf_by_org(&outcome.emf_lines(1));
    let all = &lines.iter().find(|(org, _)| org.is_none()).unwrap().1;
    assert_eq!(all["ReconcileIncomplete"], 1);
}

on_each_server!(a_scheduled_reconcile_publishes_its_account_and_never_a_partial_complete);

/// `--source-inventory` and `--destination-inventory`: the same classes from S3 Inventory
/// deliveries (rows shuffled over files, keys encoded), the grace period counted back from
/// the inventory's time; an org without an inventory is listed; a bad manifest is bad input
/// named in one line.
async fn reconciles_from_inventories(server: &'static Server) {
    use crate::support::inventory::{CREATED_MILLIS, md5_hex, write_inventory_of};
    use aws_smithy_types::DateTime;

    let world = World::new(server, &["org1", "org2"]).await;
    let at = |ago_secs: i64| DateTime::from_millis(CREATED_MILLIS - ago_secs * 1000);
    let etag = |text: &str| md5_hex(text.as_bytes());
    let day = 86_400;
    let object = |key: &str, size: u64, tag: &str, ago: i64| (key.to_string(), size, etag(tag), at(ago));
    let source = [
        object("org1/a.jpg", 1, "a", day),
        object("org1/b b+é.jpg", 2, "b", day),
        object("org1/c.jpg", 3, "c", day),
        object("org1/d.txt", 4, "d", day),
        object("org1/new.jpg", 5, "new", 300),
        ("org2/x.jpg".to_string(), 1, etag("x"), at(day)),
    ];
    let dest1 = world.bucket_of("org1").to_string();
    let org1_holds = [
        object("org1/a.jpg", 1, "a", day - 1),
        object("org1/c.jpg", 4, "other c", day - 1),
        object("org1/zz-extra.jpg", 1, "z", day - 1),
    ];
    // org2 has no inventory: its bucket is listed, and holds x.
    put_dest(&world, world.bucket_of("org2"), "org2/x.jpg", b"x").await;
    let source_url = write_inventory_of(
        &world.client,
        &world.source,
        "inventories/src/",
        &world.source,
        &source,
        3,
        7,
    )
    .await;
    let dest_url = write_inventory_of(
        &world.client,
        &world.source,
        "inventories/org1/",
        &dest1,
        &org1_holds,
        2,
        9,
    )
    .await;

    let (code, document, stderr) = reconcile_json(
        &world,
        &server.endpoint,
        &[
            "--source-inventory",
            &source_url,
            "--destination-inventory",
            &format!("org1={dest_url}"),
        ],
    );
    assert_eq!(code, Some(1), "{document}\n{stderr}");
    let org1 = org(&document, "org1");
    assert_eq!(counts(org1), [1, 1, 1, 1, 1, 1], "{document}");
    assert_eq!(org1["examples"]["missing"], json!(["org1/b b+é.jpg"]));
    assert_eq!(org1["examples"]["differs"], json!(["org1/c.jpg"]));
    assert_eq!(org1["examples"]["extra"], json!(["org1/zz-extra.jpg"]));
    assert_eq!(counts(org(&document, "org2")), [1, 0, 0, 0, 0, 0], "{document}");

    let missing = format!("s3://{}/inventories/none/manifest.json", world.source);
    let bad = run(command(
        &world,
        &server.endpoint,
        "reconcile",
        &["--source-inventory", &missing],
    ));
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    let line = bad
        .stderr
        .lines()
        .find(|l| l.contains("manifest.json"))
        .unwrap_or_default();
    assert!(line.contains(&missing), "{}", bad.stderr);
    let wrong = run(command(
        &world,
        &server.endpoint,
        "reconcile",
        &["--destination-inventory", "org1"],
    ));
    assert_eq!(wrong.code, Some(2), "{}", wrong.stderr);
    assert!(wrong.stderr.contains("ORG=s3://"), "{}", wrong.stderr);
}

on_each_server!(reconciles_from_inventories);
