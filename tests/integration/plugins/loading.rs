use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::report::Outcome;
use serde_json::json;

use super::{config_with, record, run, sha256_hex};
use crate::support::events::s3_event;
use crate::support::paths::binary;
use crate::support::servers::{Server, garage};
use crate::support::world::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_sha256_fails_only_that_org() {
    let server = garage();
    let plugin =
        json!({"source": plugin_artifacts::PASSTHROUGH, "sha256": "00".repeat(32), "timeoutMs": 5000});
    let world = World::with_config(server, &["org1", "org2"], |orgs| {
        config_with(orgs, &[("org2", plugin)])
    })
    .await;
    let a = world.put("org1/a.jpg", b"a").await;
    let b = world.put("org2/b.jpg", b"b").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &b])).unwrap(),
    )
    .await;
    assert_eq!(record(&report, "org1/a.jpg").outcome, Outcome::Copied);
    let r = record(&report, "org2/b.jpg");
    assert_eq!(r.outcome, Outcome::Failed);
    let reason = r.reason.as_deref().unwrap();
    assert!(reason.contains("sha256 mismatch: config pins 0000"), "{reason}");
    assert!(
        reason.contains(&sha256_hex(plugin_artifacts::PASSTHROUGH)),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cwasm_from_another_engine_is_refused_clearly() {
    let server = garage();
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.cwasm");
    // Same wasmtime, different configuration (no epoch interruption): not loadable here.
    let engine = wasmtime::Engine::new(&wasmtime::Config::new()).unwrap();
    let wasm = std::fs::read(plugin_artifacts::PASSTHROUGH).unwrap();
    std::fs::write(&foreign, engine.precompile_component(&wasm).unwrap()).unwrap();
    let plugin = json!({"source": foreign.to_str().unwrap(), "precompiled": true});
    let world = World::with_config(server, &["org1", "org2"], |orgs| {
        config_with(orgs, &[("org2", plugin)])
    })
    .await;
    let a = world.put("org1/a.jpg", b"a").await;
    let b = world.put("org2/b.jpg", b"b").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &b])).unwrap(),
    )
    .await;
    assert_eq!(record(&report, "org1/a.jpg").outcome, Outcome::Copied);
    let reason = record(&report, "org2/b.jpg").reason.clone().unwrap();
    assert!(reason.contains("precompiled for a different engine"), "{reason}");
    assert!(
        reason.contains("recompile it with `artifact-export plugin compile`"),
        "{reason}"
    );
}

/// A `.cwasm` is native code: it loads only where the config says `precompiled: true`; as
/// an ordinary source it is refused with one clear line, and a `.wasm` declared
/// precompiled is refused too.
async fn a_cwasm_loads_only_when_declared_precompiled(server: &'static Server) {
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("passthrough.cwasm");
    let (code, _, stderr) = run(binary()
        .args(["plugin", "compile", plugin_artifacts::PASSTHROUGH, "-o"])
        .arg(&cwasm));
    assert_eq!(code, Some(0), "{stderr}");
    let cwasm = cwasm.to_str().unwrap();
    let plugins = [
        (
            "declared",
            json!({"source": cwasm, "precompiled": true, "timeoutMs": 5000}),
        ),
        ("undeclared", json!({"source": cwasm, "timeoutMs": 5000})),
        (
            "wasmdeclared",
            json!({"source": plugin_artifacts::PASSTHROUGH, "precompiled": true, "timeoutMs": 5000}),
        ),
    ];
    let world = World::with_config(server, &["declared", "undeclared", "wasmdeclared"], |orgs| {
        config_with(orgs, &plugins)
    })
    .await;
    let a = world.put("declared/a.jpg", b"a").await;
    let b = world.put("undeclared/b.jpg", b"b").await;
    let c = world.put("wasmdeclared/c.jpg", b"c").await;
    let report = handle(
        &world.exporter(world.settings("jpg")),
        parse_event(&s3_event(&[&a, &b, &c])).unwrap(),
    )
    .await;
    let r = record(&report, "declared/a.jpg");
    assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    let r = record(&report, "undeclared/b.jpg");
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    let reason = r.reason.as_deref().unwrap();
    assert!(
        reason.contains("is a precompiled .cwasm (native code), refused as an ordinary source")
            && reason.contains("\"precompiled\": true")
            && !reason.contains('\n'),
        "{reason}"
    );
    let r = record(&report, "wasmdeclared/c.jpg");
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("is declared \"precompiled\": true but is not a .cwasm"),
        "{r:?}"
    );
}

on_each_server!(a_cwasm_loads_only_when_declared_precompiled);

/// The compile cache never lets a `.cwasm` that one org declares `precompiled` serve another
/// org that names the same bytes without declaring it: that org is refused whatever order
/// the loads finish in (here the declared one is loaded first, which used to fill the cache).
#[tokio::test]
async fn a_cached_cwasm_is_still_refused_where_undeclared() {
    use artifact_export::config::{DEFAULT_MAX_INSTRUCTIONS, OnError, PluginSource, PluginSpec};
    use artifact_export::policy::Runtime;

    let runtime = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("passthrough.cwasm");
    let wasm = std::fs::read(plugin_artifacts::PASSTHROUGH).unwrap();
    std::fs::write(&cwasm, runtime.engine().precompile_component(&wasm).unwrap()).unwrap();
    let spec = |precompiled| PluginSpec {
        source: PluginSource::File(cwasm.clone()),
        sha256: None,
        settings: "{}".into(),
        timeout: std::time::Duration::from_secs(5),
        max_memory_bytes: 16 << 20,
        max_instructions: DEFAULT_MAX_INSTRUCTIONS,
        precompiled,
        on_error: OnError::Fail,
        candidate: None,
    };
    runtime.load(None, &spec(true)).await.expect("declared: loads");
    let refused = runtime
        .load(None, &spec(false))
        .await
        .err()
        .expect("undeclared: refused although the same bytes are in the cache");
    assert!(
        refused
            .to_string()
            .contains("is a precompiled .cwasm (native code), refused as an ordinary source"),
        "{refused}"
    );
}
