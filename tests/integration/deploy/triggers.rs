use serde_json::json;

use super::{SOURCE, has_resource, render, render_file, resource, template_path, template_text};

#[test]
fn s3_mode_invokes_the_function_from_the_bucket_the_stack_creates() {
    let rendered = render(&[("TriggerMode", "S3")]);
    let bucket = resource(&rendered, "SourceBucket");
    assert_eq!(bucket["Properties"]["BucketName"], SOURCE);
    assert_eq!(bucket["DeletionPolicy"], "Retain");
    let notification = &bucket["Properties"]["NotificationConfiguration"];
    assert_eq!(
        notification,
        &json!({"LambdaConfigurations": [{"Event": "s3:ObjectCreated:*", "Function": "{{ExportFunction.Arn}}"}]}),
        "one unfiltered notification"
    );
    let permission = &resource(&rendered, "S3InvokePermission")["Properties"];
    assert_eq!(permission["Principal"], "s3.amazonaws.com");
    assert_eq!(permission["SourceArn"], format!("arn:aws:s3:::{SOURCE}"));
    assert_eq!(permission["SourceAccount"], "123456789012");
    // The bucket waits for the permission (S3 checks the destination when it is set).
    assert_eq!(bucket["DependsOn"], "TriggerPermissionsReady");
    let ready = resource(&rendered, "TriggerPermissionsReady");
    assert_eq!(
        ready["Metadata"]["S3InvokePermission"],
        "{{ref:S3InvokePermission}}"
    );
    for absent in [
        "SourceQueue",
        "SourceQueueMapping",
        "ObjectCreatedRule",
        "SourceDeadLetterAlarm",
    ] {
        assert!(!has_resource(&rendered, absent), "{absent} only in its own mode");
    }
    // Asynchronous invocations: two retries, then the invoke dead-letter queue (SAM turns
    // the function's EventInvokeConfig into a resource of its own).
    let invoke = &resource(&rendered, "ExportFunctionEventInvokeConfig")["Properties"];
    assert_eq!(invoke["FunctionName"], "{{ref:ExportFunction}}");
    assert_eq!(invoke["MaximumRetryAttempts"], 2);
    // (CloudFormation's EventInvokeConfig names the destination only; SAM's `Type: SQS`
    // became the role's sqs:SendMessage on it.)
    assert_eq!(
        invoke["DestinationConfig"]["OnFailure"],
        json!({"Destination": "{{InvokeDeadLetterQueue.Arn}}"})
    );

    // CloudFormation cannot attach a notification to a bucket it does not create.
    let refused = render_file(
        &template_path(),
        &[("TriggerMode", "S3"), ("CreateSourceBucket", "false")],
    );
    let why = refused["ruleViolations"].to_string();
    assert!(why.contains("CreateSourceBucket"), "{why}");
}

