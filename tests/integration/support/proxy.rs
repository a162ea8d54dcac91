//! A small HTTP proxy on loopback between the function's client and a real S3 server.
//! It forwards requests untouched (the Host header too, so signatures stay valid) and can
//! inject faults: 503 SlowDown, 500, any S3 error, dropped connections, or added latency,
//! for requests that match a rule, a given number of times.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// What to do to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer 503 SlowDown without forwarding.
    SlowDown,
    /// Answer 500 InternalError without forwarding.
    InternalError,
    /// Answer `status` with an S3 XML error body whose code is `code`, without forwarding
    /// (e.g. 400 `ExpiredToken`, 409 `OperationAborted`).
    Error { status: u16, code: &'static str },
    /// Close the connection without answering.
    Drop,
    /// Forward after a delay.
    Delay(Duration),
    /// Keep the connection open and never answer.
    Hang,
    /// Answer 200 with the start of a body, then send nothing more (the connection stays
    /// open): a server that stops mid-response.
    Stall,
    /// Forward once the test calls [`FaultProxy::release`]: a request that is slow for as
    /// long as the test needs, without a timing guess.
    Held,
    /// Answer 403 AccessDenied, as AWS does, when the request names an expected bucket
    /// owner (`x-amz-expected-bucket-owner`) other than this account: the owner check of a
    /// bucket owned by `account`, for servers that ignore the header. Requests without the
    /// header pass.
    OwnedBy(&'static str),
    /// Answer 403 AccessDenied, as a bucket policy does, to a request not signed with this
    /// access key; requests signed with it pass: a bucket one principal may read and another
    /// (an org's role) may not, for servers that enforce no IAM.
    OnlySignedBy(&'static str),
    /// Forward, then replace the value of every `x-amz-checksum-*` header of the answer
    /// with `AAAAAA==`: a source whose HEAD reports another checksum than its bytes have.
    WrongChecksum,
    /// Forward, then replace every ETag of the answer (the `ETag` header, and each
    /// `<ETag>` of a listing or copy result) with another hex value of the same length (a
    /// hash of the original): what S3 answers for objects under SSE-KMS, whose ETags are not
    /// the MD5 of their bytes, in front of a server that keeps MD5s (moto). The same object
    /// always gets the same ETag.
    NotMd5Etags,
    /// Forward, read the server's whole answer, then close the connection without passing
    /// it on: the request took effect, the client never learns so (a timed-out request
    /// that the server carried out).
    DropAnswer,
}

/// Which requests a fault applies to, and how many times.
#[derive(Debug, Clone)]
pub struct Rule {
    pub fault: Fault,
    /// Only requests whose path contains this (e.g. a key).
    pub path_contains: Option<String>,
    /// Only copy requests (those with `x-amz-copy-source`).
    pub copies_only: bool,
    /// Only requests with this method (`"POST"`: CreateMultipartUpload is `POST ?uploads`,
    /// CompleteMultipartUpload `POST ?uploadId=`).
    pub method: Option<&'static str>,
    /// How many matching requests get the fault; `None` = all.
    pub times: Option<usize>,
}

impl Rule {
    /// Every copy request forwarded after `delay`.
    pub fn slow_copies(delay: Duration) -> Rule {
        Rule {
            fault: Fault::Delay(delay),
            path_contains: None,
            copies_only: true,
            method: None,
            times: None,
        }
    }

    /// `fault` for the first `times` copy requests.
    pub fn copies(fault: Fault, times: usize) -> Rule {
        Rule {
            fault,
            path_contains: None,
            copies_only: true,
            method: None,
            times: Some(times),
        }
    }

    /// `fault` for the first `times` `method` requests whose path and query contain
    /// `needle` (`Rule::requests("POST", "?uploads", …)`: CreateMultipartUpload).
    pub fn requests(method: &'static str, needle: &str, fault: Fault, times: usize) -> Rule {
        Rule {
            fault,
            path_contains: Some(needle.into()),
            copies_only: false,
            method: Some(method),
            times: Some(times),
        }
    }
}

/// One request the proxy saw, and whether it was faulted.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub copy: bool,
    pub fault: Option<Fault>,
    /// The access key id the request was signed with (`Authorization: … Credential=KEY/…`).
    pub access_key: Option<String>,
    /// The request's `x-amz-*` headers (names lowercase), in the order sent.
    pub amz_headers: Vec<(String, String)>,
}

impl Seen {
    /// The value of header `name` (lowercase), when the request had it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.amz_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct State {
    upstream: String,
    copies_in_flight: AtomicUsize,
    max_copies_in_flight: AtomicUsize,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
    released: tokio::sync::watch::Sender<bool>,
    client: Client<HttpConnector, Incoming>,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://host:port`) with these rules.
    pub async fn start(upstream: &str, rules: Vec<Rule>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            copies_in_flight: AtomicUsize::new(0),
            max_copies_in_flight: AtomicUsize::new(0),
            rules: Mutex::new(rules),
            seen: Mutex::new(Vec::new()),
            released: tokio::sync::watch::Sender::new(false),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let accept_state = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = accept_state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://{addr}"),
            state,
            task,
        }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Lets every [`Fault::Held`] request go on (now and from now on).
    pub fn release(&self) {
        self.state.released.send_replace(true);
    }

    /// The most copy requests that were in flight at the same time.
    pub fn max_copies_in_flight(&self) -> usize {
        self.state.max_copies_in_flight.load(Ordering::SeqCst)
    }

    /// Copy requests (CopyObject / UploadPartCopy) seen whose path contains `needle`.
    pub fn copies_to(&self, needle: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.copy && s.path.contains(needle))
            .collect()
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

fn canned(status: u16, code: &str) -> Response<ProxyBody> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the test proxy</Message><RequestId>proxy</RequestId></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .unwrap()
}

/// A 200 whose body starts like a CopyObject result and never ends.
fn stalled() -> Response<ProxyBody> {
    let start = futures::stream::iter([Ok::<_, hyper::Error>(Frame::data(Bytes::from_static(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult>",
    )))]);
    let body = StreamBody::new(start.chain(futures::stream::pending()));
    Response::builder()
        .status(200)
        .header("content-type", "application/xml")
        .body(BodyExt::boxed(body))
        .unwrap()
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<ProxyBody>, std::io::Error> {
    let copy = req.headers().contains_key("x-amz-copy-source");
    if copy {
        let now = state.copies_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_copies_in_flight.fetch_max(now, Ordering::SeqCst);
    }
    let response = forward(&state, req, copy).await;
    if copy {
        state.copies_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
    response
}

async fn forward(
    state: &State,
    mut req: Request<Incoming>,
    copy: bool,
) -> Result<Response<ProxyBody>, std::io::Error> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let access_key = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once("Credential="))
        .and_then(|(_, rest)| rest.split('/').next())
        .map(str::to_string);
    let fault = {
        let mut rules = state.rules.lock().unwrap();
        let owner = req
            .headers()
            .get("x-amz-expected-bucket-owner")
            .and_then(|v| v.to_str().ok());
        let hit = rules.iter_mut().find(|r| {
            let owner_check = match r.fault {
                Fault::OwnedBy(account) => owner.is_some_and(|o| o != account),
                Fault::OnlySignedBy(key) => access_key.as_deref() != Some(key),
                _ => true,
            };
            owner_check
                && (!r.copies_only || copy)
                && r.method.is_none_or(|m| req.method().as_str() == m)
                && r.path_contains
                    .as_deref()
                    .is_none_or(|needle| path.contains(needle))
                && r.times != Some(0)
        });
        hit.map(|r| {
            if let Some(times) = r.times.as_mut() {
                *times -= 1;
            }
            r.fault
        })
    };
    state.seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path: path.clone(),
        copy,
        fault,
        access_key,
        amz_headers: req
            .headers()
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("x-amz-"))
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().to_string()))
            .collect(),
    });
    match fault {
        Some(Fault::SlowDown) => return Ok(canned(503, "SlowDown")),
        Some(Fault::InternalError) => return Ok(canned(500, "InternalError")),
        Some(Fault::Error { status, code }) => return Ok(canned(status, code)),
        Some(Fault::Drop) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "dropped by the test proxy",
            ));
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::Stall) => return Ok(stalled()),
        Some(Fault::Held) => {
            let mut released = state.released.subscribe();
            let _ = released.wait_for(|released| *released).await;
        }
        Some(Fault::OwnedBy(_) | Fault::OnlySignedBy(_)) => return Ok(canned(403, "AccessDenied")),
        Some(Fault::WrongChecksum | Fault::NotMd5Etags | Fault::DropAnswer) | None => {}
    }
    *req.uri_mut() = format!("{}{path}", state.upstream).parse().unwrap();
    match state.client.request(req).await {
        Ok(response) if fault == Some(Fault::DropAnswer) => {
            // The whole answer, so the server has finished the request before it is dropped.
            let _ = response.into_body().collect().await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "answer dropped by the test proxy",
            ))
        }
        Ok(mut response) => {
            if fault == Some(Fault::WrongChecksum) {
                let names: Vec<_> = response
                    .headers()
                    .keys()
                    .filter(|n| {
                        n.as_str().starts_with("x-amz-checksum-") && n.as_str() != "x-amz-checksum-type"
                    })
                    .cloned()
                    .collect();
                for name in names {
                    response
                        .headers_mut()
                        .insert(name, hyper::header::HeaderValue::from_static("AAAAAA=="));
                }
            }
            if fault == Some(Fault::NotMd5Etags) {
                return not_md5_etags(response).await;
            }
            Ok(response.map(|b| b.boxed()))
        }
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// `response` with every ETag replaced as [`Fault::NotMd5Etags`] says.
async fn not_md5_etags(response: Response<Incoming>) -> Result<Response<ProxyBody>, std::io::Error> {
    let (mut parts, body) = response.into_parts();
    if let Some(etag) = parts.headers.get("etag").and_then(|v| v.to_str().ok()) {
        let replaced = not_md5(etag);
        parts
            .headers
            .insert("etag", hyper::header::HeaderValue::from_str(&replaced).unwrap());
    }
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let body = match std::str::from_utf8(&body) {
        Ok(text) if text.contains("<ETag>") => {
            let mut out = String::with_capacity(text.len());
            let mut rest = text;
            while let Some(at) = rest.find("<ETag>") {
                let (before, from) = rest.split_at(at + "<ETag>".len());
                let end = from.find("</ETag>").unwrap_or(from.len());
                out.push_str(before);
                out.push_str(&not_md5(&from[..end]));
                rest = &from[end..];
            }
            out.push_str(rest);
            // Same length: the Content-Length header still holds.
            Bytes::from(out)
        }
        _ => body,
    };
    Ok(Response::from_parts(
        parts,
        Full::new(body)
            .map_err(|never: Infallible| match never {})
            .boxed(),
    ))
}

/// `etag` with each run of 32 hex digits replaced by the first 32 hex digits of its
/// SHA-256 (quotes, entities and a `-N` part count kept).
fn not_md5(etag: &str) -> String {
    use sha2::Digest;
    let bytes = etag.as_bytes();
    let mut out = String::with_capacity(etag.len());
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if run == 32 {
            let hash = hex::encode(sha2::Sha256::digest(&bytes[i..i + 32]));
            out.push_str(&hash[..32]);
            i += 32;
        } else if run > 0 {
            out.push_str(&etag[i..i + run]);
            i += run;
        } else {
            let c = etag[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}
