use std::collections::BTreeSet;

use serde_json::json;

use super::{backfill_cmd, requests_since, run, run_via_proxy};
use crate::support::proxy::FaultProxy;
use crate::support::servers::{Server, garage};
use crate::support::world::World;

/// org1 without a plugin; org2 with key-rewriter moving `org2/` to `exports/`.
async fn rewriting_world(server: &'static Server) -> World {
    let plugin = json!({
        "source": plugin_artifacts::KEY_REWRITER,
        "timeoutMs": 5000,
        "settings": {"replacePrefix": {"from": "org2/", "to": "exports/"}}
    });
    World::with_config(server, &["org1", "org2"], |orgs| {
        json!({"customers": [
            {"org": "org1", "destinationBucket": orgs[0].1},
            {"org": "org2", "destinationBucket": orgs[1].1, "plugin": plugin}
        ], "retry": 0})
        .to_string()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_decide_during_a_backfill() {
    let server = garage();
    let world = rewriting_world(server).await;
    world.put("org2/x/a.jpg", b"rewritten").await;
    let out = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        world
            .get(world.bucket_of("org2"), "exports/x/a.jpg")
            .await
            .as_deref(),
        Some(&b"rewritten"[..])
    );
    let again = run(&mut backfill_cmd(&world, &server.endpoint));
    assert_eq!(
        again.count("already in place"),
        1,
        "the rewritten key is checked: {}",
        again.stderr
    );
}

/// A key a plugin rewrote is not under the source's key, so the destination listing cannot
/// answer for it: it is checked with a HEAD, while the org without a plugin sends none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_key_is_checked_with_head() {
    let server = garage();
    let world = rewriting_world(server).await;
    for key in ["org1/a.jpg", "org1/b.jpg", "org2/x/a.jpg", "org2/x/b.jpg"] {
        world.put(key, key.as_bytes()).await;
    }
    let (dest1, dest2) = (world.bucket_of("org1"), world.bucket_of("org2"));
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let first = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(first.count("copied"), 4, "{}", first.stderr);
    let mark = proxy.seen().len();
    let again = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(again.count("already in place"), 4, "{}", again.stderr);
    let sent = requests_since(&proxy, mark, &[dest1, dest2]);
    let heads: BTreeSet<&str> = sent
        .heads
        .iter()
        .map(|s| s.path.split('?').next().unwrap_or_default())
        .collect();
    let expected: BTreeSet<String> = ["exports/x/a.jpg", "exports/x/b.jpg"]
        .iter()
        .map(|k| format!("/{dest2}/{k}"))
        .collect();
    assert_eq!(heads, expected.iter().map(String::as_str).collect());
}

/// A backfill gives a WIT 0.2 plugin the source's HEAD facts, as a live event does: the
/// `echo-facts` guest writes the content type and metadata it was given into the copy's key.
/// The HEAD is read once per object: the in-place check of the second run reuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_gives_a_0_2_plugin_the_heads_facts() {
    let server = garage();
    let plugin = json!({"source": plugin_artifacts::ECHO_FACTS, "timeoutMs": 5000});
    let world = World::with_config(server, &["org2"], |orgs| {
        json!({"customers": [{"org": "org2", "destinationBucket": orgs[0].1, "plugin": plugin}], "retry": 0})
            .to_string()
    })
    .await;
    let request = world
        .client
        .put_object()
        .key("org2/a.jpg")
        .content_type("image/jpeg")
        .metadata("team", "a")
        .body(aws_sdk_s3::primitives::ByteStream::from(b"jpg".to_vec()));
    world.put_object(request, "org2/a.jpg").await;
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let out = run_via_proxy(&mut backfill_cmd(&world, &proxy.endpoint)).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let keys = world.keys(world.bucket_of("org2")).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("facts/image/jpeg/3/STANDARD/team=a/") && keys[0].ends_with("/-/org2/a.jpg"),
        "{keys:?}"
    );
    let source_heads = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "HEAD" && s.path.starts_with(&format!("/{}/", world.source)))
        .count();
    assert_eq!(
        source_heads, 1,
        "one HEAD of the source, shared by the plan and the copy"
    );
}
