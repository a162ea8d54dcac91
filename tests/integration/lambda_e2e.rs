//! End to end through the real Lambda Runtime API: cargo-lambda's emulator of the Lambda
//! control plane (`cargo lambda watch --only-lambda-apis`), the built `artifact-export`
//! binary as the function process (Lambda mode: `AWS_LAMBDA_RUNTIME_API` set, no
//! arguments), and `cargo lambda invoke` sending an S3 notification, an SQS batch, S3 Batch
//! Operations jobs (schemas 2.0 and 1.0) and an S3 notification that must fail the
//! invocation, all to one warm function process. The responses are checked as the caller
//! sees them and the objects on the real server.
//!
//! Needs cargo-lambda (`make tools`); without it the test fails saying so.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::plugins;
use crate::support::events::{encode_key, fixture, s3_event, sqs_event};
use crate::support::lambda::{Emulator, clean_command};
use crate::support::servers::Server;
use crate::support::world::{World, unique_bucket};

/// One invocation's ceiling; each takes well under a second.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);

/// The function process, polling the emulator's Runtime API; killed on drop.
struct Function {
    child: Child,
    dir: tempfile::TempDir,
}

impl Function {
    fn start(emulator: &Emulator, world: &World) -> Function {
        let dir = tempfile::tempdir().expect("temp dir for the function's output");
        let file = |name: &str| std::fs::File::create(dir.path().join(name)).expect("function output file");
        let child = clean_command(Path::new(env!("CARGO_BIN_EXE_artifact-export")))
            .envs(emulator.function_env())
            .envs(world.function_env("jpg,pdf"))
            .env("RETRY_BASE_DELAY_MS", "5")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file("stdout"))
            .stderr(file("stderr"))
            .spawn()
            .expect("start the function process");
        Function { child, dir }
    }

    fn output(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Panics with the function's log when it is no longer running.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("poll the function") {
            panic!(
                "the function process exited ({status}); its log:\n{}",
                self.output("stderr")
            );
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sorted_keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

fn outcomes(response: &Value) -> Vec<&str> {
    response["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records[]: {response}"))
        .iter()
        .map(|r| r["outcome"].as_str().expect("outcome"))
        .collect()
}

fn batch_task(id: &str, bucket: &str, key: &str, schema: &str) -> Value {
    if schema == "1.0" {
        json!({"taskId": id, "s3Key": encode_key(key), "s3VersionId": null, "s3BucketArn": format!("arn:aws:s3:::{bucket}")})
    } else {
        json!({"taskId": id, "s3Key": encode_key(key), "s3VersionId": null, "s3Bucket": bucket})
    }
}

fn batch_job(schema: &str, invocation_id: &str, user_arguments: Option<Value>, tasks: Vec<Value>) -> Value {
    let mut job = json!({"id": format!("job-{invocation_id}")});
    if let Some(args) = user_arguments {
        job["userArguments"] = args;
    }
    json!({"invocationSchemaVersion": schema, "invocationId": invocation_id, "job": job, "tasks": tasks})
}

fn result_code<'a>(response: &'a Value, task: &str) -> (&'a str, &'a str) {
    let result = response["results"]
        .as_array()
        .expect("results[]")
        .iter()
        .find(|r| r["taskId"] == task)
        .unwrap_or_else(|| panic!("no result for {task}: {response}"));
    (
        result["resultCode"].as_str().expect("resultCode"),
        result["resultString"].as_str().expect("resultString"),
    )
}

