//! S3's naming rules for general-purpose buckets: what a config's bucket fields and a
//! plugin's `s3://` source are held to before any request is sent.

/// Why `name` breaks S3's general-purpose bucket naming rules, if it does.
pub fn bucket_name_problem(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    if !(3..=63).contains(&bytes.len()) {
        return Some("3 to 63 characters");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
    {
        return Some("lowercase letters, digits, dots, hyphens");
    }
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge_ok(bytes[0]) || !edge_ok(bytes[bytes.len() - 1]) {
        return Some("must begin and end with a letter or digit");
    }
    if name.contains("..") {
        return Some("no two adjacent dots");
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Some("must not look like an IP address");
    }
    if ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .any(|p| name.starts_with(p))
        || ["-s3alias", "--ol-s3", ".mrap", "--x-s3"]
            .iter()
            .any(|s| name.ends_with(s))
    {
        return Some("uses a prefix or suffix S3 reserves");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3s_rules() {
        assert_eq!(bucket_name_problem("org1-export"), None);
        assert_eq!(bucket_name_problem("a.b-c1"), None);
        assert_eq!(bucket_name_problem("ab"), Some("3 to 63 characters"));
        assert_eq!(
            bucket_name_problem("Org1"),
            Some("lowercase letters, digits, dots, hyphens")
        );
        assert_eq!(
            bucket_name_problem("-ab"),
            Some("must begin and end with a letter or digit")
        );
        assert_eq!(bucket_name_problem("a..b"), Some("no two adjacent dots"));
        assert_eq!(
            bucket_name_problem("192.168.1.1"),
            Some("must not look like an IP address")
        );
        assert_eq!(
            bucket_name_problem("xn--abc"),
            Some("uses a prefix or suffix S3 reserves")
        );
        assert_eq!(
            bucket_name_problem("abc--x-s3"),
            Some("uses a prefix or suffix S3 reserves")
        );
    }
}
