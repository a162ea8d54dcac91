use artifact_export::event::parse_event;
use artifact_export::exporter::Exporter;
use artifact_export::handler::{handle, handle_until};
use artifact_export::reason::ReasonCode;
use artifact_export::report::{Outcome, Report};
use std::time::{Duration, Instant};

use crate::support::events::s3_event;
use crate::support::proxy::{Fault, FaultProxy, Rule};
use crate::support::servers::Server;
use crate::support::world::{Uploaded, World};

async fn world_with_retry(server: &'static Server, retry: u32) -> World {
    World::with_config(server, &["org1"], |orgs| {
        serde_json::json!({"customers": [{"org": "org1", "destinationBucket": orgs[0].1}], "retry": retry})
            .to_string()
    })
    .await
}

async fn run_through(world: &World, proxy: &FaultProxy, objects: &[&Uploaded]) -> Report {
    let exporter = Exporter::new(world.server.client_via(&proxy.endpoint), world.settings("jpg"));
    handle(&exporter, parse_event(&s3_event(objects)).unwrap()).await
}

async fn throttling_and_server_errors_are_retried(server: &'static Server) {
    let world = world_with_retry(server, 2).await;
    let a = world.put("org1/retry-me.jpg", b"persistence").await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![
            Rule::copies(Fault::SlowDown, 1),
            Rule::copies(Fault::InternalError, 1),
        ],
    )
    .await;
    let report = run_through(&world, &proxy, &[&a]).await;
    let r = &report.records[0];
    assert_eq!((r.outcome, r.attempts), (Outcome::Copied, 3), "{r:?}");
    let faults: Vec<_> = proxy.copies_to("retry-me").iter().map(|s| s.fault).collect();
    assert_eq!(faults, [Some(Fault::SlowDown), Some(Fault::InternalError), None]);
    assert_eq!(
        world
            .get(world.bucket_of("org1"), "org1/retry-me.jpg")
            .await
            .as_deref(),
        Some(&b"persistence"[..])
    );
}

async fn dropped_connections_are_retried(server: &'static Server) {
    let world = world_with_retry(server, 1).await;
    let a = world.put("org1/dropped.jpg", b"again").await;
    let proxy = FaultProxy::start(&server.endpoint, vec![Rule::copies(Fault::Drop, 1)]).await;
    let report = run_through(&world, &proxy, &[&a]).await;
    let r = &report.records[0];
    assert_eq!((r.outcome, r.attempts), (Outcome::Copied, 2), "{r:?}");
    assert_eq!(proxy.copies_to("dropped").len(), 2);
}

async fn exhausted_retries_fail_only_that_record(server: &'static Server) {
    let world = world_with_retry(server, 2).await;
    let a = world.put("org1/one.jpg", b"1").await;
    let b = world.put("org1/two.jpg", b"2").await;
    let c = world.put("org1/three.jpg", b"3").await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::SlowDown,
            path_contains: Some("two.jpg".into()),
            copies_only: true,
            method: None,
            times: None,
        }],
    )
    .await;
    let report = run_through(&world, &proxy, &[&a, &b, &c]).await;
    let outcomes: Vec<_> = report.records.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Copied, Outcome::Failed, Outcome::Copied]);
    let failed = &report.records[1];
    assert_eq!(failed.error_code.as_deref(), Some("SlowDown"));
    assert_eq!(failed.reason_code, Some(ReasonCode::SlowDown));
    assert_eq!(failed.attempts, 3);
    assert!(
        failed
            .reason
            .as_deref()
            .unwrap()
            .contains("gave up after 3 attempts"),
        "{failed:?}"
    );
    assert_eq!(proxy.copies_to("two.jpg").len(), 3, "1 attempt + retry 2");
    assert!(report.must_fail_invocation());
    let dest = world.bucket_of("org1");
    let mut keys = world.keys(dest).await;
    keys.sort();
    assert_eq!(keys, ["org1/one.jpg", "org1/three.jpg"]);
}

