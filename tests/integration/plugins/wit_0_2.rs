//! WIT `artifact-export:policy@0.2.0` hosted beside 0.1.0: the facts of the source's HEAD,
//! tags on demand, and a target's own storage class and tags, through the handler against
//! real servers. `echo-facts` (a 0.2 test guest) writes what it was given into the copy's
//! key; `tiering` is the 0.2 example of `plugins/`.

use artifact_export::event::parse_event;
use artifact_export::handler::handle;
use artifact_export::reason::ReasonCode;
use artifact_export::report::Outcome;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumMode;
use serde_json::{Value, json};

use super::{config_with, org_line, record};
use crate::support::events::s3_event;
use crate::support::proxy::FaultProxy;
use crate::support::servers::Server;
use crate::support::world::World;

const MIB: usize = 1024 * 1024;

fn echo(settings: &str) -> Value {
    json!({"source": plugin_artifacts::ECHO_FACTS, "timeoutMs": 5000, "settings": {"w": settings}})
}

/// The algorithm of the full-object checksum a HEAD shows, or `-`.
async fn checksum_algorithm(world: &World, key: &str) -> String {
    let head = world
        .client
        .head_object()
        .bucket(&world.source)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    [
        ("CRC64NVME", head.checksum_crc64_nvme()),
        ("CRC32", head.checksum_crc32()),
        ("CRC32C", head.checksum_crc32_c()),
        ("SHA1", head.checksum_sha1()),
        ("SHA256", head.checksum_sha256()),
    ]
    .into_iter()
    .find(|(_, v)| v.is_some())
    .map_or("-".to_string(), |(a, _)| a.to_string())
}

/// One invocation, three orgs: a 0.1 plugin (glob-filter), a 0.2 plugin that is given the
/// HEAD's facts, and a 0.2 plugin whose answer names a storage class no copy may have. Each
/// decides by its own contract; the invalid answer fails only its own record.
async fn a_0_1_and_a_0_2_plugin_decide_in_one_invocation(server: &'static Server) {
    let glob = json!({"source": plugin_artifacts::GLOB_FILTER, "timeoutMs": 5000,
                      "settings": {"include": ["**/*.png"]}});
    let world = World::with_config(server, &["org1", "org2", "org3"], |orgs| {
        config_with(
            orgs,
            &[
                ("org1", glob),
                ("org2", echo("")),
                ("org3", echo("class=glacier;")),
            ],
        )
    })
    .await;
    let mut uploads = Vec::new();
    for org in ["org1", "org2", "org3"] {
        let key = format!("{org}/a.png");
        let request = world
            .client
            .put_object()
            .key(&key)
            .content_type("image/png")
            .metadata("Team", "a")
            .body(ByteStream::from(b"png!".to_vec()));
        uploads.push(world.put_object(request, &key).await);
    }
    let refs: Vec<_> = uploads.iter().collect();
    let report = handle(
        &world.exporter(world.settings("png")),
        parse_event(&s3_event(&refs)).unwrap(),
    )
    .await;
    // 0.1: decided as before, the copy under the same key.
    assert_eq!(record(&report, "org1/a.png").outcome, Outcome::Copied);
    assert_eq!(world.keys(world.bucket_of("org1")).await, ["org1/a.png"]);
    // 0.2: given the HEAD's facts (type, length, class, metadata, checksum).
    let org2 = record(&report, "org2/a.png");
    assert_eq!(org2.outcome, Outcome::Copied, "{org2:?}");
    let checksum = checksum_algorithm(&world, "org2/a.png").await;
    assert_eq!(
        world.keys(world.bucket_of("org2")).await,
        [format!(
            "facts/image/png/4/STANDARD/team=a/{checksum}/-/org2/a.png"
        )]
    );
    // The report carries what the 0.2 plugin was given (a replay asks it again); a 0.1
    // plugin's record carries no HEAD facts.
    let reported = |key: &str| serde_json::to_value(record(&report, key)).unwrap();
    assert_eq!(
        reported("org2/a.png")["object"]["head"]["contentType"],
        "image/png"
    );
    assert_eq!(
        reported("org2/a.png")["object"]["head"]["metadata"],
        json!({"team": "a"})
    );
    assert_eq!(reported("org1/a.png")["object"].get("head"), None);
    // A storage class no copy may have fails the decision as invalid, for its org alone.
    let org3 = record(&report, "org3/a.png");
    assert_eq!(org3.outcome, Outcome::Failed, "{org3:?}");
    assert_eq!(
        org3.reason_code,
        Some(ReasonCode::PluginInvalidAnswer),
        "{org3:?}"
    );
    assert!(
        org3.reason
            .as_deref()
            .unwrap()
            .contains("storage-class \"glacier\" is not valid"),
        "{org3:?}"
    );
    assert!(world.keys(world.bucket_of("org3")).await.is_empty());
}

