//! `deploy/template.yaml`: cfn-lint accepts it, and for every trigger mode the template as
//! CloudFormation would create it (rendered by `deploy/render.py`: the SAM transform by
//! aws-sam-translator, then parameters, conditions and intrinsic functions by cloud-radar)
//! grants the function exactly the S3 access its code needs and nothing broader (the role SAM
//! generates, with the policies SAM adds), refuses parameters that would widen it, wires the
//! trigger, the dead-letter queues and the alarms, and gives the function an environment it
//! accepts. No AWS account and no S3 server needed.
//!
//! The tools come from `target/tools-venv` (`.ci/run` and `make tools` install cfn-lint,
//! aws-sam-translator and cloud-radar there); `cfn-lint` on PATH is the fallback. A missing
//! tool fails the test: it is never skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use artifact_export::env::{ConfigLocation, Settings};
use artifact_export::event::Trigger;
use artifact_export::metrics::{self, NAMESPACE};
use artifact_export::plan::PluginRun;
use artifact_export::reason::ReasonCode;
use artifact_export::report::{Outcome, RecordReport, Report};
use serde_json::{Value, json};

const INSTALL_HINT: &str = "install the tools with `make tools` (or run .ci/run), which puts cfn-lint, \
                            aws-sam-translator and cloud-radar into target/tools-venv";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template_path() -> PathBuf {
    repo().join("deploy/template.yaml")
}

fn template_text() -> String {
    std::fs::read_to_string(template_path()).expect("deploy/template.yaml is readable")
}

/// A command with a clean environment: the machine's AWS_CA_BUNDLE and other CA and AWS
/// variables change what Python tools do, so only PATH and HOME are passed on.
fn clean(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_else(|| "/".into()))
        .current_dir(repo());
    cmd
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The venv's tool, else the one on PATH, else a failure that says how to install it.
fn tool(name: &str) -> PathBuf {
    let venv = repo().join("target/tools-venv/bin").join(name);
    if venv.is_file() {
        return venv;
    }
    on_path(name)
        .unwrap_or_else(|| panic!("{name} not found in target/tools-venv/bin nor on PATH: {INSTALL_HINT}"))
}

fn text_of(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ------------------------------------------------------------------ rendering

const SOURCE: &str = "shared-source";
const DESTINATIONS: [&str; 3] = ["org1-export", "org2-export", "org2-archive"];
const CONFIG_BUCKET: &str = "export-config";
const CONFIG_KEY: &str = "artifact-export/config.json";

fn base_params() -> Vec<(String, String)> {
    [
        ("SourceBucketName", SOURCE.to_string()),
        ("DestinationBucketNames", DESTINATIONS.join(",")),
        ("ConfigBucketName", CONFIG_BUCKET.to_string()),
        ("ConfigKey", CONFIG_KEY.to_string()),
        ("SuffixToCopy", "jpg,pdf,indd,xml".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Renders `template` with the base parameters overridden by `params`.
fn render_file(template: &Path, params: &[(&str, &str)]) -> Value {
    // The venv's python: render.py needs aws-sam-translator and cloud-radar, which only
    // `make tools` installs.
    let python = repo().join("target/tools-venv/bin/python");
    assert!(
        python.is_file(),
        "no target/tools-venv/bin/python: {INSTALL_HINT}"
    );
    let mut all = base_params();
    for (k, v) in params {
        all.retain(|(name, _)| name != k);
        all.push((k.to_string(), v.to_string()));
    }
    let out = clean(&python)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(repo().join("deploy/render.py"))
        .arg(template)
        .args(all.iter().map(|(k, v)| format!("{k}={v}")))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "deploy/render.py failed ({INSTALL_HINT} if a library is missing):\n{}",
        text_of(&out)
    );
    serde_json::from_slice(&out.stdout).expect("render.py prints JSON")
}

/// Renders the real template and requires valid parameters and no violated rule.
fn render(params: &[(&str, &str)]) -> Value {
    let rendered = render_file(&template_path(), params);
    assert_eq!(rendered["parameterErrors"], json!([]), "parameters {params:?}");
    assert_eq!(rendered["ruleViolations"], json!([]), "parameters {params:?}");
    rendered
}

fn resource<'a>(rendered: &'a Value, id: &str) -> &'a Value {
    let r = &rendered["resources"][id];
    assert!(r.is_object(), "resource {id} exists in this mode");
    r
}

fn has_resource(rendered: &Value, id: &str) -> bool {
    rendered["resources"].get(id).is_some()
}

/// A value or a list of values as a list of strings.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    }
}

