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

use serde_json::{Value, json};

/// Metric alarms and the dashboard: they watch the metrics the function emits.
mod alarms;
/// Least privilege: the function's role grants exactly what the code calls (S3, KMS, SQS, STS).
mod iam;
/// cfn-lint, the function's environment, and parameters that would widen the role.
mod template;
/// The trigger modes: S3 notifications, SQS with its dead-letter queue, EventBridge.
mod triggers;

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
/// PutObjectTagging (tags carried over), the Object Lock (GetObjectRetention and
/// GetObjectLegalHold on the source, PutObjectRetention, PutObjectLegalHold and
/// GetBucketObjectLockConfiguration on the destination), CreateMultipartUpload / CompleteMultipartUpload
/// (PutObject), AbortMultipartUpload, the config's GetObject, plugins' GetObject. Not
/// GetObjectVersion (no copy names a source version) nor ListMultipartUploadParts (parts are
/// never listed): [`iam::the_role_grants_only_what_the_code_calls`] ties this to the source.
fn expected_grants(plugins: Option<&str>) -> BTreeSet<(String, String)> {
    let source_objects = format!("arn:aws:s3:::{SOURCE}/*");
    let source_bucket = format!("arn:aws:s3:::{SOURCE}");
    let config = format!("arn:aws:s3:::{CONFIG_BUCKET}/{CONFIG_KEY}");
    let mut pairs: Vec<(String, String)> = vec![
        ("s3:GetObject".into(), source_objects.clone()),
        ("s3:GetObjectTagging".into(), source_objects.clone()),
        ("s3:GetObjectRetention".into(), source_objects.clone()),
        ("s3:GetObjectLegalHold".into(), source_objects),
        ("s3:ListBucket".into(), source_bucket),
        ("s3:GetObject".into(), config),
    ];
    for d in DESTINATIONS {
        for a in [
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:PutObjectAcl",
            "s3:PutObjectRetention",
            "s3:PutObjectLegalHold",
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
        // A locked source's copy asks whether the bucket has Object Lock.
        pairs.push((
            "s3:GetBucketObjectLockConfiguration".into(),
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
