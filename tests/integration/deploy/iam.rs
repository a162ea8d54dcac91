use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{
    BASIC_EXECUTION_ROLE, CONFIG_BUCKET, CONFIG_KEY, DESTINATIONS, MODES, ROLE, SOURCE, Statement,
    expected_grants, function_s3_grants, render, render_file, repo, resource, statements, template_path,
    template_text, textual_violations, violations,
};

#[test]
fn every_trigger_mode_grants_exactly_the_s3_access_the_function_needs() {
    for mode in MODES {
        for plugins in [None, Some(("plugin-store", "plugins/"))] {
            let create = if mode == "S3" { "true" } else { "false" };
            let mut params = vec![("TriggerMode", mode), ("CreateSourceBucket", create)];
            if let Some((bucket, prefix)) = plugins {
                params.push(("PluginBucketName", bucket));
                params.push(("PluginKeyPrefix", prefix));
            }
            let rendered = render(&params);
            let all = statements(&rendered);
            assert!(
                all.iter().any(|s| s.at.starts_with(&format!("{ROLE}."))),
                "{mode}: function policies found"
            );
            assert_eq!(
                resource(&rendered, ROLE)["Properties"]["ManagedPolicyArns"],
                json!([BASIC_EXECUTION_ROLE]),
                "{mode}: SAM's logging policy and no other managed policy"
            );
            assert_eq!(
                violations(&all),
                Vec::<String>::new(),
                "{mode}, plugins {plugins:?}"
            );
            let expected = expected_grants(plugins.map(|_| "plugin-store/plugins/*"));
            assert_eq!(
                function_s3_grants(&rendered),
                expected,
                "{mode}, plugins {plugins:?}"
            );
        }
    }
}

/// The function role's KMS statements: (actions, resources), sorted.
fn function_kms_grants(rendered: &Value) -> Vec<(Vec<String>, Vec<String>)> {
    let mut kms: Vec<_> = statements(rendered)
        .into_iter()
        .filter(|s| s.allow && s.at.starts_with(&format!("{ROLE}.")))
        .filter(|s| s.actions.iter().any(|a| a.starts_with("kms:") || a == "*"))
        .map(|s| (s.actions, s.resources))
        .collect();
    kms.sort();
    kms
}

#[test]
fn kms_is_granted_only_on_the_listed_keys_and_not_at_all_without_them() {
    let none = render(&[]);
    assert_eq!(
        function_kms_grants(&none),
        Vec::<(Vec<String>, Vec<String>)>::new()
    );
    let dest = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let dest2 = "arn:aws:kms:eu-west-1:444455556666:key/mrk-1234abcd12ab34cd56ef1234567890ab";
    let source = "arn:aws:kms:eu-west-1:777788889999:key/0000abcd-12ab-34cd-56ef-1234567890ab";
    let both = render(&[
        ("DestinationKmsKeyArns", &format!("{dest},{dest2}")),
        ("SourceKmsKeyArns", source),
    ]);
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        function_kms_grants(&both),
        vec![
            (owned(&["kms:Decrypt"]), owned(&[source])),
            (
                owned(&["kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"]),
                owned(&[dest, dest2])
            ),
        ]
    );
    let only_source = render(&[("SourceKmsKeyArns", source)]);
    assert_eq!(
        function_kms_grants(&only_source),
        vec![(owned(&["kms:Decrypt"]), owned(&[source]))]
    );
    // Neither widens S3, and neither takes an alias or a wildcard.
    assert_eq!(violations(&statements(&both)), Vec::<String>::new());
    for bad in ["*", "alias/exports", "arn:aws:kms:eu-west-1:111122223333:key/*"] {
        let rendered = render_file(&template_path(), &[("DestinationKmsKeyArns", bad)]);
        assert_ne!(rendered["parameterErrors"], json!([]), "{bad} accepted");
    }
}