/// S3 answers 409 `OperationAborted` while a conflicting operation on the bucket or key is
/// in progress, and says to try again: the retry copies.
async fn operation_aborted_is_retried(server: &'static Server) {
    let world = world_with_retry(server, 1).await;
    let a = world.put("org1/conflict.jpg", b"again").await;
    let aborted = Fault::Error {
        status: 409,
        code: "OperationAborted",
    };
    let proxy = FaultProxy::start(&server.endpoint, vec![Rule::copies(aborted, 1)]).await;
    let report = run_through(&world, &proxy, &[&a]).await;
    let r = &report.records[0];
    assert_eq!((r.outcome, r.attempts), (Outcome::Copied, 2), "{r:?}");
    let faults: Vec<_> = proxy.copies_to("conflict.jpg").iter().map(|s| s.fault).collect();
    assert_eq!(faults, [Some(aborted), None]);
    assert_eq!(
        world
            .get(world.bucket_of("org1"), "org1/conflict.jpg")
            .await
            .as_deref(),
        Some(&b"again"[..])
    );
}

async fn retry_zero_means_one_attempt(server: &'static Server) {
    let world = world_with_retry(server, 0).await;
    let a = world.put("org1/once.jpg", b"x").await;
    let proxy = FaultProxy::start(&server.endpoint, vec![Rule::copies(Fault::InternalError, 1)]).await;
    let report = run_through(&world, &proxy, &[&a]).await;
    let r = &report.records[0];
    assert_eq!((r.outcome, r.attempts), (Outcome::Failed, 1), "{r:?}");
    assert_eq!(proxy.copies_to("once.jpg").len(), 1);
}

/// A server that accepts a copy and never answers, and one that stops mid-response: each
/// attempt ends at the copy timeout, is retried like a 5xx, and the record fails with
/// `Timeout`; the other record is unaffected.
async fn copies_that_never_finish_time_out(server: &'static Server) {
    let world = world_with_retry(server, 1).await;
    let hang = world.put("org1/hang.jpg", b"h").await;
    let stall = world.put("org1/stall.jpg", b"s").await;
    let fine = world.put("org1/fine.jpg", b"f").await;
    let on = |fault, key: &str| Rule {
        fault,
        path_contains: Some(key.into()),
        copies_only: true,
        method: None,
        times: None,
    };
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![on(Fault::Hang, "hang.jpg"), on(Fault::Stall, "stall.jpg")],
    )
    .await;
    let mut settings = world.settings("jpg");
    settings.timeouts.copy = Duration::from_millis(400);
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    let report = handle(
        &exporter,
        parse_event(&s3_event(&[&hang, &stall, &fine])).unwrap(),
    )
    .await;
    let outcomes: Vec<_> = report.records.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Failed, Outcome::Failed, Outcome::Copied],
        "{report:#?}"
    );
    for (r, key) in report.records[..2].iter().zip(["hang.jpg", "stall.jpg"]) {
        assert_eq!(r.error_code.as_deref(), Some("Timeout"), "{r:?}");
        assert_eq!(r.reason_code, Some(ReasonCode::Timeout), "{r:?}");
        assert!(r.reason.as_deref().unwrap().contains("timed out"), "{r:?}");
        assert!(r.retryable, "{r:?}");
        assert_eq!(r.attempts, 2, "{r:?}");
        assert_eq!(proxy.copies_to(key).len(), 2, "1 attempt + retry 1 for {key}");
    }
}

/// An ordinary request (here the config's GET) that is never answered gives up after the
/// request timeout, in seconds rather than minutes.
async fn an_unanswered_config_read_times_out(server: &'static Server) {
    let world = world_with_retry(server, 1).await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::Hang,
            path_contains: Some(world.config_key.clone()),
            copies_only: false,
            method: None,
            times: None,
        }],
    )
    .await;
    let mut settings = world.settings("jpg");
    settings.timeouts.request = Duration::from_millis(300);
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    let error = exporter.config().await.unwrap_err().to_string();
    assert!(error.contains("could not be read: Timeout"), "{error}");
}

