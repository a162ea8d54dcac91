//! The real S3-compatible servers the tests run against, started by `tests/servers/up.sh`
//! (which installs them when missing) and described by its env file: Garage and moto for
//! every test ([`on_each_server!`]), LocalStack too for the tests that opt in
//! ([`on_all_three_servers!`]: the fidelity matrix).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use artifact_export::s3;
use aws_sdk_s3::Client;

/// What a server implements, where servers differ.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// Object tagging (GetObjectTagging / x-amz-tagging).
    pub tagging: bool,
    /// Bucket versioning.
    pub versioning: bool,
    /// Honours `x-amz-copy-source-if-match`.
    pub enforces_copy_if_match: bool,
    /// Answers STS `AssumeRole` on its endpoint.
    pub sts: bool,
    /// Refuses requests signed with credentials it did not issue (moto accepts any).
    pub checks_credentials: bool,
    /// Refuses a request whose `ExpectedBucketOwner` is not the bucket's owner.
    pub enforces_expected_bucket_owner: bool,
    /// Refuses SSE-KMS with a key that does not exist or may not be used.
    pub checks_kms_keys: bool,
    /// ListMultipartUploads gives each upload its real `Initiated` time (moto gives every
    /// upload the same constant, 2010-11-10).
    pub dates_uploads: bool,
    /// Object Lock: buckets created with it, retention and legal hold on objects.
    pub object_lock: bool,
    /// Writes the Object Lock headers of a `CopyObject` and a `CreateMultipartUpload` as S3
    /// does (moto refuses them on a copy without a `Content-MD5` or
    /// `x-amz-sdk-checksum-algorithm` header, which a copy has no body for, and drops them on
    /// a multipart upload).
    pub locks_on_copies: bool,
    /// A KMS service on the same endpoint (CreateKey), and SSE-KMS objects.
    pub kms: bool,
}

/// One running server.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: &'static str,
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub caps: Capabilities,
}

impl Server {
    /// A client for this server configured exactly like the function's.
    pub fn client(&self) -> Client {
        self.client_via(&self.endpoint)
    }

    /// Same credentials, another endpoint (a fault proxy in front of this server).
    pub fn client_via(&self, endpoint: &str) -> Client {
        s3::client::for_endpoint(endpoint, &self.region, &self.access_key, &self.secret_key)
    }

    /// The credentials [`Server::client`] signs with, as a provider (to assume roles with).
    pub fn credentials(&self) -> aws_sdk_s3::config::SharedCredentialsProvider {
        s3::client::static_credentials(&self.access_key, &self.secret_key)
    }

    /// Environment for a child process (the CLI) that talks to this server, free of the
    /// machine's own AWS and CA variables.
    pub fn child_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_REGION".into(), self.region.clone()),
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The three servers up.sh started.
struct Servers {
    garage: Server,
    moto: Server,
    localstack: Server,
}

fn load() -> Servers {
    let root = repo_root();
    let status = Command::new("bash")
        .arg(root.join("tests/servers/up.sh"))
        .status()
        .expect("run tests/servers/up.sh");
    assert!(
        status.success(),
        "tests/servers/up.sh failed; see its output above"
    );
    let dir = std::env::var("TEST_SERVERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/test-servers"));
    let text = std::fs::read_to_string(dir.join("env"))
        .unwrap_or_else(|e| panic!("{}/env: {e}; run tests/servers/up.sh", dir.display()));
    let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| {
        vars.get(k)
            .unwrap_or_else(|| panic!("{k} missing from test server env"))
            .to_string()
    };
    let server = |name: &'static str, prefix: &str, caps| Server {
        name,
        endpoint: get(&format!("{prefix}_ENDPOINT")),
        region: get(&format!("{prefix}_REGION")),
        access_key: get(&format!("{prefix}_ACCESS_KEY_ID")),
        secret_key: get(&format!("{prefix}_SECRET_ACCESS_KEY")),
        caps,
    };
    Servers {
        garage: server(
            "garage",
            "GARAGE",
            Capabilities {
                tagging: false,
                versioning: false,
                enforces_copy_if_match: true,
                sts: false,
                checks_credentials: true,
                enforces_expected_bucket_owner: false,
                checks_kms_keys: false,
                dates_uploads: true,
                object_lock: false,
                locks_on_copies: false,
                kms: false,
            },
        ),
        moto: server(
            "moto",
            "MOTO",
            Capabilities {
                tagging: true,
                versioning: true,
                enforces_copy_if_match: false,
                sts: true,
                checks_credentials: false,
                enforces_expected_bucket_owner: false,
                checks_kms_keys: false,
                dates_uploads: false,
                object_lock: true,
                locks_on_copies: false,
                kms: true,
            },
        ),
        localstack: server(
            "localstack",
            "LOCALSTACK",
            Capabilities {
                tagging: true,
                versioning: true,
                enforces_copy_if_match: true,
                sts: true,
                checks_credentials: false,
                enforces_expected_bucket_owner: false,
                checks_kms_keys: false,
                dates_uploads: true,
                object_lock: true,
                locks_on_copies: true,
                kms: true,
            },
        ),
    }
}

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(load)
}

/// Garage 2.5: no tagging, no versioning, no STS, enforces copy-source-if-match.
pub fn garage() -> &'static Server {
    &servers().garage
}

/// moto's server: tagging, versioning and STS; ignores copy-source-if-match and accepts any
/// credentials.
pub fn moto() -> &'static Server {
    &servers().moto
}

/// LocalStack's S3 (with STS and KMS): stricter than moto where S3 is (it does not carry
/// `WebsiteRedirectLocation` or `Expires` on a `CopyObject` with the COPY directive). Only the
/// tests that opt in run on it ([`on_all_three_servers!`]).
pub fn localstack() -> &'static Server {
    &servers().localstack
}

/// Returns from the test, printing why, when the server lacks a capability.
#[macro_export]
macro_rules! require {
    ($server:expr, $cap:ident, $why:expr) => {
        if !$server.caps.$cap {
            eprintln!("SKIP on {}: {}", $server.name, $why);
            return;
        }
    };
}

/// Generates one `#[tokio::test]` per server for an `async fn(&Server)`.
#[macro_export]
macro_rules! on_each_server {
    ($($check:ident),* $(,)?) => {
        $(
            mod $check {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn garage() {
                    super::$check($crate::support::servers::garage()).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn moto() {
                    super::$check($crate::support::servers::moto()).await
                }
            }
        )*
    };
}

/// [`on_each_server!`] with LocalStack as a third server: one `#[tokio::test]` per server for
/// an `async fn(&Server)`. Opt-in, for the tests whose subject is how close the copies come
/// to S3 (the fidelity matrix).
#[macro_export]
macro_rules! on_all_three_servers {
    ($($check:ident),* $(,)?) => {
        $(
            mod $check {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn garage() {
                    super::$check($crate::support::servers::garage()).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn moto() {
                    super::$check($crate::support::servers::moto()).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn localstack() {
                    super::$check($crate::support::servers::localstack()).await
                }
            }
        )*
    };
}
