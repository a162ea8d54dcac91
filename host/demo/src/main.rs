//! `make demo`: the main job on the embedded default.
//!
//! Uses the local Garage that `tests/servers/up.sh` started, creates the sample buckets
//! (`config/sample.json`), attaches two example plugins from `plugins/` (org2 rewrites keys,
//! org3 filters drafts out), uploads a handful of sample files into a shared source bucket,
//! runs `artifact-export invoke` on one S3 event announcing them all, and prints one line per
//! record and what landed where. The full JSON report is kept in `target/demo/report.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use artifact_export::s3;
use artifact_export::s3::keys::encode_notification_key;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SOURCE: &str = "artifact-source";
const CONFIG_BUCKET: &str = "artifact-config";
const CONFIG_KEY: &str = "export/config.json";
const SUFFIXES: &str = "jpg,pdf,indd,xml";
const EVENT_TIME: &str = "2026-11-25T12:00:00.000Z";

const SAMPLES: &[(&str, &str)] = &[
    ("org1/photos/summer party.jpg", "a photo"),
    ("org1/notes/todo.txt", "not exported: suffix not selected"),
    (
        "org2/catalog/2026 spring+summer.pdf",
        "a catalog: org2's plugin rewrites its key",
    ),
    ("org3/layouts/cover.indd", "an InDesign layout"),
    (
        "org3/drafts/cover-v0.indd",
        "a draft: org3's plugin filters it out",
    ),
    ("org4/feeds/products.XML", "a product feed"),
    ("org9/unknown.jpg", "not exported: no org owns org9/"),
];

/// An example plugin attached to one org of the sample config.
struct DemoPlugin {
    org: &'static str,
    name: &'static str,
    wasm: &'static str,
    settings: Value,
    what: &'static str,
}

fn plugins() -> [DemoPlugin; 2] {
    [
        DemoPlugin {
            org: "org2",
            name: "key-rewriter",
            wasm: plugin_artifacts::KEY_REWRITER,
            settings: json!({"replacePrefix": {"from": "org2/", "to": "catalogs/"}, "datePartition": true}),
            what: "org2/… -> catalogs/<event date>/…",
        },
        DemoPlugin {
            org: "org3",
            name: "glob-filter",
            wasm: plugin_artifacts::GLOB_FILTER,
            settings: json!({"exclude": ["**/drafts/**"]}),
            what: "drops **/drafts/**",
        },
    ]
}