#[test]
fn the_function_may_consume_only_its_own_queue_and_send_only_to_its_dead_letter_queue() {
    for mode in MODES {
        let rendered = render(&[("TriggerMode", mode), ("CreateSourceBucket", "true")]);
        let mut sqs: Vec<(Vec<String>, Vec<String>)> = statements(&rendered)
            .into_iter()
            .filter(|s| {
                s.at.starts_with(&format!("{ROLE}.")) && s.actions.iter().any(|a| a.starts_with("sqs:"))
            })
            .map(|s| (s.actions, s.resources))
            .collect();
        sqs.sort();
        // SAM's own statement for the EventInvokeConfig's on-failure destination, every mode.
        let mut expected = vec![(
            vec!["sqs:SendMessage".to_string()],
            vec!["{{InvokeDeadLetterQueue.Arn}}".to_string()],
        )];
        if mode == "SQS" {
            expected.push((
                [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ]
                .map(String::from)
                .to_vec(),
                vec!["{{SourceQueue.Arn}}".to_string()],
            ));
        }
        expected.sort();
        assert_eq!(sqs, expected, "{mode}");
    }
}

#[test]
fn the_checks_catch_wildcard_actions_and_star_resources() {
    let text = template_text();
    let dir = tempfile::tempdir().unwrap();
    // Each mutation must apply (so a template edit cannot quietly disarm the test) and must
    // be caught by the rendered-IAM checks: a violation, or a grant beyond the expected ones.
    let mutations: [(&str, &str, &str, &str); 5] = [
        (
            "s3:* on the source",
            "                - s3:GetObjectTagging\n",
            "                - \"s3:*\"\n",
            "wildcard S3 action \"s3:*\"",
        ),
        (
            "s3:Put* on destinations",
            "                - s3:PutObjectTagging\n",
            "                - s3:Put*\n",
            "wildcard S3 action \"s3:Put*\"",
        ),
        (
            "Resource \"*\" for ListBucket",
            "              Action: s3:ListBucket\n              Resource: !Sub \"arn:${AWS::Partition}:s3:::${SourceBucketName}\"\n",
            "              Action: s3:ListBucket\n              Resource: \"*\"\n",
            "S3 action on resource \"*\"",
        ),
        (
            // SAM expands it into the role's inline policy: caught as grants beyond the needed.
            "a SAM policy template",
            "      Policies:\n",
            "      Policies:\n        - S3CrudPolicy: {BucketName: !Ref SourceBucketName}\n",
            "beyond what the code needs: (\"s3:DeleteObject\", \"arn:aws:s3:::shared-source/*\")",
        ),
        (
            "a managed policy",
            "      Policies:\n",
            "      Policies:\n        - arn:aws:iam::aws:policy/AmazonS3FullAccess\n",
            "managed policy arn:aws:iam::aws:policy/AmazonS3FullAccess",
        ),
    ];
    for (what, from, to, expected) in mutations {
        assert_eq!(
            text.matches(from).count(),
            1,
            "{what}: the template has {from:?} exactly once"
        );
        let path = dir.path().join("template.yaml");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let rendered = render_file(&path, &[]);
        let mut found = violations(&statements(&rendered));
        let expected_grants = expected_grants(None);
        found.extend(
            function_s3_grants(&rendered)
                .difference(&expected_grants)
                .map(|g| format!("beyond what the code needs: {g:?}")),
        );
        assert!(
            found.iter().any(|v| v.contains(expected)),
            "{what}: expected {expected:?} among {found:#?}"
        );
    }
    // The text check flags the same mutations it can see.
    assert_eq!(
        textual_violations(&text.replacen(
            "                - s3:GetObjectTagging\n",
            "                - 's3:*'\n",
            1
        ))
        .len(),
        1
    );
    assert_eq!(textual_violations("          Resource: \"*\"\n").len(), 1);
    assert_eq!(textual_violations("          Resource: ['*']\n").len(), 1);
    assert_eq!(textual_violations("  # no s3:* here: a comment\n").len(), 0);
    // And the statement check on its own: bucket wildcards, NotAction, a bare `*` action.
    let s = |actions: &[&str], resources: &[&str]| Statement {
        at: "t".into(),
        allow: true,
        actions: actions.iter().map(|a| a.to_string()).collect(),
        resources: resources.iter().map(|r| r.to_string()).collect(),
        negated: false,
    };
    assert_eq!(
        violations(&[s(&["s3:GetObject"], &["arn:aws:s3:::*/*"])]).len(),
        1
    );
    assert_eq!(
        violations(&[s(&["s3:GetObject"], &["arn:aws:s3:::b/*"])]).len(),
        0
    );
    assert_eq!(violations(&[s(&["*"], &["arn:aws:s3:::b/*"])]).len(), 1);
    assert_eq!(
        violations(&[s(&["logs:PutLogEvents"], &["*"])]).len(),
        0,
        "only S3 actions are in scope"
    );
    assert_eq!(
        violations(&[Statement {
            negated: true,
            ..s(&["s3:GetObject"], &["arn:aws:s3:::b/*"])
        }])
        .len(),
        1
    );
}