/// With the invocation's deadline near, records stop starting and are reported failed
/// (`Deadline`, retryable), a multipart copy in flight aborts its upload, and the answer
/// comes before the deadline with every record in it.
async fn the_deadline_fails_what_cannot_finish_and_aborts_uploads(server: &'static Server) {
    let world = world_with_retry(server, 0).await;
    let big = world.put("org1/big.jpg", &vec![7u8; 6 * 1024 * 1024]).await;
    let mut objects = vec![big];
    for i in 0..6 {
        objects.push(world.put(&format!("org1/small-{i}.jpg"), b"s").await);
    }
    // Every copy (CopyObject and UploadPartCopy) is held long past the deadline.
    let proxy = FaultProxy::start(&server.endpoint, vec![Rule::slow_copies(Duration::from_secs(20))]).await;
    let mut settings = world.settings("jpg");
    settings.copy_concurrency = 2;
    settings.multipart_threshold = 5 * 1024 * 1024;
    // The least margin DEADLINE_MARGIN_MS accepts.
    settings.deadline_margin = Duration::from_millis(2000);
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    let deadline = Instant::now() + Duration::from_millis(4000);
    let event = parse_event(&s3_event(&objects.iter().collect::<Vec<_>>())).unwrap();
    let report = handle_until(&exporter, event, Some(deadline)).await;
    assert!(
        Instant::now() < deadline,
        "the answer must leave before the deadline"
    );
    assert_eq!(report.records.len(), objects.len());
    for r in &report.records {
        assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
        assert_eq!(r.error_code.as_deref(), Some("Deadline"), "{r:?}");
        assert_eq!(r.reason_code, Some(ReasonCode::Deadline), "{r:?}");
        assert!(r.retryable, "{r:?}");
    }
    assert!(report.must_fail_invocation());
    // The multipart upload was aborted, not left behind.
    let dest = world.bucket_of("org1");
    let uploads = world
        .client
        .list_multipart_uploads()
        .bucket(dest)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.method == "DELETE" && s.path.contains("big.jpg") && s.path.contains("uploadId")),
        "an AbortMultipartUpload was sent"
    );
}

/// An abort slower than the time left before the cut-off: the cut-off ends the record (its
/// report says `Deadline`), not the abort, which runs on and removes the upload.
async fn an_abort_slower_than_the_cut_off_still_removes_the_upload(server: &'static Server) {
    let world = world_with_retry(server, 0).await;
    let big = world
        .put("org1/slow-abort.jpg", &vec![9u8; 6 * 1024 * 1024])
        .await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![
            // The parts never finish: the deadline's stop finds the upload in progress.
            Rule {
                fault: Fault::Hang,
                path_contains: Some("partNumber=".into()),
                copies_only: true,
                method: None,
                times: None,
            },
            // The abort reaches the server only after the cut-off.
            Rule::requests("DELETE", "uploadId=", Fault::Delay(Duration::from_secs(4)), 1),
        ],
    )
    .await;
    let mut settings = world.settings("jpg");
    settings.multipart_threshold = 5 * 1024 * 1024;
    settings.deadline_margin = Duration::from_millis(2000);
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    // Records stop 2 s from now, the cut-off comes at 3.33 s, the abort lands at about 6 s.
    let deadline = Instant::now() + Duration::from_millis(4000);
    let report = handle_until(
        &exporter,
        parse_event(&s3_event(&[&big])).unwrap(),
        Some(deadline),
    )
    .await;
    assert!(
        Instant::now() < deadline,
        "the answer must leave before the deadline"
    );
    let r = &report.records[0];
    assert_eq!(r.error_code.as_deref(), Some("Deadline"), "{r:?}");
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.method == "DELETE" && s.path.contains("uploadId=")),
        "the abort was sent before the cut-off"
    );
    // Bounded: the abort's own timeout.
    let dest = world.bucket_of("org1");
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let uploads = world
            .client
            .list_multipart_uploads()
            .bucket(dest)
            .send()
            .await
            .unwrap();
        if uploads.uploads().is_empty() {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "the upload outlived its record: {:?}",
            uploads.uploads()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A cold start whose config read outlasts the deadline still answers in time, with every
/// record failed (and so retried) rather than nothing reported.
async fn a_config_read_that_outlasts_the_deadline_fails_every_record(server: &'static Server) {
    let world = world_with_retry(server, 0).await;
    let a = world.put("org1/a.jpg", b"a").await;
    let b = world.put("org1/b.jpg", b"b").await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::Hang,
            path_contains: Some(world.config_key.clone()),
            copies_only: false,
            method: None,
            times: None,
        }],
    )
    .await;
    let mut settings = world.settings("jpg");
    // The least margin DEADLINE_MARGIN_MS accepts.
    settings.deadline_margin = Duration::from_millis(2000);
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    let deadline = Instant::now() + Duration::from_millis(3000);
    let report = handle_until(
        &exporter,
        parse_event(&s3_event(&[&a, &b])).unwrap(),
        Some(deadline),
    )
    .await;
    assert!(
        Instant::now() < deadline,
        "the answer must leave before the deadline"
    );
    assert_eq!(report.totals.failed, 2, "{report:#?}");
    for r in &report.records {
        // Cut short before it could start (the config never came): failed, retryable.
        assert_eq!(r.error_code.as_deref(), Some("Deadline"), "{r:?}");
        assert_eq!(r.reason_code, Some(ReasonCode::Deadline), "{r:?}");
        assert!(r.retryable, "{r:?}");
    }
}

