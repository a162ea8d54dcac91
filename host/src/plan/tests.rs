//! Unit tests of the plan: every decision path with a canned plugin answer.

use std::time::Duration;

use super::*;
use crate::config::Config;
use crate::policy::{LoadError, MAX_TARGETS};
use crate::route::propose;
use crate::suffix::SuffixSet;

const PLUGIN: &str = "p.wasm";

fn org(on_error: &str) -> Org {
    let text = format!(
        r#"{{"customers":[{{"org":"org1","destinationBucket":"org1-export","allowedBuckets":["org1-archive"],
            "plugin":{{"source":"/plugins/p.wasm","onError":"{on_error}"}}}}]}}"#
    );
    Config::parse(&text, "test.json").unwrap().customers.remove(0)
}

fn target(bucket: &str, key: &str) -> Target {
    Target::new(bucket, key)
}

fn proposed() -> Vec<Target> {
    vec![target("org1-export", "org1/a.jpg")]
}

fn answer(on_error: &str, proposed: Vec<Target>, answer: Result<Verdict, DecisionError>) -> Decision {
    let org = org(on_error);
    let on_error = org.plugin.as_ref().unwrap().on_error;
    apply_answer(
        &org,
        on_error,
        PLUGIN,
        proposed,
        "suffix not selected".into(),
        answer,
    )
}

#[test]
fn targets_in_the_orgs_buckets_are_copied() {
    let targets = vec![
        target("org1-export", "renamed/a.jpg"),
        target("org1-archive", "a.jpg"),
    ];
    assert_eq!(
        answer("fail", proposed(), Ok(Verdict::Copy(targets.clone()))),
        Decision::Copy(targets)
    );
}

#[test]
fn identical_targets_are_copied_once() {
    let a = target("org1-export", "a.jpg");
    let b = target("org1-archive", "a.jpg");
    let answered = vec![a.clone(), b.clone(), a.clone(), b.clone(), a.clone()];
    assert_eq!(
        answer("fail", proposed(), Ok(Verdict::Copy(answered))),
        Decision::Copy(vec![a, b])
    );
}

#[test]
fn no_targets_is_a_skip() {
    assert_eq!(
        answer("fail", proposed(), Ok(Verdict::Copy(Vec::new()))),
        Decision::Skip("plugin p.wasm chose no targets".into())
    );
}

#[test]
fn a_skip_answer_names_the_plugin() {
    assert_eq!(
        answer("fail", proposed(), Ok(Verdict::Skip("drafts stay home".into()))),
        Decision::Skip("plugin p.wasm: drafts stay home".into())
    );
}

#[test]
fn every_broken_answer_fails_whatever_on_error_says() {
    let too_many = vec![target("org1-export", "k"); MAX_TARGETS + 1];
    let cases = [
        (
            vec![target("org2-export", "org1/a.jpg")],
            "bucket \"org2-export\"",
        ),
        (too_many, "at most 32 are allowed"),
        (vec![target("org1-export", "")], "key is 0 bytes"),
        (
            vec![target("org1-export", &"k".repeat(1025))],
            "key is 1025 bytes",
        ),
    ];
    for on_error in ["fail", "skip", "default"] {
        for (targets, why) in &cases {
            match answer(on_error, proposed(), Ok(Verdict::Copy(targets.clone()))) {
                Decision::Fail(Failed { code, reason, .. }) => {
                    assert_eq!(code, ReasonCode::PluginInvalidAnswer);
                    assert!(
                        reason.starts_with("org org1: plugin p.wasm answer rejected: ")
                            && reason.contains(why),
                        "{on_error}: {reason}"
                    )
                }
                other => panic!("{on_error}, {why}: expected a failure, got {other:?}"),
            }
        }
    }
}

fn failures() -> [DecisionError; 4] {
    [
        DecisionError::Timeout(Duration::from_millis(20)),
        DecisionError::OutOfMemory(16 << 20),
        DecisionError::Trap("unreachable".into()),
        DecisionError::Refused("bad settings".into()),
    ]
}

#[test]
fn on_error_fail_fails_the_record() {
    for error in failures() {
        let text = error.to_string();
        let code = match error {
            DecisionError::Timeout(_) => ReasonCode::PluginTimeout,
            _ => ReasonCode::PluginError,
        };
        assert_eq!(
            answer("fail", proposed(), Err(error)),
            Decision::Fail(Failed {
                code,
                reason: format!("org org1: plugin p.wasm {text}"),
                retryable: false,
            })
        );
    }
}

#[test]
fn on_error_skip_skips_it() {
    for error in failures() {
        let text = error.to_string();
        assert_eq!(
            answer("skip", proposed(), Err(error)),
            Decision::Skip(format!("org org1: plugin p.wasm {text} (onError: skip)"))
        );
    }
}

#[test]
fn on_error_default_lets_suffix_matching_decide() {
    for error in failures() {
        assert_eq!(
            answer("default", proposed(), Err(error)),
            Decision::Copy(proposed())
        );
    }
    assert_eq!(
        answer("default", Vec::new(), Err(DecisionError::Trap("x".into()))),
        Decision::Skip("suffix not selected".into())
    );
}

#[tokio::test]
async fn an_org_without_a_loaded_plugin_fails() {
    let config = Config::parse(
        r#"{"customers":[{"org":"org1","destinationBucket":"org1-export","plugin":{"source":"/plugins/p.wasm"}},
            {"org":"org2","destinationBucket":"org2-export"}]}"#,
        "test.json",
    )
    .unwrap();
    let suffixes = SuffixSet::parse_list("jpg").unwrap();
    let object = |key: &str| SourceObject::created("src", key);
    let plan_of = |key: &str, plugin: Option<PluginLoad>| {
        let object = object(key);
        let config = &config;
        let suffixes = &suffixes;
        async move {
            let proposal = propose(config, suffixes, &object);
            let org = proposal.org.map(|c| c.org.clone());
            let Planned { decision, .. } = plan(proposal, plugin.as_ref(), Ask::Now(&object)).await;
            (org, decision)
        }
    };
    let (org, decision) = plan_of("org1/a.jpg", None).await;
    assert_eq!(org.as_deref(), Some("org1"));
    assert_eq!(
        decision,
        Decision::Fail(Failed {
            code: ReasonCode::PluginNotLoaded,
            reason: "org org1: plugin /plugins/p.wasm is not loaded".into(),
            retryable: false,
        })
    );
    let failure = LoadError::Invalid {
        plugin: "/plugins/p.wasm".into(),
        reason: "not a component".into(),
    };
    let text = failure.to_string();
    let (_, decision) = plan_of("org1/a.jpg", Some(Err(failure))).await;
    assert_eq!(
        decision,
        Decision::Fail(Failed {
            code: ReasonCode::PluginNotLoaded,
            reason: format!("org org1: {text}"),
            retryable: false,
        })
    );
    // The other org has no plugin: plain suffix matching, unaffected.
    let (_, decision) = plan_of("org2/b.jpg", None).await;
    assert_eq!(
        decision,
        Decision::Copy(vec![target("org2-export", "org2/b.jpg")])
    );
    let (_, decision) = plan_of("org2/b.txt", None).await;
    assert_eq!(
        decision,
        Decision::Skip("suffix not selected (exported: jpg)".into())
    );
}