#[test]
fn the_template_text_has_no_s3_wildcard_or_star_resource() {
    assert_eq!(textual_violations(&template_text()), Vec::<String>::new());
}

/// SDK operations → the IAM actions S3 checks for them (the service authorization reference
/// for Amazon S3). CopyObject reads the source's tags and writes them (the default tagging
/// directive copies them); a multipart copy reads them and sends them with
/// CreateMultipartUpload. Both write a source's Object Lock, which its HEAD shows.
const S3_CALLS: [(&str, &[&str]); 17] = [
    (
        "copy_object",
        &[
            "s3:GetObject",
            "s3:GetObjectTagging",
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:PutObjectRetention",
            "s3:PutObjectLegalHold",
        ],
    ),
    ("upload_part_copy", &["s3:GetObject", "s3:PutObject"]),
    // The source's HEAD shows its Object Lock only with these two.
    (
        "head_object",
        &["s3:GetObject", "s3:GetObjectRetention", "s3:GetObjectLegalHold"],
    ),
    ("get_object", &["s3:GetObject"]),
    ("get_object_tagging", &["s3:GetObjectTagging"]),
    (
        "create_multipart_upload",
        &[
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:PutObjectRetention",
            "s3:PutObjectLegalHold",
        ],
    ),
    (
        "get_object_lock_configuration",
        &["s3:GetBucketObjectLockConfiguration"],
    ),
    ("complete_multipart_upload", &["s3:PutObject"]),
    ("abort_multipart_upload", &["s3:AbortMultipartUpload"]),
    ("list_parts", &["s3:ListMultipartUploadParts"]),
    ("list_multipart_uploads", &["s3:ListBucketMultipartUploads"]),
    ("list_objects_v2", &["s3:ListBucket"]),
    ("put_object", &["s3:PutObject"]),
    ("put_object_tagging", &["s3:PutObjectTagging"]),
    ("delete_object", &["s3:DeleteObject"]),
    ("get_bucket_versioning", &["s3:GetBucketVersioning"]),
    ("list_object_versions", &["s3:ListBucketVersions"]),
];

