use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::support::events::{fixture_path, s3_event};
use crate::support::paths::{binary, repo};
use crate::support::proxy::{Fault, FaultProxy, Rule};
use crate::support::servers::garage;
use crate::support::world::World;

fn write_event(dir: &Path, event: &Value) -> PathBuf {
    let path = dir.join("event.json");
    std::fs::write(&path, event.to_string()).unwrap();
    path
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_copies_and_prints_the_report() {
    let server = garage();
    let world = World::new(server, &["org1"]).await;
    let a = world.put("org1/cli a.jpg", b"cli").await;
    let skipped = world.put("org1/notes.txt", b"txt").await;
    let dir = tempfile::tempdir().unwrap();
    let event = write_event(dir.path(), &s3_event(&[&a, &skipped]));
    let mut cmd = binary();
    cmd.envs(world.function_env("jpg"));
    let out = cmd.args(["invoke", "--event"]).arg(&event).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(report["totals"]["copied"], 1);
    assert_eq!(report["totals"]["skipped"], 1);
    assert_eq!(report["records"][0]["outcome"], "copied");
    assert_eq!(report["records"][0]["org"], "org1");
    assert_eq!(report["records"][0]["destinationBucket"], world.bucket_of("org1"));
    assert_eq!(report["records"][0]["destinationKey"], "org1/cli a.jpg");
    assert!(report["records"][0]["ms"].is_u64());
    assert_eq!(report["records"][1]["outcome"], "skipped");
    assert_eq!(
        world
            .get(world.bucket_of("org1"), "org1/cli a.jpg")
            .await
            .as_deref(),
        Some(&b"cli"[..])
    );
}

/// With a plain-http endpoint (a local server) the client reads no TLS roots: run with a
/// certificate file and directory that do not exist, the SDK would warn that it found none
/// (it reads them whenever its default client is built, a few ms of every cold start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_endpoint_reads_no_tls_roots() {
    let server = garage();
    let world = World::new(server, &["org1"]).await;
    let a = world.put("org1/roots.jpg", b"roots").await;
    let dir = tempfile::tempdir().unwrap();
    let event = write_event(dir.path(), &s3_event(&[&a]));
    let mut cmd = binary();
    cmd.envs(world.function_env("jpg"))
        .env("SSL_CERT_FILE", dir.path().join("absent/roots.pem"))
        .env("SSL_CERT_DIR", dir.path().join("absent"));
    let out = cmd.args(["invoke", "--event"]).arg(&event).output().unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("root CA certificate"),
        "the TLS roots were read for a plain-http endpoint:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_reads_stdin_and_exits_1_when_a_record_fails() {
    let server = garage();
    let world = World::with_config(server, &["org1"], |orgs| {
        serde_json::json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org2", "destinationBucket": "absent-bucket-zz-org2"}
        ], "retry": 0})
        .to_string()
    })
    .await;
    let ok = world.put("org1/ok.pdf", b"ok").await;
    let bad = world.put("org2/bad.pdf", b"bad").await;
    let mut cmd = binary();
    cmd.envs(world.function_env("pdf"));
    let mut child = cmd
        .args(["invoke", "--event", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(s3_event(&[&bad, &ok]).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"][0]["outcome"], "failed");
    assert_eq!(report["records"][0]["errorCode"], "NoSuchBucket");
    assert_eq!(report["records"][1]["outcome"], "copied");
    assert!(
        stderr_of(&out).contains("org2/bad.pdf"),
        "the failure is logged: {}",
        stderr_of(&out)
    );
}

#[test]
fn invoke_rejects_bad_input_with_exit_2_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SUFFIX_TO_COPY", "jpg"),
        ("CONFIGURATION_BUCKET", "cfg"),
        ("CONFIGURATION_KEY", "c.json"),
    ];
    let cases: Vec<(Vec<&str>, PathBuf, &str)> = vec![
        (
            vec!["SUFFIX_TO_COPY"],
            fixture_path("s3-put.json"),
            "environment variable SUFFIX_TO_COPY is missing",
        ),
        (
            vec!["CONFIGURATION_KEY"],
            fixture_path("s3-put.json"),
            "environment variable CONFIGURATION_KEY is missing",
        ),
        (
            vec![],
            fixture_path("not-json.txt"),
            "not-json.txt: event is not valid JSON at line 1",
        ),
        (
            vec![],
            fixture_path("unknown-shape.json"),
            "event has an unknown shape",
        ),
        (
            vec![],
            dir.path().join("absent.json"),
            "absent.json: could not be read",
        ),
    ];
    for (unset, event, expected) in cases {
        let mut cmd = binary();
        for (k, v) in env {
            if !unset.contains(&k) {
                cmd.env(k, v);
            }
        }
        let out = cmd.args(["invoke", "--event"]).arg(&event).output().unwrap();
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{expected}: {stderr}");
        assert!(stderr.contains(expected), "expected {expected:?} in {stderr:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn invoke_with_an_invalid_config_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.json");
    std::fs::write(
        &config,
        r#"{"customers":[{"org":"Org 3","destinationBucket":"Org_3"}]}"#,
    )
    .unwrap();
    let out = binary()
        .env("SUFFIX_TO_COPY", "jpg")
        .args(["invoke", "--event"])
        .arg(fixture_path("s3-test-event.json"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.json: customers[0]: org \"Org 3\" is not valid"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn invoke_acknowledges_a_test_event_with_a_local_config() {
    let out = binary()
        .env("SUFFIX_TO_COPY", "jpg")
        .args(["invoke", "--event"])
        .arg(fixture_path("s3-test-event.json"))
        .arg("--config")
        .arg(repo("config/sample.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"][0]["outcome"], "skipped");
    assert_eq!(report["records"][0]["reason"], "s3:TestEvent acknowledged");
}

#[test]
fn validate_prints_the_orgs_of_the_sample() {
    let out = binary()
        .args(["validate", "--config"])
        .arg(repo("config/sample.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("configuration is valid: 4 orgs, retry 1"),
        "{stdout}"
    );
    for org in 1..=4 {
        assert!(
            stdout.contains(&format!("org{org}/")) && stdout.contains(&format!("s3://org{org}-export")),
            "{stdout}"
        );
    }
}

#[test]
fn validate_names_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("typo.json");
    std::fs::write(
        &config,
        r#"{"customers":[{"org":"a","destinationBucket":"ab"}],"retires":1}"#,
    )
    .unwrap();
    let out = binary()
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("unknown field \"retires\"; did you mean \"retry\"?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("customers[0] (a): destinationBucket \"ab\" is not a valid S3 bucket name"),
        "{stderr}"
    );
}

/// `--split` turns the sample into org documents; `validate --config DIR/` reads them as the
/// function does and fails, naming the document, when one would be refused.
#[test]
fn validate_splits_a_document_and_validates_the_folder_of_org_documents() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("orgs");
    let out = binary()
        .args(["validate", "--config"])
        .arg(repo("config/sample.json"))
        .arg("--split")
        .arg(&folder)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote 4 org documents"));
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "_defaults.json",
            "org1.json",
            "org2.json",
            "org3.json",
            "org4.json"
        ]
    );
    let validate_folder = || {
        binary()
            .env("SUFFIX_TO_COPY", "jpg")
            .args(["validate", "--config"])
            .arg(format!("{}/", folder.display()))
            .output()
            .unwrap()
    };
    let out = validate_folder();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("configuration is valid: 4 orgs, retry 1"),
        "{stdout}"
    );
    // `plan` (like backfill, reconcile and check) reads the folder as the function does.
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "org3/a.jpg\nnobody/a.jpg\n").unwrap();
    let out = binary()
        .args(["plan", "--suffixes", "jpg", "--config"])
        .arg(format!("{}/", folder.display()))
        .arg("--keys")
        .arg(&keys)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("org3/a.jpg\torg3\tcopy -> s3://org3-export/org3/a.jpg"),
        "{stdout}"
    );
    assert!(stdout.contains("nobody/a.jpg\t-\tskip"), "{stdout}");
    // org2 takes org1's bucket: refused, and named.
    let org1: Value = serde_json::from_slice(&std::fs::read(folder.join("org1.json")).unwrap()).unwrap();
    let mut org2: Value = serde_json::from_slice(&std::fs::read(folder.join("org2.json")).unwrap()).unwrap();
    org2["destinationBucket"] = org1["destinationBucket"].clone();
    std::fs::write(folder.join("org2.json"), org2.to_string()).unwrap();
    std::fs::write(folder.join("org3.json"), "{").unwrap();
    let out = validate_folder();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("org2.json: refused: bucket"), "{stderr}");
    assert!(stderr.contains("org3.json: refused: config"), "{stderr}");
    assert!(stderr.contains("2 org document(s) refused"), "{stderr}");
    // A document that nests prefixes cannot be split.
    let nested = dir.path().join("nested.json");
    std::fs::write(
        &nested,
        r#"{"customers":[{"org":"a","destinationBucket":"a-out"},{"org":"b","destinationBucket":"b-out","prefix":"a/b/"}]}"#,
    )
    .unwrap();
    let out = binary()
        .args(["validate", "--config"])
        .arg(&nested)
        .arg("--split")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("overlaps the prefix of org a"),
        "{}",
        stderr_of(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reads_the_config_from_s3() {
    let server = garage();
    let world = World::new(server, &["org1", "org2"]).await;
    let mut cmd = binary();
    cmd.envs(world.function_env("jpg"));
    let out = cmd.arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains(world.bucket_of("org2")), "{stdout}");
}