// ------------------------------------------------------------------ IAM checks

/// One IAM policy statement and where it was found.
#[derive(Debug)]
struct Statement {
    at: String,
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
    /// NotAction / NotResource: grants everything but a list, never least privilege.
    negated: bool,
}

/// The one managed policy the function's role may have: SAM attaches it to every function
/// role (CloudWatch Logs only).
const BASIC_EXECUTION_ROLE: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

/// [`BASIC_EXECUTION_ROLE`] in any partition (`arn:aws-cn:iam::aws:policy/…`).
fn is_basic_execution_role(arn: &str) -> bool {
    arn.strip_prefix("arn:")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(_, rest)| rest == "iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
}

/// Every policy statement of the rendered template (after the SAM transform, so the
/// function's `Policies` are its role's, next to what SAM adds): roles, policies, and queue,
/// bucket and topic policies. A managed policy other than [`BASIC_EXECUTION_ROLE`] is
/// reported as a statement granting `*` so the checks reject it: its content is not here
/// to check.
fn statements(rendered: &Value) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut document = |at: String, doc: &Value| {
        let list = match &doc["Statement"] {
            Value::Array(list) => list.clone(),
            one => vec![one.clone()],
        };
        for (i, s) in list.iter().enumerate() {
            out.push(Statement {
                at: format!(
                    "{at}.Statement[{i}]{}",
                    s["Sid"].as_str().map(|s| format!(" ({s})")).unwrap_or_default()
                ),
                allow: s["Effect"] == "Allow",
                actions: strings(&s["Action"]),
                resources: strings(&s["Resource"]),
                negated: s.get("NotAction").is_some() || s.get("NotResource").is_some(),
            });
        }
    };
    for (id, r) in rendered["resources"].as_object().unwrap() {
        let props = &r["Properties"];
        match r["Type"].as_str().unwrap_or_default() {
            "AWS::Serverless::Function" => panic!("{id}: the SAM transform was not applied"),
            "AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group" => {
                for (i, p) in props["Policies"].as_array().into_iter().flatten().enumerate() {
                    document(format!("{id}.Policies[{i}]"), &p["PolicyDocument"]);
                }
                for (i, arn) in strings(&props["ManagedPolicyArns"]).iter().enumerate() {
                    if !is_basic_execution_role(arn) {
                        document(
                            format!("{id}.ManagedPolicyArns[{i}]"),
                            &json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Sid": format!("managed policy {arn}")}}),
                        );
                    }
                }
            }
            "AWS::IAM::Policy"
            | "AWS::IAM::ManagedPolicy"
            | "AWS::SQS::QueuePolicy"
            | "AWS::S3::BucketPolicy"
            | "AWS::SNS::TopicPolicy" => document(id.clone(), &props["PolicyDocument"]),
            _ => {}
        }
    }
    out
}

fn is_s3_action(action: &str) -> bool {
    let a = action.to_ascii_lowercase();
    a.starts_with("s3:") || a == "*"
}

