use super::*;
use std::collections::HashMap;

fn settings(vars: &[(&str, &str)]) -> Result<Settings, EnvError> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::from_lookup(move |name| map.get(name).cloned())
}

const BASE: &[(&str, &str)] = &[
    ("SUFFIX_TO_COPY", "jpg, .PDF,indd"),
    ("CONFIGURATION_BUCKET", "cfg"),
    ("CONFIGURATION_KEY", "export/config.json"),
];

/// `validate` and `plan` load plugins with the Lambda's owner and backoff, without the
/// variables only copies need.
#[test]
fn loading_reads_the_owner_and_the_backoff_alone() {
    let map: HashMap<&str, &str> = [
        ("EXPECTED_BUCKET_OWNER", "111111111111"),
        ("RETRY_BASE_DELAY_MS", "7"),
        ("ENV", "local"),
    ]
    .into();
    let get = |name: &str| map.get(name).map(|v| v.to_string());
    let location = ConfigLocation::File("config.json".into());
    let suffixes = SuffixSet::parse_list("jpg").unwrap();
    let s = Settings::for_loading(&get, location.clone(), suffixes).unwrap();
    assert_eq!(s.expected_bucket_owner.as_deref(), Some("111111111111"));
    assert_eq!(s.retry_base_delay, Duration::from_millis(7));
    assert_eq!(s.config_location, location);
    assert_eq!(s.local, None);
    let bad = |name: &str| (name == "EXPECTED_BUCKET_OWNER").then(|| "nobody".to_string());
    let suffixes = SuffixSet::parse_list("jpg").unwrap();
    assert!(matches!(
        Settings::for_loading(&bad, location, suffixes),
        Err(EnvError::Invalid {
            name: "EXPECTED_BUCKET_OWNER",
            ..
        })
    ));
}

#[test]
fn defaults() {
    let s = settings(BASE).unwrap();
    assert_eq!(s.suffixes.as_slice(), ["jpg", "pdf", "indd"]);
    assert_eq!(s.config_location.to_string(), "s3://cfg/export/config.json");
    assert_eq!(s.config_refresh, Duration::from_secs(60));
    assert_eq!(s.multipart_threshold, COPY_OBJECT_LIMIT);
    assert_eq!(s.copy_concurrency, 16);
    assert_eq!(s.timeouts, Timeouts::default());
    assert_eq!(s.timeouts.request, Duration::from_secs(10));
    assert_eq!(s.timeouts.copy, Duration::from_secs(600));
    assert_eq!(s.deadline_margin, Duration::from_secs(5));
    assert_eq!(s.sts_endpoint, None);
}

#[test]
fn a_multipart_threshold_under_one_part_is_refused() {
    let with = |value: &str| {
        let mut all = BASE.to_vec();
        all.push(("MULTIPART_COPY_THRESHOLD", value));
        settings(&all)
    };
    let err = with("1048576").unwrap_err().to_string();
    assert!(err.contains("MULTIPART_COPY_THRESHOLD"), "{err}");
    assert!(err.contains("from 5242880 to 5368709120"), "{err}");
    assert!(with("5242879").is_err());
    assert_eq!(with("5242880").unwrap().multipart_threshold, MIN_PART_SIZE);
}

#[test]
fn sts_endpoint_prefers_its_own_variable() {
    let with = |vars: &[(&str, &str)]| {
        let mut all = BASE.to_vec();
        all.extend_from_slice(vars);
        settings(&all).unwrap().sts_endpoint
    };
    assert_eq!(
        with(&[("AWS_ENDPOINT_URL", "http://s3:1")]).as_deref(),
        Some("http://s3:1")
    );
    assert_eq!(
        with(&[
            ("AWS_ENDPOINT_URL", "http://s3:1"),
            ("AWS_ENDPOINT_URL_STS", "http://sts:2")
        ])
        .as_deref(),
        Some("http://sts:2")
    );
}

#[test]
fn missing_or_empty_is_named() {
    for missing in ["SUFFIX_TO_COPY", "CONFIGURATION_BUCKET", "CONFIGURATION_KEY"] {
        let vars: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != missing).collect();
        let err = settings(&vars).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("environment variable {missing} is missing")),
            "{err}"
        );
        let mut blank = vars.clone();
        blank.push((missing, "  "));
        assert!(settings(&blank).unwrap_err().to_string().contains(missing));
    }
}

#[test]
fn config_file_replaces_bucket_and_key() {
    let get = |name: &str| (name == "SUFFIX_TO_COPY").then(|| "jpg".to_string());
    let s = Settings::from_lookup_with_config(&get, Some("c.json".into())).unwrap();
    assert_eq!(s.config_location, ConfigLocation::File("c.json".into()));
}

