use artifact_export::event::parse_event;
use artifact_export::exporter::Exporter;
use artifact_export::handler::handle;
use artifact_export::report::Outcome;
use serde_json::json;

use super::sha256_hex;
use crate::support::events::s3_event;
use crate::support::proxy::{Fault, FaultProxy, Rule};
use crate::support::servers::{Server, garage};
use crate::support::world::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_from_s3_pinned_by_sha256() {
    let server = garage();
    let bytes = std::fs::read(plugin_artifacts::PASSTHROUGH).unwrap();
    let world = World::new(server, &["org1"]).await;
    world
        .put_config_object("export/plugins/passthrough.wasm", bytes)
        .await;
    // A relative source is relative to the config object: export/plugins/passthrough.wasm.
    let config = json!({"customers": [{"org": "org1", "destinationBucket": world.bucket_of("org1"),
        "plugin": {"source": "plugins/passthrough.wasm", "sha256": sha256_hex(plugin_artifacts::PASSTHROUGH), "timeoutMs": 5000}}]});
    world.write_config(&config.to_string()).await;
    let a = world.put("org1/a.jpg", b"a").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a])).unwrap(),
    )
    .await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Copied,
        "{:?}",
        report.records[0]
    );
}

/// A world whose org1 has the passthrough plugin in S3 (`export/plugins/{name}`, pinned by
/// sha256; the config's `retry`), and an exporter reaching the server through a proxy that
/// gives the plugin's first GET `fault`.
async fn passthrough_in_s3(
    server: &'static Server,
    name: &str,
    retry: u32,
    fault: Fault,
) -> (World, FaultProxy, Exporter) {
    let world = World::new(server, &["org1"]).await;
    let bytes = std::fs::read(plugin_artifacts::PASSTHROUGH).unwrap();
    world
        .put_config_object(&format!("export/plugins/{name}"), bytes)
        .await;
    let config = json!({"retry": retry, "customers": [{"org": "org1", "destinationBucket": world.bucket_of("org1"),
        "plugin": {"source": format!("plugins/{name}"), "sha256": sha256_hex(plugin_artifacts::PASSTHROUGH), "timeoutMs": 5000}}]});
    world.write_config(&config.to_string()).await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault,
            path_contains: Some(format!("plugins/{name}")),
            copies_only: false,
            method: None,
            times: Some(1),
        }],
    )
    .await;
    let exporter = Exporter::new(world.server.client_via(&proxy.endpoint), world.settings("jpg"));
    (world, proxy, exporter)
}

/// A cold start's warm-up (run by the Lambda loop beside its first poll) reads the
/// configuration and creates the plugin engine when an org has a plugin, but reads no
/// plugin: the invocation then reads the configuration no second time, and reads the
/// plugin of its record's org. Without a plugin in the configuration, no engine.
async fn a_warm_up_reads_the_config_and_creates_the_engine_before_the_first_event(server: &'static Server) {
    let config_gets = |proxy: &FaultProxy| {
        proxy
            .seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path.contains("config.json"))
            .count()
    };
    let plugin_gets = |proxy: &FaultProxy| {
        proxy
            .seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path.contains("plugins/"))
            .count()
    };
    // `retry: 1`: the plugin's first GET answers 503 and is tried again.
    let (world, proxy, exporter) = passthrough_in_s3(server, "warm.wasm", 1, Fault::SlowDown).await;
    let exporter = std::sync::Arc::new(exporter);
    exporter.clone().warm_up().await;
    assert_eq!(config_gets(&proxy), 1, "the warm-up read the configuration");
    assert!(
        exporter.plugin_engine_created(),
        "an org has a plugin: the engine is ready"
    );
    assert_eq!(plugin_gets(&proxy), 0, "the warm-up reads no plugin");
    let a = world.put("org1/a.jpg", b"a").await;
    let report = handle(&exporter, parse_event(&s3_event(&[&a])).unwrap()).await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Copied,
        "{:?}",
        report.records[0]
    );
    assert_eq!(
        config_gets(&proxy),
        1,
        "the invocation used the configuration read ahead"
    );
    assert!(plugin_gets(&proxy) >= 1, "the invocation read its org's plugin");

    let plain = World::new(server, &["org1"]).await;
    let exporter = std::sync::Arc::new(Exporter::new(server.client(), plain.settings("jpg")));
    exporter.clone().warm_up().await;
    assert!(
        !exporter.plugin_engine_created(),
        "no org has a plugin: no engine"
    );
}