async fn events_through_the_runtime_api(server: &'static Server) {
    // org1 and org2 export; org3's destination bucket does not exist, so its records fail.
    let missing_bucket = unique_bucket("absent");
    let world = World::with_config(server, &["org1", "org2"], |orgs| {
        json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org2", "destinationBucket": orgs[1].1},
            {"org": "org3", "destinationBucket": missing_bucket}
        ], "retry": 0})
        .to_string()
    })
    .await;
    let (org1, org2) = (
        world.bucket_of("org1").to_string(),
        world.bucket_of("org2").to_string(),
    );
    let s3_a = world.put("org1/e2e/a b+c é.jpg", b"org1 via s3").await;
    let s3_b = world.put("org2/e2e/report.pdf", b"org2 via s3").await;
    let s3_txt = world.put("org1/e2e/notes.txt", b"not exported").await;
    let sqs_a = world.put("org1/sqs/one.jpg", b"org1 via sqs").await;
    let sqs_b = world.put("org2/sqs/two.pdf", b"org2 via sqs").await;
    let broken = world.put("org3/sqs/broken.jpg", b"no destination").await;
    world.put("org1/batch/v2.jpg", b"org1 via batch 2.0").await;
    world.put("org2/batch/readme.txt", b"not exported").await;
    world.put("org9/batch/orphan.jpg", b"no org").await;
    world.put("org2/batch/v1.pdf", b"org2 via batch 1.0").await;
    let fail_ok = world.put("org1/fail/ok.jpg", b"attempted anyway").await;

    let emulator = tokio::task::block_in_place(Emulator::start);
    let mut function = Function::start(&emulator, &world);
    let mut invoke = |event: Value| {
        tokio::task::block_in_place(|| {
            emulator
                .start_invoke(&event)
                .finish(INVOKE_TIMEOUT, || function.assert_running())
        })
    };

    // 1. An S3 notification with several records for two orgs.
    let s3 = invoke(s3_event(&[&s3_a, &s3_b, &s3_txt]));
    let response = s3.ok();
    assert_eq!(response["trigger"], "s3", "{response}");
    assert_eq!(outcomes(response), ["copied", "copied", "skipped"], "{response}");
    assert_eq!(
        response["totals"],
        json!({"records": 3, "copied": 2, "skipped": 1, "superseded": 0, "failed": 0, "bytesCopied": 22}),
    );
    assert_eq!(response["records"][0]["key"], "org1/e2e/a b+c é.jpg");
    assert_eq!(response["records"][0]["destinationBucket"], org1.as_str());
    assert_eq!(response["records"][1]["destinationBucket"], org2.as_str());
    assert!(
        response.get("batchItemFailures").is_none(),
        "a direct S3 invocation has no batch response: {response}"
    );
    assert_eq!(
        world.get(&org1, "org1/e2e/a b+c é.jpg").await.as_deref(),
        Some(&b"org1 via s3"[..])
    );
    assert_eq!(
        world.get(&org2, "org2/e2e/report.pdf").await.as_deref(),
        Some(&b"org2 via s3"[..])
    );
    assert_eq!(world.get(&org1, "org1/e2e/notes.txt").await, None);

    // 2. An SQS batch: the partial batch response names only the message with a failure.
    let sqs = invoke(sqs_event(&[
        ("msg-ok", s3_event(&[&sqs_a])),
        ("msg-mixed", s3_event(&[&sqs_b, &broken])),
        ("msg-test", fixture("s3-test-event.json")),
    ]));
    let response = sqs.ok();
    assert_eq!(response["trigger"], "sqs", "{response}");
    assert_eq!(
        response["batchItemFailures"],
        json!([{"itemIdentifier": "msg-mixed"}]),
        "{response}"
    );
    assert_eq!(
        outcomes(response),
        ["copied", "copied", "failed", "skipped"],
        "{response}"
    );
    assert_eq!(response["records"][2]["key"], "org3/sqs/broken.jpg");
    assert_eq!(
        world.get(&org1, "org1/sqs/one.jpg").await.as_deref(),
        Some(&b"org1 via sqs"[..])
    );
    assert_eq!(
        world.get(&org2, "org2/sqs/two.pdf").await.as_deref(),
        Some(&b"org2 via sqs"[..])
    );

    // 3. S3 Batch Operations, schema 2.0: exactly the response shape S3 reads.
    let v2 = invoke(batch_job(
        "2.0",
        "inv-e2e-2",
        Some(json!({"treatMissingKeysAs": "Succeeded"})),
        vec![
            batch_task("t-copy", &world.source, "org1/batch/v2.jpg", "2.0"),
            batch_task("t-skip", &world.source, "org2/batch/readme.txt", "2.0"),
            batch_task("t-missing", &world.source, "org1/batch/never-uploaded.jpg", "2.0"),
            batch_task("t-no-org", &world.source, "org9/batch/orphan.jpg", "2.0"),
        ],
    ));
    let response = v2.ok();
    assert_batch_response(response, "2.0", "inv-e2e-2", "Succeeded");
    let results = response["results"].as_array().expect("results[]");
    assert_eq!(results.len(), 4, "{response}");
    for result in results {
        assert_eq!(sorted_keys(result), ["resultCode", "resultString", "taskId"]);
    }
    let (code, text) = result_code(response, "t-copy");
    assert_eq!(code, "Succeeded", "{text}");
    assert!(text.starts_with(&format!("copied to s3://{org1}/")), "{text}");
    assert_eq!(result_code(response, "t-skip").0, "Succeeded");
    assert_eq!(result_code(response, "t-missing").0, "Succeeded");
    assert_eq!(
        result_code(response, "t-no-org"),
        ("PermanentFailure", "no org's prefix matches the key")
    );
    assert_eq!(
        world.get(&org1, "org1/batch/v2.jpg").await.as_deref(),
        Some(&b"org1 via batch 2.0"[..])
    );
    assert_eq!(world.get(&org2, "org2/batch/readme.txt").await, None);

    // 4. Schema 1.0 (s3BucketArn, no user arguments): missing keys default to PermanentFailure.
    let v1 = invoke(batch_job(
        "1.0",
        "inv-e2e-1",
        None,
        vec![batch_task("t-v1", &world.source, "org2/batch/v1.pdf", "1.0")],
    ));
    let response = v1.ok();
    assert_batch_response(response, "1.0", "inv-e2e-1", "PermanentFailure");
    assert_eq!(result_code(response, "t-v1").0, "Succeeded", "{response}");
    assert_eq!(
        world.get(&org2, "org2/batch/v1.pdf").await.as_deref(),
        Some(&b"org2 via batch 1.0"[..])
    );

    // 5. A direct S3 notification with a failed record fails the invocation (so Lambda
    //    retries it), after every other record was attempted.
    let failed = invoke(s3_event(&[&fail_ok, &broken]));
    assert!(
        !failed.status.success() && failed.response.is_none(),
        "the invocation should have failed: {failed:?}"
    );
    assert!(
        failed.stderr.contains("1 of 2 records failed")
            && failed.stderr.contains("org3/sqs/broken.jpg")
            && failed.stderr.contains("RecordsFailed"),
        "the caller should see the function's error: {}",
        failed.stderr
    );
    assert_eq!(
        world.get(&org1, "org1/fail/ok.jpg").await.as_deref(),
        Some(&b"attempted anyway"[..])
    );

    // One warm process served everything, and printed its metrics (EMF) on stdout.
    function.assert_running();
    let emf_lines = function
        .output("stdout")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .count();
    assert!(
        emf_lines >= 5,
        "expected EMF lines for 5 invocations, got {emf_lines}:\n{}",
        function.output("stdout")
    );
    let emulator_log = emulator.log();
    assert!(
        emulator_log.contains("only_lambda_apis"),
        "the emulator must not build or start the function itself: {emulator_log}"
    );
    // The function process is stopped before the emulator (drop order).
    drop(function);
}