/// `validate` loads plugins as the Lambda does: with `EXPECTED_BUCKET_OWNER`, an `s3://`
/// plugin is read only from a bucket that account owns. Neither server checks the owner, so
/// the proxy plays S3's check: the plugin's bucket is owned by 111111111111.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_refuses_a_plugin_bucket_of_another_owner() {
    use sha2::Digest;
    let server = garage();
    let world = World::new(server, &["org1"]).await;
    let wasm = std::fs::read(plugin_artifacts::PASSTHROUGH).unwrap();
    let sha256 = hex::encode(sha2::Sha256::digest(&wasm));
    world.put_config_object("export/plugins/owned.wasm", wasm).await;
    let plugin = format!("s3://{}/export/plugins/owned.wasm", world.config_bucket);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let text = serde_json::json!({"customers": [{"org": "org1", "destinationBucket": world.bucket_of("org1"),
        "plugin": {"source": plugin, "sha256": sha256}}], "retry": 0});
    std::fs::write(&config, text.to_string()).unwrap();
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            method: Some("GET"),
            fault: Fault::OwnedBy("111111111111"),
            path_contains: Some("/export/plugins/owned.wasm".into()),
            copies_only: false,
            times: None,
        }],
    )
    .await;
    for (owner, refused) in [("222222222222", true), ("111111111111", false)] {
        let mut cmd = binary();
        cmd.envs(server.child_env())
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .env("EXPECTED_BUCKET_OWNER", owner)
            .args(["validate", "--config"])
            .arg(&config);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = stderr_of(&out);
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with("plugin of org1:"))
            .unwrap_or_else(|| panic!("no plugin line:\n{stdout}{stderr}"));
        if refused {
            assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
            assert!(
                line.contains(&format!(
                    "BROKEN: plugin {plugin}: could not be read: AccessDenied"
                )) && line.contains(&format!("not owned by EXPECTED_BUCKET_OWNER {owner}")),
                "{line}"
            );
        } else {
            assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
            assert!(line.ends_with(&format!("ok ({plugin}, WIT 0.1)")), "{line}");
        }
    }
    // Every GET of the plugin named the owner (the retry and the cache are the Lambda's).
    let gets: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("/export/plugins/owned.wasm"))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:#?}");
    assert_eq!(
        gets.iter()
            .map(|s| s.header("x-amz-expected-bucket-owner"))
            .collect::<Vec<_>>(),
        [Some("222222222222"), Some("111111111111")]
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;

    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    let lines: Vec<String> = (0..20_000).map(|i| format!("org1/photos/{i}.jpg")).collect();
    std::fs::write(&keys, lines.join("\n")).unwrap();
    let mut child = binary()
        .args(["plan", "--suffixes", "jpg", "--config"])
        .arg(repo("config/sample.json"))
        .arg("--keys")
        .arg(&keys)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("org1/photos/0.jpg"), "{first}");
    // The reader is gone now (stdout dropped); the next writes hit a closed pipe.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?} {stderr}",
        out.status
    );
}