/// What makes a statement broader than least privilege: a wildcard S3 action (`s3:*`,
/// `s3:Get*`, `*`), `NotAction`/`NotResource`, or an S3 action on `Resource: "*"` or on an ARN
/// whose bucket part has a wildcard (`arn:aws:s3:::*`, `arn:aws:s3:::*/*`). A wildcard is
/// accepted only in the key part, after the bucket's `/`.
fn violations(statements: &[Statement]) -> Vec<String> {
    let mut found = Vec::new();
    for s in statements.iter().filter(|s| s.allow) {
        if s.negated {
            found.push(format!("{}: NotAction/NotResource", s.at));
        }
        for a in s.actions.iter().filter(|a| is_s3_action(a) && a.contains('*')) {
            found.push(format!("{}: wildcard S3 action {a:?}", s.at));
        }
        if !s.actions.iter().any(|a| is_s3_action(a)) {
            continue;
        }
        if s.resources.is_empty() {
            found.push(format!("{}: S3 action without Resource", s.at));
        }
        for r in &s.resources {
            // `arn:PARTITION:s3:::bucket[/key]`, any partition.
            let bucket = r
                .strip_prefix("arn:")
                .and_then(|rest| rest.split_once(":s3:::"))
                .filter(|(partition, _)| partition.starts_with("aws") && !partition.contains(':'))
                .map(|(_, rest)| rest.split('/').next().unwrap_or(""));
            match bucket {
                Some(b) if !b.is_empty() && !b.contains('*') && !b.contains('?') => {}
                _ => found.push(format!("{}: S3 action on resource {r:?}", s.at)),
            }
        }
    }
    found
}

/// The function's role, as SAM names it.
const ROLE: &str = "ExportFunctionRole";

/// The (S3 action, resource) pairs the function's role allows.
fn function_s3_grants(rendered: &Value) -> BTreeSet<(String, String)> {
    statements(rendered)
        .iter()
        .filter(|s| s.allow && s.at.starts_with(&format!("{ROLE}.")))
        .flat_map(|s| {
            s.actions
                .iter()
                .filter(|a| is_s3_action(a))
                .flat_map(|a| s.resources.iter().map(move |r| (a.clone(), r.clone())))
        })
        .collect()
}

/// What the code needs, from the S3 calls it makes: CopyObject / UploadPartCopy / HeadObject
/// (GetObject on the source, PutObject on the destination), GetObjectTagging and
/// PutObjectTagging (tags carried over), CreateMultipartUpload / CompleteMultipartUpload
/// (PutObject), AbortMultipartUpload, the config's GetObject, plugins' GetObject. Not
/// GetObjectVersion (no copy names a source version) nor ListMultipartUploadParts (parts are
/// never listed): [`the_role_grants_only_what_the_code_calls`] ties this to the source.
fn expected_grants(plugins: Option<&str>) -> BTreeSet<(String, String)> {
    let source_objects = format!("arn:aws:s3:::{SOURCE}/*");
    let source_bucket = format!("arn:aws:s3:::{SOURCE}");
    let config = format!("arn:aws:s3:::{CONFIG_BUCKET}/{CONFIG_KEY}");
    let mut pairs: Vec<(String, String)> = vec![
        ("s3:GetObject".into(), source_objects.clone()),
        ("s3:GetObjectTagging".into(), source_objects),
        ("s3:ListBucket".into(), source_bucket),
        ("s3:GetObject".into(), config),
    ];
    for d in DESTINATIONS {
        for a in [
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:PutObjectAcl",
            "s3:AbortMultipartUpload",
            // A retried CompleteMultipartUpload HEADs the destination.
            "s3:GetObject",
        ] {
            pairs.push((a.into(), format!("arn:aws:s3:::{d}/*")));
        }
        // A retried CreateMultipartUpload lists the key's uploads.
        pairs.push((
            "s3:ListBucketMultipartUploads".into(),
            format!("arn:aws:s3:::{d}"),
        ));
    }
    if let Some(p) = plugins {
        pairs.push(("s3:GetObject".into(), format!("arn:aws:s3:::{p}")));
    }
    pairs.into_iter().collect()
}

