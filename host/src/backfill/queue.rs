//! `reconcile --repair-via-queue`: each gap sent to the function's SQS queue as the S3
//! notification an upload would have sent ([`notification`]), so the function repairs it on
//! Lambda's fleet exactly as it exports an upload.
//!
//! Messages carry `MessageGroupId` = the org: on an SQS fair queue one org's big repair then
//! never delays another org's live exports. Up to 10 messages go in one `SendMessageBatch`;
//! a request that fails is retried per the config's `retry`, an entry SQS refuses is counted
//! failed with its reason.

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::Client as S3Client;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde_json::json;
use tokio::sync::mpsc;

use crate::event::SourceObject;
use crate::s3::keys::encode_notification_key;
use crate::s3::{RetryPolicy, S3Failure, classify, with_retries};

/// Messages per `SendMessageBatch` (SQS's maximum).
pub const BATCH: usize = 10;

/// Why the queue cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--repair-via-queue {url}: {reason}")]
pub struct QueueError {
    url: String,
    reason: String,
}

/// What was sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// Messages SQS accepted.
    pub sent: u64,
    /// Messages that could not be sent, each `s3://bucket/key: reason`.
    pub failed: Vec<String>,
}

/// One gap to send: the org (the message group) and the source object.
pub type Gap = (String, SourceObject);

/// A sender of repair messages to the queue at `url`, in a task of its own: gaps go in
/// through [`RepairQueue::sender`] (from a synchronous callback), [`RepairQueue::finish`]
/// waits for the last batch.
pub struct RepairQueue {
    tx: mpsc::UnboundedSender<Gap>,
    task: tokio::task::JoinHandle<Sent>,
}

impl RepairQueue {
    /// Starts sending to `url` (an SQS queue URL, `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`
    /// or a local server's) with `credentials`, and the region and HTTP client of `s3`; the
    /// endpoint is the queue URL's origin.
    pub fn start(
        s3: &S3Client,
        credentials: Option<SharedCredentialsProvider>,
        url: &str,
        retry: RetryPolicy,
    ) -> Result<Self, QueueError> {
        let origin = queue_origin(url).ok_or_else(|| QueueError {
            url: url.to_string(),
            reason: "expected an SQS queue URL, http(s)://HOST/ACCOUNT/QUEUE".into(),
        })?;
        let conf = s3.config();
        let mut builder = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .endpoint_url(origin)
            // Retries are `with_retries`' (the config's count), never the SDK's own.
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled());
        // Bounded like every request of the function: the S3 client's attempt timeouts.
        builder.set_timeout_config(conf.timeout_config().cloned());
        builder.set_region(conf.region().cloned());
        builder.set_credentials_provider(credentials);
        builder.set_http_client(conf.http_client());
        builder.set_sleep_impl(conf.sleep_impl());
        builder.set_time_source(Some(conf.time_source().unwrap_or_default()));
        let client = Client::from_conf(builder.build());
        let region = conf.region().map_or("us-east-1".to_string(), |r| r.to_string());
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(send_all(client, url.to_string(), region, retry, rx));
        Ok(RepairQueue { tx, task })
    }

    /// Where gaps go in.
    pub fn sender(&self) -> mpsc::UnboundedSender<Gap> {
        self.tx.clone()
    }

    /// Sends what is left and says what was sent.
    pub async fn finish(self) -> Sent {
        drop(self.tx);
        self.task.await.unwrap_or_else(|e| Sent {
            sent: 0,
            failed: vec![format!("the sending task ended: {e}")],
        })
    }
}

/// `scheme://host[:port]` of a queue URL with a path.
fn queue_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (host, path) = rest.split_once('/')?;
    let valid =
        matches!(scheme, "http" | "https") && !host.is_empty() && path.trim_matches('/').contains('/');
    valid.then(|| format!("{scheme}://{host}"))
}

async fn send_all(
    client: Client,
    url: String,
    region: String,
    retry: RetryPolicy,
    mut rx: mpsc::UnboundedReceiver<Gap>,
) -> Sent {
    let mut sent = Sent::default();
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        send_batch(
            &client,
            &url,
            &region,
            &retry,
            std::mem::take(&mut batch),
            &mut sent,
        )
        .await;
    }
    sent
}

async fn send_batch(
    client: &Client,
    url: &str,
    region: &str,
    retry: &RetryPolicy,
    gaps: Vec<Gap>,
    sent: &mut Sent,
) {
    let described = |(_, object): &Gap| format!("s3://{}/{}", object.bucket, object.key);
    let entries: Vec<SendMessageBatchRequestEntry> = gaps
        .iter()
        .enumerate()
        .filter_map(|(i, (org, object))| {
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(notification(object, region))
                .message_group_id(org)
                .build()
                .ok()
        })
        .collect();
    let (result, _attempts) = with_retries(retry, || {
        let request = client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries.clone()));
        async move { request.send().await.map_err(|e| classify(&e)) }
    })
    .await;
    match result {
        Ok(out) => {
            sent.sent += out.successful().len() as u64;
            for refused in out.failed() {
                let gap = refused.id().parse::<usize>().ok().and_then(|i| gaps.get(i));
                let what = gap.map_or_else(|| format!("message {}", refused.id()), described);
                let why = refused.message().unwrap_or(refused.code());
                sent.failed.push(format!("{what}: {why}"));
            }
        }
        Err(failure) => {
            let why = match failure {
                S3Failure::SourceChanged(change) => change.to_string(),
                other => other.to_string(),
            };
            sent.failed
                .extend(gaps.iter().map(|gap| format!("{}: {why}", described(gap))));
        }
    }
}

/// The S3 notification an upload of `object` would have sent (`ObjectCreated:Put`, key
/// encoded as S3 encodes it, size and ETag), as one message body: the function reads it
/// exactly as S3's own, through SQS.
pub fn notification(object: &SourceObject, region: &str) -> String {
    let event_time = aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": event_time,
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "artifact-export-reconcile",
            "bucket": {"name": object.bucket, "arn": format!("arn:aws:s3:::{}", object.bucket)},
            "object": {
                "key": encode_notification_key(&object.key),
                "size": object.size,
                "eTag": object.etag,
            }
        }
    }]})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{RecordBody, parse_event_text};

    #[test]
    fn queue_urls_give_their_origin() {
        assert_eq!(
            queue_origin("https://sqs.eu-west-1.amazonaws.com/123456789012/exports").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com")
        );
        assert_eq!(
            queue_origin("http://127.0.0.1:5000/123456789012/q").as_deref(),
            Some("http://127.0.0.1:5000")
        );
        for bad in ["sqs/q", "ftp://h/1/q", "https:///1/q", "https://h/q"] {
            assert_eq!(queue_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_notification_reads_back_as_the_object() {
        let mut object = SourceObject::created("src", "org1/a b+c/été%.jpg");
        object.size = Some(42);
        object.etag = Some("abc".into());
        let parsed = parse_event_text(&notification(&object, "eu-west-1")).unwrap();
        let [record] = parsed.records.as_slice() else {
            panic!("{parsed:?}")
        };
        let RecordBody::Object(read) = &record.body else {
            panic!("{record:?}")
        };
        assert_eq!(
            (
                read.bucket.as_str(),
                read.key.as_str(),
                read.size,
                read.etag.as_deref()
            ),
            ("src", "org1/a b+c/été%.jpg", Some(42), Some("abc"))
        );
    }
}