#[test]
fn local_mode_reads_its_own_variables() {
    let s = settings(&[
        ("ENV", "local"),
        ("SUFFIX_TO_COPY", "jpg"),
        ("LOCAL_CONFIGURATION", "cfg.json"),
        ("LOCAL_DEST", "/tmp/out"),
        ("LOCAL_SOURCE", "/tmp/in"),
        ("DESTINATION_KEY", "renamed.jpg"),
    ])
    .unwrap();
    assert_eq!(s.config_location, ConfigLocation::File("cfg.json".into()));
    let local = s.local.unwrap();
    assert_eq!(local.dest_dir, PathBuf::from("/tmp/out"));
    assert_eq!(local.source_dir, Some(PathBuf::from("/tmp/in")));
    assert_eq!(local.destination_key.as_deref(), Some("renamed.jpg"));
    let err = settings(&[
        ("ENV", "local"),
        ("SUFFIX_TO_COPY", "jpg"),
        ("LOCAL_CONFIGURATION", "c"),
    ])
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("environment variable LOCAL_DEST is missing"),
        "{err}"
    );
    let err = settings(&[("ENV", "local"), ("SUFFIX_TO_COPY", "jpg"), ("LOCAL_DEST", "d")]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("environment variable LOCAL_CONFIGURATION is missing"),
        "{err}"
    );
    assert!(settings(BASE).unwrap().local.is_none());
}

#[test]
fn numbers_are_checked() {
    let mut vars = BASE.to_vec();
    vars.push(("MULTIPART_COPY_THRESHOLD", "6000000000"));
    let err = settings(&vars).unwrap_err().to_string();
    assert_eq!(
        err,
        "environment variable MULTIPART_COPY_THRESHOLD=\"6000000000\" is invalid; expected a whole number from 5242880 to 5368709120"
    );
    let mut vars = BASE.to_vec();
    vars.push(("COPY_CONCURRENCY", "0"));
    assert!(settings(&vars).is_err());
    let mut vars = BASE.to_vec();
    vars.push(("COPY_CONCURRENCY", "4"));
    assert_eq!(settings(&vars).unwrap().copy_concurrency, 4);
}

#[test]
fn timeouts_and_the_deadline_margin_come_from_the_environment() {
    let mut vars = BASE.to_vec();
    vars.extend([
        ("S3_REQUEST_TIMEOUT_MS", "1500"),
        ("COPY_REQUEST_TIMEOUT_MS", "120000"),
        ("DEADLINE_MARGIN_MS", "2000"),
    ]);
    let s = settings(&vars).unwrap();
    assert_eq!(s.timeouts.request, Duration::from_millis(1500));
    assert_eq!(s.timeouts.copy, Duration::from_secs(120));
    assert_eq!(s.deadline_margin, Duration::from_secs(2));
    let mut vars = BASE.to_vec();
    vars.push(("COPY_REQUEST_TIMEOUT_MS", "0"));
    assert_eq!(
        settings(&vars).unwrap_err().to_string(),
        "environment variable COPY_REQUEST_TIMEOUT_MS=\"0\" is invalid; expected a whole number from 100 to 900000"
    );
}

#[test]
fn a_deadline_margin_without_room_for_an_abort_is_refused() {
    for short in ["0", "1999"] {
        let mut vars = BASE.to_vec();
        vars.push(("DEADLINE_MARGIN_MS", short));
        assert_eq!(
            settings(&vars).unwrap_err().to_string(),
            format!(
                "environment variable DEADLINE_MARGIN_MS=\"{short}\" is invalid; expected a whole number from 2000 to 60000"
            )
        );
    }
}

#[test]
fn expected_bucket_owner_is_an_account_id() {
    assert_eq!(settings(BASE).unwrap().expected_bucket_owner, None);
    let mut vars = BASE.to_vec();
    vars.push(("EXPECTED_BUCKET_OWNER", "011122223333"));
    assert_eq!(
        settings(&vars).unwrap().expected_bucket_owner.as_deref(),
        Some("011122223333")
    );
    let mut vars = BASE.to_vec();
    vars.push(("EXPECTED_BUCKET_OWNER", "1111-2222-3333"));
    assert_eq!(
        settings(&vars).unwrap_err().to_string(),
        "environment variable EXPECTED_BUCKET_OWNER=\"1111-2222-3333\" is invalid; expected a 12-digit AWS account id (the owner of the source, config and plugin buckets)"
    );
}

#[test]
fn bad_suffix_list() {
    let mut vars = BASE.to_vec();
    vars[0] = ("SUFFIX_TO_COPY", ",,");
    assert!(
        settings(&vars)
            .unwrap_err()
            .to_string()
            .contains("SUFFIX_TO_COPY")
    );
}