/// A plain-text guard on the template file itself, comments excluded: no `s3:*` and no
/// `Resource: "*"` anywhere.
fn textual_violations(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with('#') {
            continue;
        }
        let squeezed: String = code
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '"' && *c != '\'')
            .collect();
        if squeezed.to_ascii_lowercase().contains("s3:*") {
            found.push(format!("line {}: s3:* in {line:?}", n + 1));
        }
        if squeezed == "Resource:*"
            || squeezed.starts_with("Resource:*,")
            || squeezed.starts_with("Resource:[*")
        {
            found.push(format!("line {}: Resource \"*\" in {line:?}", n + 1));
        }
    }
    found
}

const MODES: [&str; 3] = ["S3", "SQS", "EventBridge"];

// ------------------------------------------------------------------ tests

#[test]
fn cfn_lint_accepts_the_template() {
    let cfn_lint = tool("cfn-lint");
    let out = clean(&cfn_lint)
        .arg(template_path())
        .output()
        .expect("cfn-lint runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {}:\n{}",
        cfn_lint.display(),
        template_path().display(),
        text_of(&out)
    );
}

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
fn the_expected_bucket_owner_reaches_the_function() {
    let rendered = render(&[("ExpectedBucketOwner", "111122223333")]);
    assert_eq!(
        resource(&rendered, "ExportFunction")["Properties"]["Environment"]["Variables"]["EXPECTED_BUCKET_OWNER"],
        json!("111122223333")
    );
    let rendered = render_file(&template_path(), &[("ExpectedBucketOwner", "1111-2222-3333")]);
    assert_ne!(rendered["parameterErrors"], json!([]));
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

/// Every metric name the function can emit: the EMF lines of a report with a copy that has
/// an export lag, a failure and a plugin decision, so every optional metric is there.
fn emitted_metric_names() -> BTreeSet<String> {
    let mut copied = RecordReport::failed("Records[0]".into(), None, None);
    copied.org = Some("org1".into());
    copied.outcome = Outcome::Copied;
    copied.bytes = Some(1);
    copied.lag_ms = Some(1500);
    copied.plugin = Some(PluginRun {
        decision_ms: 2,
        error: None,
        fallback: false,
    });
    let mut failed = RecordReport::failed("Records[1]".into(), None, None);
    failed.org = Some("org1".into());
    failed.reason_code = Some(ReasonCode::AccessDenied);
    let report = Report::new(Trigger::S3, vec![copied, failed]);
    let mut names = BTreeSet::new();
    for line in metrics::emf_lines(&report, 0) {
        let line: Value = serde_json::from_str(&line).unwrap();
        for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            names.insert(m["Name"].as_str().unwrap().to_string());
        }
    }
    names
}