/// Library sources that never run in the Lambda function: `backfill` and `check` (the CLI,
/// with the operator's credentials) and local mode (`destination::folder`, no S3
/// destination).
const NOT_IN_LAMBDA: [&str; 3] = ["backfill", "check.rs", "folder.rs"];

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if NOT_IN_LAMBDA.contains(&name.as_str()) || name == "bin" {
            continue;
        }
        if path.is_dir() {
            rust_sources(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_role_grants_only_what_the_code_calls() {
    // The S3 calls the function's code makes, found in its source, and the actions they need.
    let mut files = Vec::new();
    rust_sources(&repo().join("host/src"), &mut files);
    let mut needed = BTreeSet::from(["s3:ListBucket".to_string()]); // 404 instead of 403
    let mut calls = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (call, actions) in S3_CALLS {
            if text.contains(&format!(".{call}()")) {
                calls.insert(call);
                needed.extend(actions.iter().map(|a| a.to_string()));
            }
        }
        // A canned ACL on a write (an org's `acl`) needs PutObjectAcl besides PutObject.
        if text.contains(".set_acl(") {
            calls.insert("set_acl");
            needed.insert("s3:PutObjectAcl".to_string());
        }
        // A read that names a version (the version below a delete marker) is GetObjectVersion.
        if text.contains(".version_id(") {
            calls.insert("version_id");
            needed.insert("s3:GetObjectVersion".to_string());
        }
    }
    for call in [
        "copy_object",
        "upload_part_copy",
        "abort_multipart_upload",
        "get_object",
    ] {
        assert!(calls.contains(call), "{call} found in host/src ({calls:?})");
    }
    // Everything the code can call, deletes included (PropagateDeletes=true).
    let params = [
        ("PluginBucketName", "plugin-store"),
        ("TriggerMode", "SQS"),
        ("CreateSourceBucket", "false"),
        ("PropagateDeletes", "true"),
    ];
    let granted: BTreeSet<String> = function_s3_grants(&render(&params))
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        granted, needed,
        "granted (left) vs needed by the calls {calls:?} (right)"
    );
    let unused = "s3:ListMultipartUploadParts";
    assert!(!granted.contains(unused), "{unused}");
    assert!(!template_text().contains(&format!("- {unused}\n")), "{unused}");
    // Without PropagateDeletes, none of the removals' grants.
    let without: BTreeSet<String> = function_s3_grants(&render(&params[..3]))
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    for removal_only in DELETE_ACTIONS {
        assert!(granted.contains(removal_only), "{removal_only}");
        assert!(!without.contains(removal_only), "{removal_only}");
    }
}

/// What a propagated removal calls, granted only with PropagateDeletes=true.
const DELETE_ACTIONS: [&str; 4] = [
    "s3:DeleteObject",
    "s3:GetBucketVersioning",
    "s3:ListBucketVersions",
    "s3:GetObjectVersion",
];

/// PropagateDeletes=true adds exactly the removals' grants, each on its own resources (the
/// destination objects and buckets, the source's versions); false adds nothing.
#[test]
fn propagate_deletes_adds_exactly_the_delete_grants() {
    for mode in MODES {
        let create = if mode == "S3" { "true" } else { "false" };
        let off = [("TriggerMode", mode), ("CreateSourceBucket", create)];
        assert_eq!(function_s3_grants(&render(&off)), expected_grants(None), "{mode}");
        let on = [
            ("TriggerMode", mode),
            ("CreateSourceBucket", create),
            ("PropagateDeletes", "true"),
        ];
        let rendered = render(&on);
        let mut expected = expected_grants(None);
        for d in DESTINATIONS {
            expected.insert(("s3:DeleteObject".into(), format!("arn:aws:s3:::{d}/*")));
            expected.insert(("s3:GetBucketVersioning".into(), format!("arn:aws:s3:::{d}")));
        }
        expected.insert(("s3:ListBucketVersions".into(), format!("arn:aws:s3:::{SOURCE}")));
        expected.insert(("s3:GetObjectVersion".into(), format!("arn:aws:s3:::{SOURCE}/*")));
        assert_eq!(function_s3_grants(&rendered), expected, "{mode}");
        assert_eq!(violations(&statements(&rendered)), Vec::<String>::new(), "{mode}");
    }
}

/// The `sts:*` statements of the function's role: (actions, resources) each.
fn sts_grants(rendered: &Value) -> Vec<(Vec<String>, Vec<String>)> {
    statements(rendered)
        .into_iter()
        .filter(|s| s.at.starts_with(&format!("{ROLE}.")))
        .filter(|s| {
            s.actions
                .iter()
                .any(|a| a.to_ascii_lowercase().starts_with("sts:") || a == "*")
        })
        .map(|s| {
            assert!(s.allow && !s.negated, "{}", s.at);
            (s.actions, s.resources)
        })
        .collect()
}