/// `invoke --output` shows what Lambda would answer: the Batch Operations response, the SQS
/// partial batch response, or the invocation error; `both` puts it beside the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_prints_what_lambda_would_return() {
    let server = garage();
    let world = World::with_config(server, &["org1"], |orgs| {
        serde_json::json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org2", "destinationBucket": "absent-bucket-zz-org2"}
        ], "retry": 0})
        .to_string()
    })
    .await;
    let ok = world.put("org1/ok.jpg", b"ok").await;
    let bad = world.put("org2/bad.jpg", b"bad").await;
    let dir = tempfile::tempdir().unwrap();
    let run = |event: &Value, output: Option<&str>| {
        let path = write_event(dir.path(), event);
        let mut cmd = binary();
        cmd.envs(world.function_env("jpg"));
        cmd.args(["invoke", "--event"]).arg(&path);
        if let Some(output) = output {
            cmd.args(["--output", output]);
        }
        let out = cmd.output().unwrap();
        let printed: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}): {}", stderr_of(&out)));
        (out.status.code(), printed)
    };

    // S3 Batch Operations, schema 2.0: the answer S3 reads, every task by id.
    let batch = serde_json::json!({
    "invocationSchemaVersion": "2.0", "invocationId": "inv-cli",
    "job": {"id": "job-1", "userArguments": {"treatMissingKeysAs": "TemporaryFailure"}},
    "tasks": [
        {"taskId": "t-ok", "s3Bucket": world.source, "s3Key": "org1/ok.jpg"},
        {"taskId": "t-bad", "s3Bucket": world.source, "s3Key": "org2/bad.jpg"}
    ]});
    let (code, response) = run(&batch, Some("response"));
    assert_eq!(code, Some(1), "a record failed: exit 1 as before");
    let mut fields: Vec<&str> = response.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "invocationId",
            "invocationSchemaVersion",
            "results",
            "treatMissingKeysAs"
        ]
    );
    assert_eq!(response["invocationId"], "inv-cli");
    assert_eq!(response["invocationSchemaVersion"], "2.0");
    assert_eq!(response["treatMissingKeysAs"], "TemporaryFailure");
    assert_eq!(response["results"][0]["taskId"], "t-ok");
    assert_eq!(response["results"][0]["resultCode"], "Succeeded");
    assert_eq!(response["results"][1]["taskId"], "t-bad");
    assert_eq!(response["results"][1]["resultCode"], "PermanentFailure");
    let (_, both) = run(&batch, Some("both"));
    assert_eq!(both["response"], response);
    assert_eq!(both["report"]["trigger"], "batchOperations");
    assert_eq!(both["report"]["records"].as_array().unwrap().len(), 2);
    // The default stays the report, as scripts read it (timings differ between runs).
    let (_, report) = run(&batch, None);
    let without_ms = |report: &Value| {
        let mut report = report.clone();
        for r in report["records"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("ms");
        }
        report
    };
    assert_eq!(without_ms(&report), without_ms(&both["report"]));

    // SQS: the partial batch response names the failed message only.
    let sqs =
        crate::support::events::sqs_event(&[("msg-ok", s3_event(&[&ok])), ("msg-bad", s3_event(&[&bad]))]);
    let (code, response) = run(&sqs, Some("response"));
    assert_eq!(code, Some(1));
    assert_eq!(
        response["batchItemFailures"],
        serde_json::json!([{"itemIdentifier": "msg-bad"}])
    );

    // A plain S3 notification with a failed record: Lambda answers with an error.
    let (_, response) = run(&s3_event(&[&ok, &bad]), Some("response"));
    assert_eq!(response["errorType"], "RecordsFailed");
    assert!(
        response["errorMessage"]
            .as_str()
            .unwrap()
            .contains("org2/bad.jpg (NoSuchBucket)"),
        "{response}"
    );
    // Nothing failed: Lambda returns the report itself.
    let (code, response) = run(&s3_event(&[&ok]), Some("response"));
    assert_eq!(code, Some(0));
    assert_eq!(response["totals"]["copied"], 1);
}