#[test]
fn alarms_and_dashboard_watch_the_metrics_the_function_emits() {
    let emitted = emitted_metric_names();
    for name in [
        "ExportLag",
        "CopyLatency",
        "Failed",
        "PluginDecisionTime",
        "PluginFallbacks",
    ] {
        assert!(emitted.contains(name), "{name} in {emitted:?}");
    }
    let quiet = render(&[]);
    let failed = &resource(&quiet, "FailedRecordsAlarm")["Properties"];
    assert_eq!(failed["Namespace"], NAMESPACE);
    assert_eq!(failed["MetricName"], "Failed");
    assert!(
        failed.get("Dimensions").is_none(),
        "the all-orgs metric has no dimensions"
    );
    assert_eq!(
        (&failed["Threshold"], &failed["ComparisonOperator"]),
        (&json!(0), &json!("GreaterThanThreshold"))
    );
    let errors = &resource(&quiet, "FunctionErrorsAlarm")["Properties"];
    assert_eq!(
        (&errors["Namespace"], &errors["MetricName"]),
        (&json!("AWS/Lambda"), &json!("Errors"))
    );
    let dlq = &resource(&quiet, "InvokeDeadLetterAlarm")["Properties"];
    assert_eq!(
        dlq["Dimensions"][0]["Value"],
        "{{InvokeDeadLetterQueue.QueueName}}"
    );
    assert!(!has_resource(&quiet, "AlarmTopic") && !has_resource(&quiet, "Dashboard"));
    assert!(failed.get("AlarmActions").is_none());

    let loud = render(&[
        ("AlarmEmail", "ops@example.com"),
        ("CreateDashboard", "true"),
        ("TriggerMode", "SQS"),
    ]);
    assert_eq!(
        resource(&loud, "AlarmTopic")["Properties"]["Subscription"][0]["Endpoint"],
        "ops@example.com"
    );
    for alarm in [
        "FunctionErrorsAlarm",
        "FailedRecordsAlarm",
        "ExportLagAlarm",
        "InvokeDeadLetterAlarm",
        "SourceDeadLetterAlarm",
    ] {
        assert_eq!(
            resource(&loud, alarm)["Properties"]["AlarmActions"],
            json!(["{{ref:AlarmTopic}}"]),
            "{alarm}"
        );
    }
    let body = resource(&loud, "Dashboard")["Properties"]["DashboardBody"]
        .as_str()
        .unwrap()
        .to_string();
    let dashboard: Value = serde_json::from_str(&body).expect("the dashboard body is JSON");
    let mut charted = BTreeSet::new();
    let mut searched_by_reason = false;
    for widget in dashboard["widgets"].as_array().unwrap() {
        // A row names a namespace and metric; "." repeats the previous row's value.
        let mut namespace = String::new();
        for row in widget["properties"]["metrics"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            match row[0].as_str() {
                Some(".") | Some("...") => {}
                Some(ns) => namespace = ns.to_string(),
                None => namespace.clear(),
            }
            if namespace == NAMESPACE && row[0] != "..." {
                charted.insert(row[1].as_str().unwrap().to_string());
            }
            if let Some(expr) = row[0]["expression"].as_str() {
                // `{ArtifactExport,Org}` or `{ArtifactExport,ReasonCode}`: dimension sets the
                // function publishes.
                let schema = expr.split('{').nth(1).and_then(|r| r.split('}').next()).unwrap();
                assert!(
                    [format!("{NAMESPACE},Org"), format!("{NAMESPACE},ReasonCode")]
                        .contains(&schema.to_string()),
                    "{expr}"
                );
                if schema.ends_with("ReasonCode") {
                    searched_by_reason = true;
                }
                let names: Vec<&str> = expr
                    .split("MetricName=\"")
                    .skip(1)
                    .map(|r| r.split('"').next().unwrap())
                    .collect();
                assert!(!names.is_empty(), "{expr}");
                charted.extend(names.iter().map(|n| n.to_string()));
            }
        }
    }
    assert!(charted.len() >= 5, "{charted:?}");
    for name in [
        "ExportLag",
        "Failed",
        "PluginDecisionTime",
        "PluginTraps",
        "PluginFallbacks",
    ] {
        assert!(charted.contains(name), "the dashboard charts {name}: {charted:?}");
    }
    assert!(searched_by_reason, "a widget charts Failed by ReasonCode");
    for name in &charted {
        assert!(
            emitted.contains(name),
            "the dashboard charts {name}, which the function does not emit ({emitted:?})"
        );
    }
}

