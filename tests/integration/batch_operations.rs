use artifact_export::event::parse_event;
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle;
use serde_json::{Value, json};

use crate::support::events::encode_key;
use crate::support::proxy::{Fault, FaultProxy, Rule};
use crate::support::servers::Server;
use crate::support::world::World;

fn task(id: &str, bucket: &str, key: &str, schema: &str) -> Value {
    if schema == "1.0" {
        json!({"taskId": id, "s3Key": encode_key(key), "s3VersionId": null, "s3BucketArn": format!("arn:aws:s3:::{bucket}")})
    } else {
        json!({"taskId": id, "s3Key": encode_key(key), "s3VersionId": null, "s3Bucket": bucket})
    }
}

fn invocation(schema: &str, user_arguments: Option<Value>, tasks: Vec<Value>) -> Value {
    let mut job = json!({"id": "job-1"});
    if let Some(args) = user_arguments {
        job["userArguments"] = args;
    }
    json!({"invocationSchemaVersion": schema, "invocationId": "inv-1", "job": job, "tasks": tasks})
}

fn result_of<'a>(response: &'a Value, task: &str) -> (&'a str, &'a str) {
    let r = response["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["taskId"] == task)
        .unwrap();
    (
        r["resultCode"].as_str().unwrap(),
        r["resultString"].as_str().unwrap(),
    )
}

async fn mixed_outcomes_get_their_result_codes(server: &'static Server) {
    let world = World::with_config(server, &["org1"], |orgs| {
        json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org2", "destinationBucket": "no-such-bucket-org2-batch"}
        ], "retry": 0})
        .to_string()
    })
    .await;
    world.put("org1/a b.jpg", b"copy me").await;
    world.put("org1/notes.txt", b"not selected").await;
    world.put("org9/orphan.jpg", b"no org").await;
    world.put("org2/denied.jpg", b"dest missing").await;
    world.put("org1/throttled.jpg", b"slow").await;
    for schema in ["1.0", "2.0"] {
        let tasks = vec![
            task("t-copy", &world.source, "org1/a b.jpg", schema),
            task("t-skip", &world.source, "org1/notes.txt", schema),
            task("t-no-org", &world.source, "org9/orphan.jpg", schema),
            task("t-missing", &world.source, "org1/never-uploaded.jpg", schema),
            task("t-dest", &world.source, "org2/denied.jpg", schema),
            task("t-slow", &world.source, "org1/throttled.jpg", schema),
        ];
        let args = (schema == "2.0").then(|| json!({"treatMissingKeysAs": "Succeeded"}));
        let event = parse_event(&invocation(schema, args, tasks)).unwrap();
        let proxy = FaultProxy::start(
            &server.endpoint,
            vec![Rule {
                fault: Fault::SlowDown,
                path_contains: Some("throttled.jpg".into()),
                copies_only: false,
                method: None,
                times: None,
            }],
        )
        .await;
        let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("jpg"));
        let report = handle(&exporter, event).await;
        assert!(!report.must_fail_invocation(), "tasks carry their own results");
        let response = report.lambda_response();
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
        assert_eq!(response["invocationSchemaVersion"], schema);
        assert_eq!(response["invocationId"], "inv-1");
        let missing = if schema == "2.0" {
            "Succeeded"
        } else {
            "PermanentFailure"
        };
        assert_eq!(response["treatMissingKeysAs"], missing);
        for r in response["results"].as_array().unwrap() {
            let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort();
            assert_eq!(keys, ["resultCode", "resultString", "taskId"]);
        }
        assert_eq!(response["results"].as_array().unwrap().len(), 6);
        let (code, text) = result_of(&response, "t-copy");
        assert_eq!(code, "Succeeded", "{text}");
        assert!(text.starts_with("copied to s3://"), "{text}");
        assert_eq!(result_of(&response, "t-skip").0, "Succeeded");
        assert!(
            result_of(&response, "t-skip")
                .1
                .starts_with("skipped: suffix not selected")
        );
        assert_eq!(
            result_of(&response, "t-no-org"),
            ("PermanentFailure", "no org's prefix matches the key")
        );
        assert_eq!(
            result_of(&response, "t-missing").0,
            missing,
            "{}",
            result_of(&response, "t-missing").1
        );
        assert_eq!(result_of(&response, "t-dest").0, "PermanentFailure");
        assert!(result_of(&response, "t-dest").1.contains("NoSuchBucket"));
        let (code, text) = result_of(&response, "t-slow");
        assert_eq!(code, "TemporaryFailure", "{text}");
        // Size unknown: the object is headed first, and a HEAD's 503 has no error body.
        assert!(text.contains("SlowDown") || text.contains("HTTP503"), "{text}");
        assert_eq!(
            world
                .get(world.bucket_of("org1"), "org1/a b.jpg")
                .await
                .as_deref(),
            Some(&b"copy me"[..])
        );
    }
}

on_each_server!(mixed_outcomes_get_their_result_codes);