#[tokio::main]
async fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let server = Garage::from_env_file(&root.join("target/test-servers/env"))?;
    let client = s3::client::for_endpoint(&server.endpoint, &server.region, &server.access, &server.secret);

    let sample_text = std::fs::read_to_string(root.join("config/sample.json"))?;
    let mut config: Value = serde_json::from_str(&sample_text)?;
    let destinations: Vec<String> = config["customers"]
        .as_array()
        .context("sample config has customers")?
        .iter()
        .filter_map(|c| c["destinationBucket"].as_str().map(str::to_string))
        .collect();
    for bucket in [SOURCE, CONFIG_BUCKET]
        .into_iter()
        .chain(destinations.iter().map(String::as_str))
    {
        ensure_bucket(&client, bucket).await?;
    }
    println!(
        "local Garage at {}: buckets {SOURCE}, {CONFIG_BUCKET}, {}",
        server.endpoint,
        destinations.join(", ")
    );

    // Plugins live beside the config (a relative source is read from the config's bucket)
    // and are pinned by digest, as docs/plugins.md asks for plugins in S3.
    for plugin in plugins() {
        let bytes = std::fs::read(plugin.wasm).with_context(|| format!("read {}", plugin.wasm))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let key = format!("export/plugins/{}.wasm", plugin.name);
        put(&client, CONFIG_BUCKET, &key, bytes).await?;
        let customer = config["customers"]
            .as_array_mut()
            .and_then(|cs| cs.iter_mut().find(|c| c["org"] == plugin.org))
            .with_context(|| format!("sample config has {}", plugin.org))?;
        customer["plugin"] = json!({
            "source": format!("plugins/{}.wasm", plugin.name),
            "sha256": digest,
            "settings": plugin.settings,
        });
        println!(
            "plugin of {}: {} ({}), s3://{CONFIG_BUCKET}/{key}",
            plugin.org, plugin.name, plugin.what
        );
    }
    put(&client, CONFIG_BUCKET, CONFIG_KEY, serde_json::to_vec(&config)?).await?;
    println!("config s3://{CONFIG_BUCKET}/{CONFIG_KEY} <- config/sample.json + the plugins above");

    let mut records = Vec::new();
    for (key, body) in SAMPLES {
        let etag = put(&client, SOURCE, key, body.as_bytes().to_vec()).await?;
        records.push(json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": server.region,
            "eventTime": EVENT_TIME, "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": {"name": SOURCE, "arn": format!("arn:aws:s3:::{SOURCE}")},
                "object": {"key": encode_notification_key(key), "size": body.len(), "eTag": etag.trim_matches('"')}
            }
        }));
    }
    println!("uploaded {} objects to s3://{SOURCE}/", SAMPLES.len());

    let demo_dir = root.join("target/demo");
    std::fs::create_dir_all(&demo_dir)?;
    let event_path = demo_dir.join("event.json");
    std::fs::write(
        &event_path,
        serde_json::to_string_pretty(&json!({"Records": records}))?,
    )?;

    let binary = std::env::current_exe()?
        .parent()
        .map(|dir| dir.join("artifact-export"))
        .context("locate the artifact-export binary")?;
    println!(
        "\n$ SUFFIX_TO_COPY={SUFFIXES} artifact-export invoke --event {}",
        event_path.strip_prefix(&root).unwrap_or(&event_path).display()
    );
    let output = Command::new(&binary)
        .args(["invoke", "--event"])
        .arg(&event_path)
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .env("AWS_REGION", &server.region)
        .env("AWS_ACCESS_KEY_ID", &server.access)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret)
        .env("SUFFIX_TO_COPY", SUFFIXES)
        .env("CONFIGURATION_BUCKET", CONFIG_BUCKET)
        .env("CONFIGURATION_KEY", CONFIG_KEY)
        .env("RUST_LOG", "warn")
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("AWS_PROFILE")
        .output()
        .with_context(|| format!("run {}", binary.display()))?;
    let report_path = demo_dir.join("report.json");
    std::fs::write(&report_path, &output.stdout)?;
    let report: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "artifact-export invoke printed no report ({}); its stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let plugin_of: HashMap<&str, &str> = plugins().iter().map(|p| (p.org, p.name)).collect();
    for record in report["records"].as_array().context("report has records")? {
        println!("  {}", record_line(record, &plugin_of));
    }
    let t = &report["totals"];
    println!(
        "{} records: {} copied, {} skipped, {} superseded, {} failed (full report: {})",
        t["records"],
        t["copied"],
        t["skipped"],
        t["superseded"],
        t["failed"],
        report_path.strip_prefix(&root).unwrap_or(&report_path).display()
    );

    println!("\nwhat landed where:");
    for bucket in &destinations {
        let listing = client.list_objects_v2().bucket(bucket).send().await?;
        let keys: Vec<&str> = listing.contents().iter().filter_map(|o| o.key()).collect();
        println!(
            "  s3://{bucket}: {}",
            if keys.is_empty() {
                "(empty)".into()
            } else {
                keys.join(", ")
            }
        );
    }
    if !output.status.success() {
        bail!(
            "artifact-export invoke exited with {}; its stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// One line for one record of the report, naming a plugin's decision where one was made.
fn record_line(record: &Value, plugin_of: &HashMap<&str, &str>) -> String {
    let text = |field: &str| record[field].as_str().unwrap_or_default();
    let (outcome, key, org) = (text("outcome"), text("key"), text("org"));
    let plugin = plugin_of.get(org);
    match outcome {
        "copied" => {
            let (bucket, dest_key) = (text("destinationBucket"), text("destinationKey"));
            let note = match plugin {
                Some(name) if dest_key != key => format!("  (key rewritten by {org}'s plugin {name})"),
                Some(name) => format!("  ({org}'s plugin {name} let it through)"),
                None => String::new(),
            };
            format!("copied   {key} -> s3://{bucket}/{dest_key}{note}")
        }
        _ => {
            let reason = text("reason");
            let note = match plugin {
                Some(name) if reason.starts_with("plugin ") => {
                    format!("  (filtered out by {org}'s plugin {name})")
                }
                _ => String::new(),
            };
            format!("{outcome:<8} {key}: {reason}{note}")
        }
    }
}

/// The local Garage's address and key, from the env file `tests/servers/up.sh` writes.
struct Garage {
    endpoint: String,
    region: String,
    access: String,
    secret: String,
}

impl Garage {
    fn from_env_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "{}: start the local servers first (make demo does)",
                path.display()
            )
        })?;
        let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let var = |k: &str| {
            vars.get(k)
                .map(|v| v.to_string())
                .with_context(|| format!("{}: {k} missing", path.display()))
        };
        Ok(Garage {
            endpoint: var("GARAGE_ENDPOINT")?,
            region: var("GARAGE_REGION")?,
            access: var("GARAGE_ACCESS_KEY_ID")?,
            secret: var("GARAGE_SECRET_ACCESS_KEY")?,
        })
    }
}

async fn ensure_bucket(client: &Client, bucket: &str) -> Result<()> {
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = e.into_service_error();
            if e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists() {
                Ok(())
            } else {
                Err(e).with_context(|| format!("create bucket {bucket}"))
            }
        }
    }
}

async fn put(client: &Client, bucket: &str, key: &str, body: Vec<u8>) -> Result<String> {
    let out = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .with_context(|| format!("upload s3://{bucket}/{key}"))?;
    Ok(out.e_tag().unwrap_or_default().to_string())
}