/// `tags` reads `GetObjectTagging` once, only for the plugin that calls it, counted in the
/// plugin metrics; on a server without tagging (Garage) the plugin gets a clear error.
async fn tags_are_read_on_demand(server: &'static Server) {
    let world = World::with_config(server, &["org1", "org2"], |orgs| {
        config_with(orgs, &[("org1", echo("")), ("org2", echo("tags"))])
    })
    .await;
    let put = |key: &str| {
        let mut request = world
            .client
            .put_object()
            .key(key)
            .content_type("text/plain")
            .body(ByteStream::from(b"x".to_vec()));
        if server.caps.tagging {
            request = request.tagging("team=a&stage=raw");
        }
        (request, key.to_string())
    };
    let (request, key) = put("org1/a.png");
    let a = world.put_object(request, &key).await;
    let (request, key) = put("org2/b.png");
    let b = world.put_object(request, &key).await;
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let exporter =
        artifact_export::exporter::Exporter::new(server.client_via(&proxy.endpoint), world.settings("png"));
    let report = handle(&exporter, parse_event(&s3_event(&[&a, &b])).unwrap()).await;
    let tag_reads = |key: &str| {
        proxy
            .seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path.contains("tagging") && s.path.contains(key))
            .count()
    };
    // The plugin that never calls `tags` costs no tag read.
    assert_eq!(record(&report, "org1/a.png").outcome, Outcome::Copied);
    assert_eq!(tag_reads("a.png"), 0, "{:?}", proxy.seen());
    let b = record(&report, "org2/b.png");
    if server.caps.tagging {
        assert_eq!(b.outcome, Outcome::Copied, "{b:?}");
        let checksum = checksum_algorithm(&world, "org2/b.png").await;
        assert_eq!(
            world.keys(world.bucket_of("org2")).await,
            [format!(
                "facts/text/plain/1/STANDARD/-/{checksum}/stage:raw,team:a/org2/b.png"
            )]
        );
        assert_eq!(tag_reads("b.png"), 1);
        assert_eq!(org_line(&report, "org2")["PluginTagReads"], json!(1));
        // The report keeps the answer, for a replay.
        let reported = serde_json::to_value(record(&report, "org2/b.png")).unwrap();
        assert_eq!(reported["object"]["tags"], json!({"stage": "raw", "team": "a"}));
    } else {
        eprintln!(
            "SKIP on {}: no object tagging; the plugin is told so",
            server.name
        );
        assert_eq!(b.outcome, Outcome::Skipped, "{b:?}");
        let reason = b.reason.as_deref().unwrap();
        assert!(
            reason.contains("tags: the source server does not implement object tagging"),
            "{reason}"
        );
        let reported = serde_json::to_value(b).unwrap();
        assert!(
            reported["object"]["tagsError"]
                .as_str()
                .unwrap()
                .contains("does not implement object tagging"),
            "{reported}"
        );
        assert_eq!(org_line(&report, "org2")["PluginTagReads"], json!(1));
    }
}

