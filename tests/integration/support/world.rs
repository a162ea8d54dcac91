//! A test's own little world on one server: uniquely named source, destination and config
//! buckets, a config in S3 that maps orgs to destinations, and an exporter over them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use artifact_export::env::{ConfigLocation, Settings};
use artifact_export::exporter::Exporter;
use artifact_export::s3::client::Timeouts;
use artifact_export::s3::limits::MIN_PART_SIZE;
use artifact_export::suffix::SuffixSet;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use super::servers::Server;

/// A bucket name no other test (or earlier run) uses.
pub fn unique_bucket(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t{:x}-{}-{n}-{label}", nanos & 0xff_ffff_ffff, std::process::id())
}

pub struct World {
    pub server: &'static Server,
    pub client: Client,
    pub source: String,
    pub config_bucket: String,
    pub config_key: String,
    /// (org, destination bucket)
    pub orgs: Vec<(String, String)>,
}

/// An uploaded object as its event would announce it.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
}

impl World {
    /// Buckets for `orgs` and a config `{"customers":[{org, destinationBucket}], "retry": 1}`.
    pub async fn new(server: &'static Server, orgs: &[&str]) -> World {
        Self::with_config(server, orgs, |orgs| {
            let customers: Vec<_> = orgs
                .iter()
                .map(|(org, bucket)| serde_json::json!({"org": org, "destinationBucket": bucket}))
                .collect();
            serde_json::json!({"customers": customers, "retry": 1}).to_string()
        })
        .await
    }

    /// Like [`World::new`], with the config text written by `config` from (org, bucket) pairs.
    pub async fn with_config(
        server: &'static Server,
        orgs: &[&str],
        config: impl FnOnce(&[(String, String)]) -> String,
    ) -> World {
        let client = server.client();
        let source = unique_bucket("src");
        let config_bucket = unique_bucket("cfg");
        create_bucket(&client, &source).await;
        create_bucket(&client, &config_bucket).await;
        let mut pairs = Vec::new();
        for org in orgs {
            let bucket = unique_bucket(&org.to_lowercase());
            create_bucket(&client, &bucket).await;
            pairs.push((org.to_string(), bucket));
        }
        let world = World {
            server,
            client,
            source,
            config_bucket,
            config_key: "export/config.json".into(),
            orgs: pairs,
        };
        world.write_config(&config(&world.orgs)).await;
        world
    }

    pub async fn write_config(&self, text: &str) {
        self.put_config_object(&self.config_key, text.as_bytes().to_vec())
            .await;
    }

    /// Uploads `body` to the config bucket under `key` (a config, a plugin beside it).
    pub async fn put_config_object(&self, key: &str, body: Vec<u8>) {
        self.client
            .put_object()
            .bucket(&self.config_bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload {key} to the config bucket: {e:?}"));
    }

    pub fn bucket_of(&self, org: &str) -> &str {
        &self.orgs.iter().find(|(o, _)| o == org).expect("known org").1
    }

    /// Settings as the function would read them, pointing at this world's config.
    pub fn settings(&self, suffixes: &str) -> Settings {
        Settings {
            suffixes: SuffixSet::parse_list(suffixes).unwrap(),
            config_location: ConfigLocation::S3 {
                bucket: self.config_bucket.clone(),
                key: self.config_key.clone(),
            },
            config_refresh: Duration::from_secs(60),
            multipart_threshold: artifact_export::s3::limits::COPY_OBJECT_LIMIT,
            multipart_part_size: MIN_PART_SIZE,
            copy_concurrency: 16,
            part_concurrency: 4,
            retry_base_delay: Duration::from_millis(5),
            local: None,
            timeouts: Timeouts::default(),
            deadline_margin: Duration::from_secs(5),
            source_bucket: Some(self.source.clone()),
            plugin_instances: 128,
            sts_endpoint: None,
            expected_bucket_owner: None,
        }
    }

    /// The environment the binary gets for this world, and nothing of this machine's: the
    /// server's `AWS_*` variables, `SUFFIX_TO_COPY` and where the config is.
    pub fn function_env(&self, suffixes: &str) -> Vec<(String, String)> {
        let mut env = self.server.child_env();
        env.extend([
            ("SUFFIX_TO_COPY".to_string(), suffixes.to_string()),
            ("CONFIGURATION_BUCKET".to_string(), self.config_bucket.clone()),
            ("CONFIGURATION_KEY".to_string(), self.config_key.clone()),
        ]);
        env
    }

    pub fn exporter(&self, settings: Settings) -> Exporter {
        Exporter::new(self.client.clone(), settings)
    }

    /// Uploads `body` to the source bucket.
    pub async fn put(&self, key: &str, body: &[u8]) -> Uploaded {
        self.put_object(
            self.client
                .put_object()
                .key(key)
                .body(ByteStream::from(body.to_vec())),
            key,
        )
        .await
    }

    /// Sends a prepared PutObject (metadata, tags…) to the source bucket.
    pub async fn put_object(
        &self,
        request: aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder,
        key: &str,
    ) -> Uploaded {
        let out = request
            .bucket(&self.source)
            .send()
            .await
            .expect("put source object");
        let head = self
            .client
            .head_object()
            .bucket(&self.source)
            .key(key)
            .send()
            .await
            .expect("head source object");
        Uploaded {
            bucket: self.source.clone(),
            key: key.to_string(),
            size: head.content_length().unwrap() as u64,
            etag: out.e_tag().unwrap().trim_matches('"').to_string(),
        }
    }

    /// The object's bytes, or `None` when it does not exist.
    pub async fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        get_bytes(&self.client, bucket, key).await
    }

    /// Keys in `bucket`.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .expect("list");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }
}

pub async fn create_bucket(client: &Client, bucket: &str) {
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {:?}", e.into_service_error()));
}

pub async fn get_bytes(client: &Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    match client.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => Some(out.body.collect().await.unwrap().into_bytes().to_vec()),
        Err(e) => {
            let e = e.into_service_error();
            assert!(e.is_no_such_key(), "get s3://{bucket}/{key}: {e:?}");
            None
        }
    }
}

/// Deterministic pseudo-random bytes (so a mismatch is not hidden by repeated content).
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}