/// A key, an SQS message id (logged as the record's locator) and an S3 error can hold
/// newlines and terminal escapes: in the text log they are written as escapes, so every
/// stderr line is one of ours and nothing recolours a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_key_cannot_forge_a_log_line() {
    let server = garage();
    let world = World::with_config(server, &["org1"], |orgs| {
        serde_json::json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org2", "destinationBucket": "absent-bucket-zz-org2"}
        ], "retry": 0})
        .to_string()
    })
    .await;
    let forged = " INFO record outcome=copied key=org1/fake.jpg";
    let copied_key =
        format!("org1/a.jpg\n2026-01-01T00:00:00.000000Z{forged}\r\u{1b}[2K\u{1b}[32mok\u{1b}[0m.jpg");
    let failed_key = format!("org2/b\u{7f}\u{9b}31m\u{85}\n{forged}.jpg");
    let a = world.put(&copied_key, b"a").await;
    let b = world.put(&failed_key, b"b").await;
    let message_id = format!("m1\n2026-01-01T00:00:00.000000Z{forged}\u{1b}]0;title\u{7}");
    let dir = tempfile::tempdir().unwrap();
    let event = write_event(
        dir.path(),
        &crate::support::events::sqs_event(&[(message_id.as_str(), s3_event(&[&a, &b]))]),
    );
    let out = binary()
        .envs(world.function_env("jpg"))
        .env("RUST_LOG", "info")
        .args(["invoke", "--event"])
        .arg(&event)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 2, "{stderr}");
    for line in &lines {
        assert!(
            !line.chars().any(|c| c.is_control()),
            "a control character reached the log: {line:?}"
        );
        // Every line starts as the formatter starts it: a timestamp, then a level.
        let level = line.split_whitespace().nth(1).unwrap_or_default();
        assert!(
            line.starts_with("20") && ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "a line that is not ours: {line:?}"
        );
        assert!(!line.contains(&format!("\n{forged}")));
    }
    // The keys are there, visibly escaped.
    assert!(
        stderr.contains("org1/a.jpg\\n2026-01-01T00:00:00.000000Z INFO"),
        "{stderr}"
    );
    assert!(stderr.contains("\\u{1b}[32mok\\u{1b}[0m.jpg"), "{stderr}");
    assert!(stderr.contains("org2/b\\u{7f}\\u{9b}31m\\u{85}\\n"), "{stderr}");
    assert!(
        stderr.contains("(SQS message m1\\n2026-01-01T00:00:00.000000Z INFO record outcome=copied key=org1/fake.jpg\\u{1b}]0;title\\u{7})"),
        "{stderr}"
    );
    // And the report on stdout keeps the real keys.
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"][0]["key"], copied_key);
    assert_eq!(report["records"][1]["key"], failed_key);
}