#[test]
fn the_export_lag_alarm_is_p99_over_the_threshold_parameter_to_the_alarm_topic() {
    let default = render(&[("AlarmEmail", "ops@example.com")]);
    let alarm = &resource(&default, "ExportLagAlarm")["Properties"];
    assert_eq!(alarm["Namespace"], NAMESPACE);
    assert_eq!(alarm["MetricName"], "ExportLag");
    assert!(
        alarm.get("Dimensions").is_none(),
        "the all-orgs metric has no dimensions"
    );
    assert_eq!(alarm["ExtendedStatistic"], "p99");
    assert!(
        alarm.get("Statistic").is_none(),
        "Statistic and ExtendedStatistic exclude each other"
    );
    assert_eq!(alarm["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(alarm["AlarmActions"], json!(["{{ref:AlarmTopic}}"]));
    // 15 minutes by default, the objective of S3 Replication Time Control.
    assert_eq!(alarm["Threshold"].to_string().trim_matches('"'), "900000");
    let tight = render(&[("ExportLagThresholdMs", "60000")]);
    let alarm = &resource(&tight, "ExportLagAlarm")["Properties"];
    assert_eq!(alarm["Threshold"].to_string().trim_matches('"'), "60000");
    assert!(alarm.get("AlarmActions").is_none(), "no topic without AlarmEmail");
    // The dashboard draws the threshold on the lag chart.
    let dashboard = render(&[("CreateDashboard", "true"), ("ExportLagThresholdMs", "60000")]);
    let body: Value = serde_json::from_str(
        resource(&dashboard, "Dashboard")["Properties"]["DashboardBody"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let lag = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["properties"]["metrics"][0][1] == "ExportLag")
        .expect("a widget charts ExportLag");
    assert_eq!(lag["properties"]["metrics"][1][1]["stat"], "p99");
    assert_eq!(lag["properties"]["annotations"]["horizontal"][0]["value"], 60000);
}

#[test]
fn the_function_accepts_the_environment_the_template_gives_it() {
    let rendered = render(&[("CopyConcurrency", "24"), ("ConfigRefreshSeconds", "30")]);
    let function = &resource(&rendered, "ExportFunction")["Properties"];
    assert_eq!(function["Runtime"], "provided.al2023");
    assert_eq!(function["Architectures"], json!(["arm64"]));
    assert_eq!(function["Handler"], "bootstrap");
    // The code `make lambda` builds; render.py stands in for `sam package`'s upload.
    assert!(template_text().contains("      CodeUri: ../target/lambda/artifact-export/\n"));
    assert_eq!(
        function["Code"],
        json!({"S3Bucket": "artifact-export-packaged", "S3Key": "artifact-export.zip"})
    );
    assert_eq!(function["Role"], format!("{{{{{ROLE}.Arn}}}}"));
    let vars = function["Environment"]["Variables"].as_object().unwrap().clone();
    let settings = Settings::from_lookup(|name| vars.get(name).and_then(Value::as_str).map(str::to_string))
        .expect("the template's environment is valid");
    assert_eq!(
        settings.config_location,
        ConfigLocation::S3 {
            bucket: CONFIG_BUCKET.into(),
            key: CONFIG_KEY.into()
        }
    );
    assert_eq!(settings.copy_concurrency, 24);
    assert_eq!(settings.config_refresh.as_secs(), 30);
    assert!(
        settings.source_bucket.is_some(),
        "the tenancy check learns the source bucket"
    );
    for name in [
        "SUFFIX_TO_COPY",
        "CONFIGURATION_BUCKET",
        "CONFIGURATION_KEY",
        "COPY_CONCURRENCY",
        "SOURCE_BUCKET",
    ] {
        assert!(vars.contains_key(name), "{name}");
    }
}

#[test]
fn bucket_and_key_parameters_refuse_what_would_widen_the_role() {
    // Each of these would put a wildcard into a resource ARN of the role (`arn:aws:s3:::*/*`,
    // every object of the config bucket, …); CloudFormation must refuse the parameter.
    let refused: [(&str, &str); 9] = [
        ("SourceBucketName", "*"),
        ("DestinationBucketNames", "*"),
        ("DestinationBucketNames", "org1-export,*"),
        ("DestinationBucketNames", "org1-export,org?-export"),
        ("ConfigBucketName", "*"),
        ("ConfigKey", "*"),
        ("ConfigKey", "artifact-export/${aws:username}"),
        ("PluginBucketName", "*"),
        ("PluginKeyPrefix", "plugins/*"),
    ];
    for (name, value) in refused {
        let mut params = vec![(name, value)];
        if name == "PluginKeyPrefix" {
            params.push(("PluginBucketName", "plugin-store"));
        }
        let rendered = render_file(&template_path(), &params);
        let errors = rendered["parameterErrors"].to_string();
        assert!(
            errors.contains(name),
            "{name}={value:?} must be refused; got {errors}"
        );
    }
    // Names and keys as they really are still pass.
    render(&[
        ("DestinationBucketNames", "a.b-c,org1-export,x12"),
        ("ConfigKey", "dir/sub dir/config (v2).json"),
        ("PluginBucketName", "plugin-store"),
        ("PluginKeyPrefix", ""),
    ]);
}

#[test]
fn without_its_allowed_pattern_a_star_destination_would_grant_every_bucket() {
    // The pattern is what stands between a `*` and `arn:aws:s3:::*/*`: without it, the
    // rendered role has exactly the violation the IAM check reports.
    let text = template_text();
    let pattern = "    # Each entry must be a bucket name: a `*` would widen the role to arn:aws:s3:::*/*.\n    AllowedPattern: \"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$\"\n";
    assert_eq!(
        text.matches(pattern).count(),
        1,
        "DestinationBucketNames has its pattern"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.yaml");
    std::fs::write(&path, text.replacen(pattern, "", 1)).unwrap();
    let rendered = render_file(&path, &[("DestinationBucketNames", "*")]);
    assert_eq!(rendered["parameterErrors"], json!([]));
    let found = violations(&statements(&rendered));
    assert!(
        found
            .iter()
            .any(|v| v.contains("S3 action on resource \"arn:aws:s3:::*/*\"")),
        "{found:#?}"
    );
}

/// SDK operations → the IAM actions S3 checks for them (the service authorization reference
/// for Amazon S3). CopyObject reads the source's tags and writes them (the default tagging
/// directive copies them); a multipart copy reads them and sends them with
/// CreateMultipartUpload.
const S3_CALLS: [(&str, &[&str]); 14] = [
    (
        "copy_object",
        &[
            "s3:GetObject",
            "s3:GetObjectTagging",
            "s3:PutObject",
            "s3:PutObjectTagging",
        ],
    ),
    ("upload_part_copy", &["s3:GetObject", "s3:PutObject"]),
    ("head_object", &["s3:GetObject"]),
    ("get_object", &["s3:GetObject"]),
    ("get_object_tagging", &["s3:GetObjectTagging"]),
    (
        "create_multipart_upload",
        &["s3:PutObject", "s3:PutObjectTagging"],
    ),
    ("complete_multipart_upload", &["s3:PutObject"]),
    ("abort_multipart_upload", &["s3:AbortMultipartUpload"]),
    ("list_parts", &["s3:ListMultipartUploadParts"]),
    ("list_multipart_uploads", &["s3:ListBucketMultipartUploads"]),
    ("list_objects_v2", &["s3:ListBucket"]),
    ("put_object", &["s3:PutObject"]),
    ("put_object_tagging", &["s3:PutObjectTagging"]),
    ("delete_object", &["s3:DeleteObject"]),
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
    }
    for call in [
        "copy_object",
        "upload_part_copy",
        "abort_multipart_upload",
        "get_object",
    ] {
        assert!(calls.contains(call), "{call} found in host/src ({calls:?})");
    }
    let rendered = render(&[
        ("PluginBucketName", "plugin-store"),
        ("TriggerMode", "SQS"),
        ("CreateSourceBucket", "false"),
    ]);
    let granted: BTreeSet<String> = function_s3_grants(&rendered)
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        granted, needed,
        "granted (left) vs needed by the calls {calls:?} (right)"
    );
    for unused in ["s3:GetObjectVersion", "s3:ListMultipartUploadParts"] {
        assert!(!granted.contains(unused), "{unused}");
        assert!(!template_text().contains(&format!("- {unused}\n")), "{unused}");
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