on_each_server!(
    a_config_read_that_outlasts_the_deadline_fails_every_record,
    throttling_and_server_errors_are_retried,
    dropped_connections_are_retried,
    exhausted_retries_fail_only_that_record,
    operation_aborted_is_retried,
    retry_zero_means_one_attempt,
    copies_that_never_finish_time_out,
    an_unanswered_config_read_times_out,
    the_deadline_fails_what_cannot_finish_and_aborts_uploads,
    an_abort_slower_than_the_cut_off_still_removes_the_upload,
);

async fn records_are_copied_concurrently_up_to_the_bound(server: &'static Server) {
    let world = world_with_retry(server, 0).await;
    let mut objects = Vec::new();
    for i in 0..12 {
        objects.push(world.put(&format!("org1/c{i}.jpg"), b"c").await);
    }
    // Each copy is held for a while, so the copies of all records overlap if allowed to.
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule::slow_copies(std::time::Duration::from_millis(150))],
    )
    .await;
    let mut settings = world.settings("jpg");
    settings.copy_concurrency = 3;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    let report = handle(
        &exporter,
        parse_event(&s3_event(&objects.iter().collect::<Vec<_>>())).unwrap(),
    )
    .await;
    assert_eq!(report.totals.copied, 12);
    assert_eq!(
        proxy.max_copies_in_flight(),
        3,
        "COPY_CONCURRENCY=3 must be reached and never exceeded"
    );
}

on_each_server!(records_are_copied_concurrently_up_to_the_bound);

/// One slow record does not hold back the records behind it: with room for 2 copies at a
/// time, the first record's copy is held at the proxy until every other record's copy has
/// reached the server (with in-order completion the third record would wait for the first,
/// and this test would time out). The report stays in event order.
async fn a_slow_record_does_not_hold_back_the_others(server: &'static Server) {
    let world = world_with_retry(server, 0).await;
    let mut objects = vec![world.put("org1/slow.jpg", b"s").await];
    for i in 0..6 {
        objects.push(world.put(&format!("org1/fast{i}.jpg"), b"f").await);
    }
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::Held,
            path_contains: Some("slow.jpg".into()),
            copies_only: true,
            method: None,
            times: Some(1),
        }],
    )
    .await;
    let mut settings = world.settings("jpg");
    settings.copy_concurrency = 2;
    let exporter = Exporter::new(server.client_via(&proxy.endpoint), settings);
    let event = parse_event(&s3_event(&objects.iter().collect::<Vec<_>>())).unwrap();
    let run = async {
        let report = handle(&exporter, event).await;
        assert_eq!(
            proxy.copies_to("slow.jpg").len(),
            1,
            "the slow copy was made once"
        );
        report
    };
    let watch = async {
        let give_up = Instant::now() + Duration::from_secs(60);
        while proxy.copies_to("fast").len() < 6 {
            assert!(
                Instant::now() < give_up,
                "the other records waited for the held one: {} of 6 copied while it was held",
                proxy.copies_to("fast").len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        proxy.release();
    };
    let (report, ()) = tokio::join!(run, watch);
    assert_eq!(report.totals.copied, 7);
    let keys: Vec<_> = report.records.iter().map(|r| r.key.clone().unwrap()).collect();
    let expected: Vec<_> = objects.iter().map(|o| o.key.clone()).collect();
    assert_eq!(keys, expected, "the report keeps the event's order");
}

on_each_server!(a_slow_record_does_not_hold_back_the_others);