/// With org documents, the running function publishes `ConfigRejected` for the org whose
/// document it refused, and still exports every other org's objects.
async fn a_refused_org_document_is_published_as_config_rejected(server: &'static Server) {
    let mut world = World::new(server, &["org1", "org2"]).await;
    world.config_key = "export/orgs/".into();
    let org1 = world.bucket_of("org1").to_string();
    world
        .put_config_object(
            "export/orgs/org1.json",
            json!({"org": "org1", "destinationBucket": org1})
                .to_string()
                .into_bytes(),
        )
        .await;
    world
        .put_config_object(
            "export/orgs/org2.json",
            br#"{"org": "org2", "destinationBuckt": "x"}"#.to_vec(),
        )
        .await;
    let a = world.put("org1/a.jpg", b"org1 exports").await;
    let emulator = tokio::task::block_in_place(Emulator::start);
    let mut function = Function::start(&emulator, &world);
    let answer = tokio::task::block_in_place(|| {
        emulator
            .start_invoke(&s3_event(&[&a]))
            .finish(INVOKE_TIMEOUT, || function.assert_running())
    });
    assert_eq!(outcomes(answer.ok()), ["copied"]);
    let rejected: Vec<Value> = function
        .output("stdout")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("ConfigRejected").is_some())
        .collect();
    assert_eq!(rejected.len(), 1, "{}", function.output("stdout"));
    assert_eq!(
        (
            rejected[0]["Org"].as_str(),
            rejected[0]["ConfigRejected"].as_u64()
        ),
        (Some("org2"), Some(1))
    );
    assert!(
        function.output("stderr").contains("org document refused")
            || function.output("stdout").contains("org document refused")
    );
    drop(function);
}

