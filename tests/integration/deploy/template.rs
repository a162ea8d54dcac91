use artifact_export::env::{ConfigLocation, Settings};
use serde_json::{Value, json};

use super::{
    CONFIG_BUCKET, CONFIG_KEY, ROLE, clean, render, render_file, resource, statements, template_path,
    template_text, text_of, tool, violations,
};

#[test]
fn cfn_lint_accepts_the_template() {
    let cfn_lint = tool("cfn-lint");
    let out = clean(&cfn_lint)
        .arg(template_path())
        .output()
        .expect("cfn-lint runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {}:\n{}",
        cfn_lint.display(),
        template_path().display(),
        text_of(&out)
    );
}

#[test]
fn the_function_accepts_the_environment_the_template_gives_it() {
    let rendered = render(&[("CopyConcurrency", "24"), ("ConfigRefreshSeconds", "30")]);
    let function = &resource(&rendered, "ExportFunction")["Properties"];
    assert_eq!(function["Runtime"], "provided.al2023");
    assert_eq!(function["Architectures"], json!(["arm64"]));
    assert_eq!(function["Handler"], "bootstrap");
    // The code `make lambda` builds; render.py stands in for `sam package`'s upload.
    assert!(template_text().contains("      CodeUri: ../target/lambda/artifact-export/\n"));
    assert_eq!(
        function["Code"],
        json!({"S3Bucket": "artifact-export-packaged", "S3Key": "artifact-export.zip"})
    );
    assert_eq!(function["Role"], format!("{{{{{ROLE}.Arn}}}}"));
    let vars = function["Environment"]["Variables"].as_object().unwrap().clone();
    let settings = Settings::from_lookup(|name| vars.get(name).and_then(Value::as_str).map(str::to_string))
        .expect("the template's environment is valid");
    assert_eq!(
        settings.config_location,
        ConfigLocation::S3 {
            bucket: CONFIG_BUCKET.into(),
            key: CONFIG_KEY.into()
        }
    );
    assert_eq!(settings.copy_concurrency, 24);
    assert_eq!(settings.config_refresh.as_secs(), 30);
    assert!(
        settings.source_bucket.is_some(),
        "the tenancy check learns the source bucket"
    );
    for name in [
        "SUFFIX_TO_COPY",
        "CONFIGURATION_BUCKET",
        "CONFIGURATION_KEY",
        "COPY_CONCURRENCY",
        "SOURCE_BUCKET",
    ] {
        assert!(vars.contains_key(name), "{name}");
    }
}

#[test]
fn the_expected_bucket_owner_reaches_the_function() {
    let rendered = render(&[("ExpectedBucketOwner", "111122223333")]);
    assert_eq!(
        resource(&rendered, "ExportFunction")["Properties"]["Environment"]["Variables"]["EXPECTED_BUCKET_OWNER"],
        json!("111122223333")
    );
    let rendered = render_file(&template_path(), &[("ExpectedBucketOwner", "1111-2222-3333")]);
    assert_ne!(rendered["parameterErrors"], json!([]));
}

#[test]
fn bucket_and_key_parameters_refuse_what_would_widen_the_role() {
    // Each of these would put a wildcard into a resource ARN of the role (`arn:aws:s3:::*/*`,
    // every object of the config bucket, …); CloudFormation must refuse the parameter.
    let refused: [(&str, &str); 9] = [
        ("SourceBucketName", "*"),
        ("DestinationBucketNames", "*"),
        ("DestinationBucketNames", "org1-export,*"),
        ("DestinationBucketNames", "org1-export,org?-export"),
        ("ConfigBucketName", "*"),
        ("ConfigKey", "*"),
        ("ConfigKey", "artifact-export/${aws:username}"),
        ("PluginBucketName", "*"),
        ("PluginKeyPrefix", "plugins/*"),
    ];
    for (name, value) in refused {
        let mut params = vec![(name, value)];
        if name == "PluginKeyPrefix" {
            params.push(("PluginBucketName", "plugin-store"));
        }
        let rendered = render_file(&template_path(), &params);
        let errors = rendered["parameterErrors"].to_string();
        assert!(
            errors.contains(name),
            "{name}={value:?} must be refused; got {errors}"
        );
    }
    // Names and keys as they really are still pass.
    render(&[
        ("DestinationBucketNames", "a.b-c,org1-export,x12"),
        ("ConfigKey", "dir/sub dir/config (v2).json"),
        ("PluginBucketName", "plugin-store"),
        ("PluginKeyPrefix", ""),
    ]);
}

#[test]
fn without_its_allowed_pattern_a_star_destination_would_grant_every_bucket() {
    // The pattern is what stands between a `*` and `arn:aws:s3:::*/*`: without it, the
    // rendered role has exactly the violation the IAM check reports.
    let text = template_text();
    let pattern = "    # Each entry must be a bucket name: a `*` would widen the role to arn:aws:s3:::*/*.\n    AllowedPattern: \"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$\"\n";
    assert_eq!(
        text.matches(pattern).count(),
        1,
        "DestinationBucketNames has its pattern"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.yaml");
    std::fs::write(&path, text.replacen(pattern, "", 1)).unwrap();
    let rendered = render_file(&path, &[("DestinationBucketNames", "*")]);
    assert_eq!(rendered["parameterErrors"], json!([]));
    let found = violations(&statements(&rendered));
    assert!(
        found
            .iter()
            .any(|v| v.contains("S3 action on resource \"arn:aws:s3:::*/*\"")),
        "{found:#?}"
    );
}
