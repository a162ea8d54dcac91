use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;

use super::{assert_exported, backfill_cmd, listing, run, seed, wait_for};
use crate::support::proxy::{FaultProxy, Rule};
use crate::support::servers::Server;
use crate::support::world::World;

/// Polls `bucket` until it holds at least `n` objects, while `child` runs.
async fn wait_until_holds(child: &mut Child, client: &Client, bucket: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while listing(client, bucket).await.len() < n {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!("backfill ended ({status}) before {bucket} held {n} objects:\n{stderr}");
        }
        assert!(Instant::now() < deadline, "{bucket} never reached {n} objects");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The number of objects in `bucket` once it has stopped changing for half a second.
async fn settled_count(client: &Client, bucket: &str) -> usize {
    let mut last = listing(client, bucket).await.len();
    let mut stable_since = Instant::now();
    while stable_since.elapsed() < Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = listing(client, bucket).await.len();
        if now != last {
            (last, stable_since) = (now, Instant::now());
        }
    }
    last
}

async fn an_interrupted_backfill_resumes_where_it_stopped(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    let mut seeded = seed(&world, 0, 0).await;
    let keys: Vec<String> = (0..60).map(|i| format!("org1/slow/{i:02}.jpg")).collect();
    for key in &keys {
        world.put(key, key.as_bytes()).await;
    }
    seeded
        .selected
        .insert("org1".into(), keys.iter().cloned().collect());
    let dest = world.bucket_of("org1").to_string();
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule::slow_copies(Duration::from_millis(150))],
    )
    .await;
    let slow = |world: &World| {
        let mut cmd = backfill_cmd(world, &proxy.endpoint);
        cmd.args([
            "--concurrency",
            "2",
            "--page-size",
            "7",
            "--progress-interval",
            "0.3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    };

    // Ctrl-C: stops starting objects, lets the ones in flight finish, says so, exits 130.
    let mut child = slow(&world).spawn().unwrap();
    wait_until_holds(&mut child, &world.client, &dest, 10).await;
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let interrupted = wait_for(child).await;
    assert_eq!(interrupted.code, Some(130), "{}", interrupted.stderr);
    assert!(
        interrupted.stderr.contains("interrupted:"),
        "{}",
        interrupted.stderr
    );
    assert!(
        interrupted
            .stderr
            .lines()
            .any(|l| l.starts_with("progress: ") && l.contains("objects/s")),
        "periodic progress lines: {}",
        interrupted.stderr
    );
    let after_sigint = listing(&world.client, &dest).await.len();
    assert_eq!(
        interrupted.count("copied"),
        after_sigint as u64,
        "{}",
        interrupted.stderr
    );
    assert!(
        after_sigint < keys.len(),
        "the interrupt came too late to test anything"
    );

    // SIGKILL: no chance to finish anything; copies are atomic, so nothing is half there.
    let mut child = slow(&world).spawn().unwrap();
    wait_until_holds(&mut child, &world.client, &dest, after_sigint + 5).await;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    let killed = wait_for(child).await;
    assert_eq!(killed.code, None, "killed by a signal");
    // Copy requests already on their way still complete at the server.
    let after_kill = settled_count(&world.client, &dest).await;
    assert!(after_kill < keys.len(), "the kill came too late to test anything");

    let rest = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(rest.code, Some(0), "{}", rest.stderr);
    assert_eq!(
        rest.count("already in place"),
        after_kill as u64,
        "{}",
        rest.stderr
    );
    assert_eq!(rest.count("copied"), (keys.len() - after_kill) as u64);
    assert_exported(&world, &seeded).await;
    for key in &keys {
        assert_eq!(
            world.get(&dest, key).await.as_deref(),
            Some(key.as_bytes()),
            "{key}"
        );
    }
}

/// Ctrl-C while a multipart copy is in flight aborts its upload: no incomplete upload is
/// left to cost storage, and the object is reported failed (`Interrupted`) for the rerun.
async fn an_interrupt_aborts_multipart_uploads_in_flight(server: &'static Server) {
    let world = World::new(server, &["org1"]).await;
    world.put("org1/big.jpg", &vec![3u8; 6 * 1024 * 1024]).await;
    let dest = world.bucket_of("org1").to_string();
    // Every part copy is held far longer than the test waits.
    let proxy = FaultProxy::start(&server.endpoint, vec![Rule::slow_copies(Duration::from_secs(60))]).await;
    let mut cmd = backfill_cmd(&world, &proxy.endpoint);
    cmd.env("MULTIPART_COPY_THRESHOLD", (5 * 1024 * 1024).to_string())
        .env("MULTIPART_PART_SIZE", (5 * 1024 * 1024).to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !proxy.seen().iter().any(|s| s.copy && s.path.contains("uploadId")) {
        assert!(
            Instant::now() < deadline,
            "no part copy started: {:?}",
            proxy.seen()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let interrupted = wait_for(child).await;
    assert_eq!(interrupted.code, Some(130), "{}", interrupted.stderr);
    assert!(
        interrupted
            .stderr
            .lines()
            .any(|l| l.starts_with("failed: ") && l.contains("big.jpg") && l.contains("Interrupted")),
        "{}",
        interrupted.stderr
    );
    let uploads = world
        .client
        .list_multipart_uploads()
        .bucket(&dest)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
    assert!(listing(&world.client, &dest).await.is_empty());
}

on_each_server!(
    an_interrupted_backfill_resumes_where_it_stopped,
    an_interrupt_aborts_multipart_uploads_in_flight,
);