/// A target's own storage class and tags (the `tiering` example): sent on `CopyObject` and
/// on a multipart copy's `CreateMultipartUpload`, kept by the server with the source's tags
/// merged in; more than 10 tags after merging fails that copy, naming the count.
async fn a_targets_class_and_tags_reach_the_copy(server: &'static Server) {
    require!(
        server,
        tagging,
        "no object tagging: a target's tags cannot be written"
    );
    let tiering = json!({"source": plugin_artifacts::TIERING, "timeoutMs": 5000,
        "settings": {"rules": [{"contentType": "image/*", "storageClass": "STANDARD_IA", "tags": {"tier": "warm"}}]}});
    let world = World::with_config(server, &["org1", "org2"], |orgs| {
        config_with(orgs, &[("org1", tiering), ("org2", echo("tag=x:1;tag=y:2;"))])
    })
    .await;
    let put = |key: &str, body: Vec<u8>, tagging: &str| {
        world
            .client
            .put_object()
            .key(key)
            .content_type("image/png")
            .tagging(tagging)
            .body(ByteStream::from(body))
    };
    let small = world
        .put_object(
            put("org1/a.png", b"png".to_vec(), "team=a&tier=hot"),
            "org1/a.png",
        )
        .await;
    let large = world
        .put_object(put("org1/big.png", vec![7u8; 6 * MIB], "team=a"), "org1/big.png")
        .await;
    let nine: Vec<String> = (0..9).map(|i| format!("k{i}=v")).collect();
    let crowded = world
        .put_object(put("org2/c.png", b"c".to_vec(), &nine.join("&")), "org2/c.png")
        .await;
    let proxy = FaultProxy::start(&server.endpoint, vec![]).await;
    let mut settings = world.settings("png");
    settings.multipart_threshold = 5 * MIB as u64;
    let exporter = artifact_export::exporter::Exporter::new(server.client_via(&proxy.endpoint), settings);
    let report = handle(
        &exporter,
        parse_event(&s3_event(&[&small, &large, &crowded])).unwrap(),
    )
    .await;
    for key in ["org1/a.png", "org1/big.png"] {
        let r = record(&report, key);
        assert_eq!(r.outcome, Outcome::Copied, "{r:?}");
    }
    // On the wire: the class, and the tag set replaced by the source's with the target's.
    let copy = proxy
        .seen()
        .into_iter()
        .find(|s| s.method == "PUT" && s.copy && s.path.contains("a.png"))
        .expect("the CopyObject of org1/a.png");
    assert_eq!(
        copy.header("x-amz-storage-class"),
        Some("STANDARD_IA"),
        "{copy:?}"
    );
    assert_eq!(
        copy.header("x-amz-tagging-directive"),
        Some("REPLACE"),
        "{copy:?}"
    );
    assert_eq!(copy.header("x-amz-tagging"), Some("team=a&tier=warm"), "{copy:?}");
    let create = proxy
        .seen()
        .into_iter()
        .find(|s| s.method == "POST" && s.path.contains("big.png") && s.path.contains("uploads"))
        .expect("the CreateMultipartUpload of org1/big.png");
    assert_eq!(
        create.header("x-amz-storage-class"),
        Some("STANDARD_IA"),
        "{create:?}"
    );
    assert_eq!(
        create.header("x-amz-tagging"),
        Some("team=a&tier=warm"),
        "{create:?}"
    );
    // Kept by the server.
    let dest = world.bucket_of("org1");
    for key in ["org1/a.png", "org1/big.png"] {
        let head = world
            .client
            .head_object()
            .bucket(dest)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.storage_class().map(|c| c.as_str()),
            Some("STANDARD_IA"),
            "{key}"
        );
        let tags = world
            .client
            .get_object_tagging()
            .bucket(dest)
            .key(key)
            .send()
            .await
            .unwrap();
        let mut tags: Vec<String> = tags
            .tag_set()
            .iter()
            .map(|t| format!("{}={}", t.key(), t.value()))
            .collect();
        tags.sort();
        assert_eq!(tags, ["team=a", "tier=warm"], "{key}");
    }
    // 9 tags of the source and 2 added: 11, over S3's 10.
    let crowded = record(&report, "org2/c.png");
    assert_eq!(crowded.outcome, Outcome::Failed, "{crowded:?}");
    let reason = crowded.reason.as_deref().unwrap();
    assert!(reason.contains("11 after merging"), "{reason}");
    assert!(world.keys(world.bucket_of("org2")).await.is_empty());
}

on_each_server!(
    a_0_1_and_a_0_2_plugin_decide_in_one_invocation,
    tags_are_read_on_demand,
    a_targets_class_and_tags_reach_the_copy,
);