#[test]
fn tenant_roles_are_assumable_exactly_as_listed_and_none_by_default() {
    assert_eq!(
        sts_grants(&render(&[])),
        Vec::new(),
        "no TenantRoleArns: no sts statement"
    );
    assert_eq!(
        sts_grants(&render(&[("TenantRoleArns", "")])),
        Vec::new(),
        "empty TenantRoleArns: no sts statement"
    );
    let roles =
        "arn:aws:iam::111122223333:role/artifact-writer,arn:aws:iam::444455556666:role/exports/writer";
    let grants = sts_grants(&render(&[("TenantRoleArns", roles)]));
    assert_eq!(
        grants,
        [(
            vec!["sts:AssumeRole".to_string()],
            roles.split(',').map(str::to_string).collect::<Vec<_>>()
        )]
    );
    // A wildcard would let the function assume every role that trusts it.
    for bad in [
        "*",
        "arn:aws:iam::111122223333:role/*",
        "arn:aws:iam::*:role/w",
        "arn:aws:iam::111122223333:user/u",
    ] {
        let rendered = render_file(&template_path(), &[("TenantRoleArns", bad)]);
        assert!(
            rendered["parameterErrors"].to_string().contains("TenantRoleArns"),
            "TenantRoleArns={bad:?} must be refused; got {}",
            rendered["parameterErrors"]
        );
    }
}

#[test]
fn the_role_names_the_stacks_own_partition() {
    for partition in ["aws", "aws-cn", "aws-us-gov"] {
        let rendered = render(&[
            ("AWS::Partition", partition),
            ("PluginBucketName", "plugin-store"),
        ]);
        let grants = function_s3_grants(&rendered);
        let expected: BTreeSet<(String, String)> = expected_grants(Some("plugin-store/*"))
            .into_iter()
            .map(|(a, r)| (a, r.replacen("arn:aws:", &format!("arn:{partition}:"), 1)))
            .collect();
        assert_eq!(grants, expected, "{partition}");
        assert_eq!(
            violations(&statements(&rendered)),
            Vec::<String>::new(),
            "{partition}"
        );
        assert_eq!(
            resource(&rendered, ROLE)["Properties"]["ManagedPolicyArns"],
            json!([BASIC_EXECUTION_ROLE.replacen("arn:aws:", &format!("arn:{partition}:"), 1)]),
            "{partition}"
        );
    }
}

/// The statement with `sid` anywhere in the function role's policies.
fn statement_with_sid(rendered: &Value, sid: &str) -> Option<Value> {
    let policies = resource(rendered, ROLE)["Properties"]["Policies"].as_array()?;
    policies
        .iter()
        .filter_map(|p| p["PolicyDocument"]["Statement"].as_array())
        .flatten()
        .find(|s| s["Sid"] == sid)
        .cloned()
}

/// A `ConfigKey` ending in `/` (org documents) grants listing that prefix, one level, and
/// reading the `.json` documents under it and their snapshot; one document grants neither.
#[test]
fn the_org_documents_form_may_list_its_prefix_one_level_and_read_its_documents() {
    let prefix = "artifact-export/orgs/";
    let rendered = render(&[("ConfigKey", prefix)]);
    let mut expected = expected_grants(None);
    expected.remove(&(
        "s3:GetObject".to_string(),
        format!("arn:aws:s3:::{CONFIG_BUCKET}/{CONFIG_KEY}"),
    ));
    expected.insert((
        "s3:GetObject".into(),
        format!("arn:aws:s3:::{CONFIG_BUCKET}/{prefix}*.json"),
    ));
    expected.insert((
        "s3:GetObject".into(),
        format!("arn:aws:s3:::{CONFIG_BUCKET}/{prefix}_snapshot.jsonl"),
    ));
    expected.insert(("s3:ListBucket".into(), format!("arn:aws:s3:::{CONFIG_BUCKET}")));
    assert_eq!(function_s3_grants(&rendered), expected);
    assert_eq!(violations(&statements(&rendered)), Vec::<String>::new());
    let list = statement_with_sid(&rendered, "ListOrgDocuments").expect("the listing statement");
    assert_eq!(
        list["Condition"],
        json!({"StringEquals": {"s3:prefix": prefix, "s3:delimiter": "/"}})
    );
    let single = render(&[]);
    assert_eq!(function_s3_grants(&single), expected_grants(None));
    assert_eq!(statement_with_sid(&single, "ListOrgDocuments"), None);
}