/// A plugin in S3 whose first GET answers 503: with `retry: 0` that invocation's record
/// fails as retryable (naming the read), and the next invocation of the same process loads
/// the plugin again and copies; with `retry: 1` the GET is retried at once and the first
/// invocation copies.
async fn a_plugin_get_that_fails_once_is_tried_again(server: &'static Server) {
    for retry in [0, 1] {
        let (world, proxy, exporter) =
            passthrough_in_s3(server, "passthrough.wasm", retry, Fault::SlowDown).await;
        let a = world.put("org1/a.jpg", b"a").await;
        let first = handle(&exporter, parse_event(&s3_event(&[&a])).unwrap()).await;
        let r = &first.records[0];
        if retry == 0 {
            assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
            assert!(r.retryable, "a transient load failure is retryable: {r:?}");
            let reason = r.reason.as_deref().unwrap();
            assert!(
                reason.contains("could not be read") && reason.contains("SlowDown"),
                "{reason}"
            );
            // The next invocation comes after the reload backoff (5 ms here: the world's
            // RETRY_BASE_DELAY); waiting past it is not a timing assertion.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let b = world.put("org1/b.jpg", b"b").await;
            let second = handle(&exporter, parse_event(&s3_event(&[&b])).unwrap()).await;
            assert_eq!(
                second.records[0].outcome,
                Outcome::Copied,
                "{:?}",
                second.records[0]
            );
        } else {
            assert_eq!(r.outcome, Outcome::Copied, "retry {retry}: {r:?}");
        }
        let gets = proxy
            .seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path.contains("plugins/passthrough.wasm"))
            .count();
        assert_eq!(gets, 2, "one faulted GET, one that loaded");
    }
}

/// Each org's records wait for their own plugin only: while org1's plugin GET is held at the
/// proxy, the records of org2 (no plugin) and org3 (its own plugin) are copied; org1's record
/// is copied once its GET goes on. Loading every org's plugin before any record moved would
/// leave org2 and org3 waiting, and the watch below would give up.
async fn a_plugin_that_is_slow_to_load_delays_only_its_own_org(server: &'static Server) {
    let world = World::new(server, &["org1", "org2", "org3"]).await;
    let bytes = std::fs::read(plugin_artifacts::PASSTHROUGH).unwrap();
    for key in ["export/plugins/held.wasm", "export/plugins/free.wasm"] {
        world.put_config_object(key, bytes.clone()).await;
    }
    let sha = sha256_hex(plugin_artifacts::PASSTHROUGH);
    let plugin = |source: &str| json!({"source": source, "sha256": sha, "timeoutMs": 5000});
    let config = json!({"retry": 0, "customers": [
        {"org": "org1", "destinationBucket": world.bucket_of("org1"), "plugin": plugin("plugins/held.wasm")},
        {"org": "org2", "destinationBucket": world.bucket_of("org2")},
        {"org": "org3", "destinationBucket": world.bucket_of("org3"), "plugin": plugin("plugins/free.wasm")},
    ]});
    world.write_config(&config.to_string()).await;
    let proxy = FaultProxy::start(
        &server.endpoint,
        vec![Rule {
            fault: Fault::Held,
            path_contains: Some("plugins/held.wasm".into()),
            copies_only: false,
            method: None,
            times: Some(1),
        }],
    )
    .await;
    let exporter = Exporter::new(world.server.client_via(&proxy.endpoint), world.settings("jpg"));
    let objects = [
        world.put("org1/a.jpg", b"a").await,
        world.put("org2/b.jpg", b"b").await,
        world.put("org3/c.jpg", b"c").await,
    ];
    let event = parse_event(&s3_event(&objects.iter().collect::<Vec<_>>())).unwrap();
    let watch = async {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while proxy.copies_to("org2/b.jpg").is_empty() || proxy.copies_to("org3/c.jpg").is_empty() {
            assert!(
                std::time::Instant::now() < give_up,
                "org2's and org3's records waited for org1's plugin load"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            proxy.copies_to("org1/a.jpg").is_empty(),
            "org1's record was copied before its plugin was read"
        );
        proxy.release();
    };
    let (report, ()) = tokio::join!(handle(&exporter, event), watch);
    assert_eq!(report.totals.copied, 3, "{report:?}");
    assert_eq!(world.keys(world.bucket_of("org1")).await, ["org1/a.jpg"]);
}

/// The source's HEAD (for its storage class and checksum) is read while the org's plugin
/// loads, not after: with the plugin GET held at the proxy, the HEAD still reaches the
/// server; then the record is copied with that one HEAD (the copy sends none of its own).
async fn the_source_head_is_read_while_the_plugin_loads(server: &'static Server) {
    let (world, proxy, exporter) = passthrough_in_s3(server, "held.wasm", 0, Fault::Held).await;
    let object = world.put("org1/a.jpg", b"a").await;
    let event = parse_event(&s3_event(&[&object])).unwrap();
    let source_heads = || {
        proxy
            .seen()
            .into_iter()
            .filter(|s| s.method == "HEAD" && s.path.contains("org1/a.jpg"))
            .count()
    };
    let watch = async {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while source_heads() == 0 {
            assert!(
                std::time::Instant::now() < give_up,
                "the source HEAD waited for the plugin load"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        proxy.release();
    };
    let (report, ()) = tokio::join!(handle(&exporter, event), watch);
    assert_eq!(report.totals.copied, 1, "{report:?}");
    assert_eq!(source_heads(), 1, "one HEAD of the source: {:?}", proxy.seen());
}

on_each_server!(
    a_warm_up_reads_the_config_and_creates_the_engine_before_the_first_event,
    a_plugin_get_that_fails_once_is_tried_again,
    a_plugin_that_is_slow_to_load_delays_only_its_own_org,
    the_source_head_is_read_while_the_plugin_loads,
);