/// Schema 1.0 names the bucket by ARN, whose partition is that of the job's region: every
/// AWS partition is accepted, and an ARN that names no bucket fails its task alone, with a
/// one-line reason naming the task.
async fn bucket_arns_of_every_partition_are_accepted(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let partitions = ["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-eusc"];
    let mut tasks = Vec::new();
    for p in partitions {
        let key = format!("org1/{p}.jpg");
        world.put(&key, p.as_bytes()).await;
        tasks.push(
            json!({"taskId": format!("t-{p}"), "s3Key": encode_key(&key), "s3VersionId": null,
                          "s3BucketArn": format!("arn:{p}:s3:::{}", world.source)}),
        );
    }
    let malformed = [
        ("t-object", format!("arn:aws:s3:::{}/org1/aws.jpg", world.source)),
        ("t-service", format!("arn:aws:sqs:::{}", world.source)),
        (
            "t-region",
            format!("arn:aws:s3:us-east-1:123456789012:{}", world.source),
        ),
        ("t-partition", format!("arn:azure:s3:::{}", world.source)),
        ("t-bare", world.source.clone()),
        ("t-empty", "arn:aws-cn:s3:::".to_string()),
        ("t-newline", format!("arn:aws:s3:::{}\nforged", world.source)),
    ];
    for (id, arn) in &malformed {
        tasks.push(json!({"taskId": id, "s3Key": "org1/aws.jpg", "s3BucketArn": arn}));
    }
    let event = parse_event(&invocation("1.0", None, tasks)).unwrap();
    let exporter = Exporter::new(server.client(), world.settings("jpg"));
    let response = handle(&exporter, event).await.lambda_response();
    for p in partitions {
        let (code, text) = result_of(&response, &format!("t-{p}"));
        assert_eq!(code, "Succeeded", "{p}: {text}");
        assert_eq!(
            world
                .get(world.bucket_of("org1"), &format!("org1/{p}.jpg"))
                .await
                .as_deref(),
            Some(p.as_bytes()),
            "{p}"
        );
    }
    for (id, arn) in &malformed {
        let (code, text) = result_of(&response, id);
        assert_eq!(code, "PermanentFailure", "{id}: {text}");
        assert!(text.contains(&format!("(task {id}).s3BucketArn")), "{id}: {text}");
        assert!(text.contains("is not an S3 bucket ARN"), "{id}: {text}");
        assert!(!text.contains('\n'), "{id}: one line: {text:?} for {arn:?}");
    }
}

on_each_server!(bucket_arns_of_every_partition_are_accepted);

/// A config that cannot be read for a reason that passes (503 on the cold start's GET) fails
/// every task as `TemporaryFailure`, so S3 retries it; a config that is not there is a
/// `PermanentFailure`.
async fn an_unreadable_config_is_a_temporary_failure(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    world.put("org1/a.jpg", b"a").await;
    let tasks = || vec![task("t-1", &world.source, "org1/a.jpg", "2.0")];
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            method: None,
            fault: Fault::SlowDown,
            path_contains: Some(world.config_key.clone()),
            copies_only: false,
            times: None,
        }],
    )
    .await;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("jpg"));
    let report = handle(&exporter, parse_event(&invocation("2.0", None, tasks())).unwrap()).await;
    let response = report.lambda_response();
    let (code, text) = result_of(&response, "t-1");
    assert_eq!(code, "TemporaryFailure", "{text}");
    assert!(text.contains("SlowDown"), "{text}");

    let mut settings = world.settings("jpg");
    settings.config_location = artifact_export::env::ConfigLocation::S3 {
        bucket: world.config_bucket.clone(),
        key: "no/such/config.json".into(),
    };
    let exporter = Exporter::new(server.client(), settings);
    let report = handle(&exporter, parse_event(&invocation("2.0", None, tasks())).unwrap()).await;
    let response = report.lambda_response();
    let (code, text) = result_of(&response, "t-1");
    assert_eq!(code, "PermanentFailure", "{text}");
}

/// Under Batch Operations, an object overwritten between the task's HEAD and its copy (the
/// copy's if-match answers 412) is superseded: `Succeeded`, whatever `treatMissingKeysAs`
/// says, which applies only to a key that is not there.
async fn an_object_changed_during_its_task_is_superseded_not_missing(server: &'static Server) {
    if !server.caps.enforces_copy_if_match {
        println!(
            "SKIP on {}: ignores x-amz-copy-source-if-match, so no 412",
            server.name
        );
        return;
    }
    let world = World::new(server, &["org1"]).await;
    world.put("org1/changing.jpg", b"first").await;
    let tasks = vec![
        task("t-changed", &world.source, "org1/changing.jpg", "2.0"),
        task("t-missing", &world.source, "org1/never-uploaded.jpg", "2.0"),
    ];
    let args = json!({"treatMissingKeysAs": "PermanentFailure"});
    let event = parse_event(&invocation("2.0", Some(args), tasks)).unwrap();
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            method: None,
            fault: Fault::Held,
            path_contains: Some("changing.jpg".into()),
            copies_only: true,
            times: None,
        }],
    )
    .await;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), world.settings("jpg"));
    let handled = handle(&exporter, event);
    let overwrite = async {
        // The copy is held at the proxy once its HEAD was answered; then the object changes.
        while proxy.copies_to("changing.jpg").is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        world.put("org1/changing.jpg", b"second, newer").await;
        proxy.release();
    };
    let (report, ()) = tokio::join!(handled, overwrite);
    let response = report.lambda_response();
    let (code, text) = result_of(&response, "t-changed");
    assert_eq!(code, "Succeeded", "{text}");
    assert!(text.starts_with("superseded: "), "{text}");
    assert_eq!(result_of(&response, "t-missing").0, "PermanentFailure");
}

on_each_server!(
    an_unreadable_config_is_a_temporary_failure,
    an_object_changed_during_its_task_is_superseded_not_missing
);
