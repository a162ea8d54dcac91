//! `make demo`: the main job on the embedded default.
//!
//! Uses the local Garage that `tests/servers/up.sh` started, creates the sample buckets
//! (`config/sample.json`), uploads the config and a handful of sample files into a shared
//! source bucket, runs `artifact-export invoke` on an S3 event announcing them, and shows
//! what landed where.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use artifact_export::key_encoding::encode_notification_key;
use artifact_export::s3_client;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::json;

const SOURCE: &str = "artifact-source";
const CONFIG_BUCKET: &str = "artifact-config";
const CONFIG_KEY: &str = "export/config.json";
const SUFFIXES: &str = "jpg,pdf,indd,xml";

const SAMPLES: &[(&str, &str)] = &[
    ("org1/photos/summer party.jpg", "a photo"),
    ("org1/notes/todo.txt", "not exported: suffix not selected"),
    ("org2/catalog/2026 spring+summer.pdf", "a catalog"),
    ("org3/layouts/cover.indd", "an InDesign layout"),
    ("org4/feeds/products.XML", "a product feed"),
    ("org9/unknown.jpg", "not exported: no org owns org9/"),
];

#[tokio::main]
async fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let env_file = root.join("target/test-servers/env");
    let text = std::fs::read_to_string(&env_file).with_context(|| {
        format!(
            "{}: start the local servers first (make demo does)",
            env_file.display()
        )
    })?;
    let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let var = |k: &str| {
        vars.get(k)
            .map(|v| v.to_string())
            .with_context(|| format!("{k} missing in env file"))
    };
    let (endpoint, region, access, secret) = (
        var("GARAGE_ENDPOINT")?,
        var("GARAGE_REGION")?,
        var("GARAGE_ACCESS_KEY_ID")?,
        var("GARAGE_SECRET_ACCESS_KEY")?,
    );
    let client = s3_client::for_endpoint(&endpoint, &region, &access, &secret);

    let config_text = std::fs::read_to_string(root.join("config/sample.json"))?;
    let config: serde_json::Value = serde_json::from_str(&config_text)?;
    let destinations: Vec<String> = config["customers"]
        .as_array()
        .context("sample config has customers")?
        .iter()
        .filter_map(|c| c["destinationBucket"].as_str().map(str::to_string))
        .collect();
    println!("local Garage at {endpoint}");
    for bucket in [SOURCE, CONFIG_BUCKET]
        .into_iter()
        .chain(destinations.iter().map(String::as_str))
    {
        ensure_bucket(&client, bucket).await?;
    }
    put(&client, CONFIG_BUCKET, CONFIG_KEY, config_text.into_bytes()).await?;
    println!("config s3://{CONFIG_BUCKET}/{CONFIG_KEY} <- config/sample.json");

    let mut records = Vec::new();
    for (key, body) in SAMPLES {
        let out = put(&client, SOURCE, key, body.as_bytes().to_vec()).await?;
        records.push(json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
            "eventTime": "2026-11-25T12:00:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": {"name": SOURCE, "arn": format!("arn:aws:s3:::{SOURCE}")},
                "object": {"key": encode_notification_key(key), "size": body.len(), "eTag": out.trim_matches('"')}
            }
        }));
        println!("uploaded s3://{SOURCE}/{key}");
    }
    let demo_dir = root.join("target/demo");
    std::fs::create_dir_all(&demo_dir)?;
    let event_path = demo_dir.join("event.json");
    std::fs::write(
        &event_path,
        serde_json::to_string_pretty(&json!({"Records": records}))?,
    )?;

    let binary = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("artifact-export"))
        .context("locate the artifact-export binary")?;
    println!(
        "\n$ SUFFIX_TO_COPY={SUFFIXES} artifact-export invoke --event {}",
        event_path.display()
    );
    let status = Command::new(&binary)
        .args(["invoke", "--event"])
        .arg(&event_path)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_REGION", &region)
        .env("AWS_ACCESS_KEY_ID", &access)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("SUFFIX_TO_COPY", SUFFIXES)
        .env("CONFIGURATION_BUCKET", CONFIG_BUCKET)
        .env("CONFIGURATION_KEY", CONFIG_KEY)
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("AWS_PROFILE")
        .status()
        .with_context(|| format!("run {}", binary.display()))?;

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
    if !status.success() {
        bail!("artifact-export invoke exited with {status}");
    }
    Ok(())
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