#[test]
fn sqs_mode_reports_batch_item_failures_and_has_its_own_dead_letter_queue() {
    assert!(template_text().contains("ReportBatchItemFailures"));
    for timeout in [30u64, 60, 120, 300, 600, 900] {
        let t = timeout.to_string();
        let rendered = render(&[("TriggerMode", "SQS"), ("Timeout", &t), ("SqsBatchSize", "7")]);
        let function = &resource(&rendered, "ExportFunction")["Properties"];
        assert_eq!(function["Timeout"], t);
        let queue = &resource(&rendered, "SourceQueue")["Properties"];
        assert_eq!(
            queue["VisibilityTimeout"],
            json!(6 * timeout),
            "six times the function timeout"
        );
        assert_eq!(
            queue["RedrivePolicy"]["deadLetterTargetArn"],
            "{{SourceDeadLetterQueue.Arn}}"
        );
        let mapping = &resource(&rendered, "SourceQueueMapping")["Properties"];
        assert_eq!(
            mapping["FunctionResponseTypes"],
            json!(["ReportBatchItemFailures"])
        );
        assert_eq!(mapping["EventSourceArn"], "{{SourceQueue.Arn}}");
        assert_eq!(mapping["FunctionName"], "{{ref:ExportFunction}}");
        assert_eq!(mapping["BatchSize"], "7");
    }
    let disallowed = render_file(&template_path(), &[("TriggerMode", "SQS"), ("Timeout", "45")]);
    assert!(disallowed["parameterErrors"].to_string().contains("Timeout"));

    let rendered = render(&[("TriggerMode", "SQS")]);
    // Only S3, and only for the source bucket of this account, may send to the queue.
    let policy = &resource(&rendered, "SourceQueuePolicy")["Properties"]["PolicyDocument"]["Statement"];
    assert_eq!(policy.as_array().map(Vec::len), Some(1));
    assert_eq!(policy[0]["Principal"], json!({"Service": "s3.amazonaws.com"}));
    assert_eq!(policy[0]["Action"], "sqs:SendMessage");
    assert_eq!(policy[0]["Resource"], "{{SourceQueue.Arn}}");
    assert_eq!(
        policy[0]["Condition"]["ArnLike"]["aws:SourceArn"],
        format!("arn:aws:s3:::{SOURCE}")
    );
    assert_eq!(
        policy[0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        "123456789012"
    );
    let notification = &resource(&rendered, "SourceBucket")["Properties"]["NotificationConfiguration"];
    assert_eq!(
        notification,
        &json!({"QueueConfigurations": [{"Event": "s3:ObjectCreated:*", "Queue": "{{SourceQueue.Arn}}"}]})
    );
    assert_eq!(
        resource(&rendered, "TriggerPermissionsReady")["Metadata"]["SourceQueuePolicy"],
        "{{ref:SourceQueuePolicy}}"
    );
    let alarm = &resource(&rendered, "SourceDeadLetterAlarm")["Properties"];
    assert_eq!(alarm["MetricName"], "ApproximateNumberOfMessagesVisible");
    assert_eq!(
        alarm["Dimensions"][0]["Value"],
        "{{SourceDeadLetterQueue.QueueName}}"
    );
    assert!(!has_resource(&rendered, "S3InvokePermission"));

    // An existing bucket: the stack makes the queue and says where to point the bucket.
    let existing = render(&[("TriggerMode", "SQS"), ("CreateSourceBucket", "false")]);
    assert!(!has_resource(&existing, "SourceBucket"));
    assert_eq!(
        existing["outputs"]["SourceQueueArn"]["Value"],
        "{{SourceQueue.Arn}}"
    );
}

#[test]
fn eventbridge_mode_has_a_rule_on_objects_created_in_the_source_bucket() {
    let rendered = render(&[("TriggerMode", "EventBridge")]);
    let rule = &resource(&rendered, "ObjectCreatedRule")["Properties"];
    assert_eq!(
        rule["EventPattern"],
        json!({"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": [SOURCE]}}})
    );
    assert_eq!(rule["Targets"][0]["Arn"], "{{ExportFunction.Arn}}");
    assert_eq!(
        rule["Targets"][0]["DeadLetterConfig"]["Arn"],
        "{{InvokeDeadLetterQueue.Arn}}"
    );
    let permission = &resource(&rendered, "EventBridgeInvokePermission")["Properties"];
    assert_eq!(permission["Principal"], "events.amazonaws.com");
    assert_eq!(permission["SourceArn"], "{{ObjectCreatedRule.Arn}}");
    let notification = &resource(&rendered, "SourceBucket")["Properties"]["NotificationConfiguration"];
    assert_eq!(
        notification,
        &json!({"EventBridgeConfiguration": {"EventBridgeEnabled": true}})
    );
    let dlq =
        &resource(&rendered, "EventBridgeDeadLetterPolicy")["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(dlq["Principal"], json!({"Service": "events.amazonaws.com"}));
    assert_eq!(
        dlq["Condition"]["ArnEquals"]["aws:SourceArn"],
        "{{ObjectCreatedRule.Arn}}"
    );
    for absent in ["SourceQueue", "S3InvokePermission"] {
        assert!(!has_resource(&rendered, absent), "{absent}");
    }
}

/// PropagateDeletes=true adds removals to the trigger of every mode (S3 and SQS
/// notifications: `s3:ObjectRemoved:*`; EventBridge: "Object Deleted"); false leaves
/// creations only (the tests above).
#[test]
fn propagate_deletes_adds_removals_to_every_trigger() {
    let s3 = render(&[("TriggerMode", "S3"), ("PropagateDeletes", "true")]);
    assert_eq!(
        resource(&s3, "SourceBucket")["Properties"]["NotificationConfiguration"],
        json!({"LambdaConfigurations": [
            {"Event": "s3:ObjectCreated:*", "Function": "{{ExportFunction.Arn}}"},
            {"Event": "s3:ObjectRemoved:*", "Function": "{{ExportFunction.Arn}}"}
        ]})
    );
    let sqs = render(&[
        ("TriggerMode", "SQS"),
        ("CreateSourceBucket", "true"),
        ("PropagateDeletes", "true"),
    ]);
    assert_eq!(
        resource(&sqs, "SourceBucket")["Properties"]["NotificationConfiguration"],
        json!({"QueueConfigurations": [
            {"Event": "s3:ObjectCreated:*", "Queue": "{{SourceQueue.Arn}}"},
            {"Event": "s3:ObjectRemoved:*", "Queue": "{{SourceQueue.Arn}}"}
        ]})
    );
    let eventbridge = render(&[("TriggerMode", "EventBridge"), ("PropagateDeletes", "true")]);
    assert_eq!(
        resource(&eventbridge, "ObjectCreatedRule")["Properties"]["EventPattern"]["detail-type"],
        json!(["Object Created", "Object Deleted"])
    );
}