/// `invoke` against a server that accepts the copy and never answers: it still finishes,
/// with the record failed as `Timeout` (after `retry` more attempts), instead of waiting
/// until someone kills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_against_a_silent_server_finishes_with_a_timeout() {
    use crate::support::proxy::{Fault, FaultProxy, Rule};
    let server = garage();
    let world = World::new(server, &["org1"]).await;
    let a = world.put("org1/silent.jpg", b"s").await;
    let proxy = FaultProxy::start(&server.endpoint, vec![Rule::copies(Fault::Hang, 10)]).await;
    let dir = tempfile::tempdir().unwrap();
    let event = write_event(dir.path(), &s3_event(&[&a]));
    let mut cmd = binary();
    cmd.envs(world.function_env("jpg"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("COPY_REQUEST_TIMEOUT_MS", "300")
        .env("RETRY_BASE_DELAY_MS", "1");
    // Blocking wait on a worker thread: the proxy keeps running on the other one.
    let out = cmd.args(["invoke", "--event"]).arg(&event).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let record = &report["records"][0];
    assert_eq!(record["outcome"], "failed", "{report:#}");
    assert_eq!(record["errorCode"], "Timeout", "{report:#}");
    assert!(
        record["reason"].as_str().unwrap().contains("timed out"),
        "{report:#}"
    );
    // World::new configures retry 1: two attempts reached the server, none answered.
    assert_eq!(proxy.copies_to("silent.jpg").len(), 2);
}