/// The function's JSON log lines replay as its response does: `plugin diff --reports` over
/// a real function process's stderr (its record lines among its other lines) and over its
/// response asks the same questions and finds the same difference.
async fn the_function_s_log_lines_replay_as_its_response(server: &'static Server) {
    let plugin = json!({"source": plugin_artifacts::GLOB_FILTER, "timeoutMs": 5000,
                        "settings": {"include": ["**/*.jpg"]}});
    let world = World::with_config(server, &["org2"], |orgs| {
        json!({"customers": [{"org": "org2", "destinationBucket": orgs[0].1, "plugin": plugin}],
               "retry": 0})
        .to_string()
    })
    .await;
    let uploads = [
        world.put("org2/lines/a.jpg", b"jpg").await,
        world.put("org2/lines/b.pdf", b"pdf").await,
        world.put("org2/lines/c.txt", b"txt").await,
        world.put("nobody/lines/d.jpg", b"no org").await,
    ];
    let emulator = tokio::task::block_in_place(Emulator::start);
    let mut function = Function::start(&emulator, &world);
    let answer = tokio::task::block_in_place(|| {
        emulator
            .start_invoke(&s3_event(&uploads.iter().collect::<Vec<_>>()))
            .finish(INVOKE_TIMEOUT, || function.assert_running())
    });
    let response = answer.ok().clone();
    assert_eq!(outcomes(&response), ["copied", "skipped", "skipped", "skipped"]);
    let log = function.output("stderr");
    drop(function);
    let dir = tempfile::tempdir().unwrap();
    let (lines, report) = (dir.path().join("log.jsonl"), dir.path().join("response.json"));
    std::fs::write(&lines, &log).unwrap();
    std::fs::write(&report, response.to_string()).unwrap();
    let record_lines = log
        .lines()
        .filter(|l| l.contains(r#""message":"record""#))
        .count();
    assert!(record_lines >= 4 && log.lines().count() > record_lines, "{log}");
    let mut seen = Vec::new();
    for file in [&lines, &report] {
        let (code, stdout, stderr) = plugins::replay::diff_reports(file, plugins::replay::NEW, &["--json"]);
        assert_eq!(code, Some(1), "{}: {stdout}{stderr}", file.display());
        let doc: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(
            (&doc["compared"], &doc["differing"], &doc["leftOut"]),
            (&json!(3), &json!(1), &json!(1)),
            "{doc}"
        );
        assert_eq!(doc["differences"][0]["key"], "org2/lines/b.pdf");
        seen.push(doc["differences"].clone());
    }
    // The same decisions from both forms; only the labels differ (a line, a record).
    for differences in &mut seen {
        differences[0]["input"] = Value::Null;
    }
    assert_eq!(seen[0], seen[1]);
}

on_each_server!(
    events_through_the_runtime_api,
    a_refused_org_document_is_published_as_config_rejected,
    the_function_s_log_lines_replay_as_its_response
);

/// A Batch Operations response has exactly its four fields, echoing the invocation.
fn assert_batch_response(response: &Value, schema: &str, invocation: &str, treat_missing: &str) {
    assert_eq!(
        sorted_keys(response),
        [
            "invocationId",
            "invocationSchemaVersion",
            "results",
            "treatMissingKeysAs"
        ],
        "{response}"
    );
    assert_eq!(response["invocationSchemaVersion"], schema);
    assert_eq!(response["invocationId"], invocation);
    assert_eq!(response["treatMissingKeysAs"], treat_missing);
}
