//! One line of an inventory data file (CSV, no header, every field quoted by S3) as an
//! [`InventoryEntry`], with the key URL-decoded.

use std::borrow::Cow;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use super::InventoryEntry;
use super::manifest::Columns;
use crate::s3::keys::decode_notification_key;

/// Splits a CSV line into its fields (`"a","b""c",d` → `a`, `b"c`, `d`), into `out`.
pub fn split_fields<'a>(line: &'a str, out: &mut Vec<Cow<'a, str>>) -> Result<(), String> {
    out.clear();
    let bytes = line.as_bytes();
    let mut i = 0;
    loop {
        if bytes.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            let mut escaped = false;
            loop {
                match bytes.get(j) {
                    None => return Err(format!("field {}: unterminated quote", out.len() + 1)),
                    Some(b'"') if bytes.get(j + 1) == Some(&b'"') => {
                        escaped = true;
                        j += 2;
                    }
                    Some(b'"') => break,
                    Some(_) => j += 1,
                }
            }
            let field = &line[start..j];
            out.push(if escaped {
                Cow::Owned(field.replace("\"\"", "\""))
            } else {
                Cow::Borrowed(field)
            });
            i = j + 1;
            match bytes.get(i) {
                None => return Ok(()),
                Some(b',') => i += 1,
                Some(_) => {
                    return Err(format!("field {}: text after the closing quote", out.len()));
                }
            }
        } else {
            let end = line[i..].find(',').map_or(line.len(), |n| i + n);
            out.push(Cow::Borrowed(&line[i..end]));
            if end == line.len() {
                return Ok(());
            }
            i = end + 1;
        }
    }
}

/// What one row is.
#[derive(Debug, PartialEq)]
pub enum Row {
    /// A current object under the prefix.
    Entry(InventoryEntry),
    /// A delete marker, a non-current version, or a key outside the prefix.
    Skipped,
}

/// Reads the fields of one row (`fields`, as [`split_fields`] gave them): the bucket must be
/// `bucket`, keys outside `prefix` are skipped. Errors name the column and its value.
pub fn parse_row(
    fields: &[Cow<'_, str>],
    columns: &Columns,
    bucket: &str,
    prefix: &str,
) -> Result<Row, String> {
    if fields.len() != columns.count {
        return Err(format!(
            "{} columns, the manifest's fileSchema names {}",
            fields.len(),
            columns.count
        ));
    }
    let column = |name: &str, i: usize, expected: &str| {
        format!("column {name} ({:?}): expected {expected}", fields[i])
    };
    let optional = |i: Option<usize>| i.map(|i| &*fields[i]).filter(|v| !v.is_empty());
    let flag = |name: &str, i: Option<usize>| match optional(i) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(column(name, i.unwrap_or_default(), "true or false")),
    };
    if fields[columns.bucket] != bucket {
        return Err(column(
            "Bucket",
            columns.bucket,
            &format!("the manifest's sourceBucket {bucket:?}"),
        ));
    }
    if flag("IsDeleteMarker", columns.is_delete_marker)? == Some(true)
        || flag("IsLatest", columns.is_latest)? == Some(false)
    {
        return Ok(Row::Skipped);
    }
    let key = decode_notification_key(&fields[columns.key])
        .map_err(|e| column("Key", columns.key, &format!("a URL-encoded key ({e})")))?;
    if !key.starts_with(prefix) {
        return Ok(Row::Skipped);
    }
    let size = match optional(columns.size) {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| column("Size", columns.size.unwrap_or_default(), "a number"))?,
        ),
    };
    let last_modified = match optional(columns.last_modified) {
        None => None,
        Some(v) => Some(DateTime::from_str(v, Format::DateTime).map_err(|_| {
            column(
                "LastModifiedDate",
                columns.last_modified.unwrap_or_default(),
                "an ISO 8601 date",
            )
        })?),
    };
    Ok(Row::Entry(InventoryEntry {
        key,
        size,
        etag: optional(columns.etag).map(|e| e.trim_matches('"').to_string()),
        last_modified,
        storage_class: optional(columns.storage_class).map(str::to_string),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        split_fields(line, &mut out).unwrap();
        out.into_iter().map(Cow::into_owned).collect()
    }

    #[test]
    fn quoted_and_bare_fields() {
        assert_eq!(fields(r#""a","b""c",d,,"""#), ["a", "b\"c", "d", "", ""]);
        assert_eq!(fields("x"), ["x"]);
        let mut out = Vec::new();
        assert!(
            split_fields(r#""a"#, &mut out)
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(
            split_fields(r#""a"b,c"#, &mut out)
                .unwrap_err()
                .contains("after the closing")
        );
    }

    fn columns() -> Columns {
        Columns {
            count: 7,
            bucket: 0,
            key: 1,
            size: Some(2),
            last_modified: Some(3),
            etag: Some(4),
            storage_class: Some(5),
            is_latest: Some(6),
            is_delete_marker: None,
        }
    }

    fn row(line: &str) -> Result<Row, String> {
        let mut out = Vec::new();
        split_fields(line, &mut out).unwrap();
        parse_row(&out, &columns(), "src", "org1/")
    }

    #[test]
    fn a_row_decoded() {
        let Row::Entry(e) = row(
            r#""src","org1/a+b%2Bc%C3%A9%25.jpg","12","2024-01-02T03:04:05.678Z","abc","STANDARD","true""#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(e.key, "org1/a b+cé%.jpg");
        assert_eq!((e.size, e.etag.as_deref()), (Some(12), Some("abc")));
        assert_eq!(e.last_modified, Some(DateTime::from_millis(1_704_164_645_678)));
        assert_eq!(row(r#""src","org2/x","1","","","","true""#), Ok(Row::Skipped));
        assert_eq!(row(r#""src","org1/x","1","","","","false""#), Ok(Row::Skipped));
    }

    #[test]
    fn bad_columns_are_named() {
        assert_eq!(
            row(r#""src","org1/x","abc","","","","true""#).unwrap_err(),
            r#"column Size ("abc"): expected a number"#
        );
        assert!(
            row(r#""other","org1/x","1","","","","true""#)
                .unwrap_err()
                .starts_with("column Bucket (\"other\")")
        );
        assert!(
            row(r#""src","org1/%zz","1","","","","true""#)
                .unwrap_err()
                .starts_with("column Key (\"org1/%zz\")")
        );
        assert_eq!(
            row(r#""src","org1/x""#).unwrap_err(),
            "2 columns, the manifest's fileSchema names 7"
        );
    }
}
