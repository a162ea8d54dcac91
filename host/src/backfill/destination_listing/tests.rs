//! Unit tests of the merge-join: pages joined across, a listing that breaks off.

use super::*;

fn page(keys: &[&str], last: bool) -> Result<Page, S3Failure> {
    let entries = keys
        .iter()
        .map(|k| Entry {
            key: k.to_string(),
            existing: Existing::listed(Some(k.len() as i64), Some(&format!("etag of {k}")), None),
        })
        .collect();
    Ok(Page { entries, last })
}

/// A cursor over these pages, as the listing task would have sent them.
async fn cursor(pages: Vec<Result<Page, S3Failure>>) -> Cursor {
    let (tx, rx) = mpsc::channel(pages.len().max(1));
    for page in pages {
        tx.send(page).await.unwrap();
    }
    Cursor {
        org: "org1".into(),
        prefix: "org1/".into(),
        bucket: Arc::from("dest"),
        pages: rx,
        page: VecDeque::new(),
        state: State::Reading,
        task: tokio::spawn(async {}),
    }
}

async fn etag(cursor: &mut Cursor, key: &str) -> Option<Option<String>> {
    cursor
        .find(key, None)
        .await
        .map(|known| known.existing.and_then(|e| e.etag))
}

#[tokio::test]
async fn sorted_keys_are_joined_across_pages() {
    let mut c = cursor(vec![
        page(&["org1/a", "org1/c"], false),
        page(&[], false),
        page(&["org1/d", "org1/f é", "org1/f+"], true),
    ])
    .await;
    assert_eq!(etag(&mut c, "org1/a").await, Some(Some("etag of org1/a".into())));
    assert_eq!(etag(&mut c, "org1/b").await, Some(None));
    assert_eq!(etag(&mut c, "org1/c").await, Some(Some("etag of org1/c".into())));
    // "org1/d" is passed over unasked; in byte order " " (0x20) comes before "+" (0x2B).
    assert_eq!(etag(&mut c, "org1/e").await, Some(None));
    assert_eq!(
        etag(&mut c, "org1/f+").await,
        Some(Some("etag of org1/f+".into()))
    );
    assert_eq!(etag(&mut c, "org1/f é").await, Some(None), "passed over already");
    assert_eq!(etag(&mut c, "org1/z").await, Some(None), "after the last page");
}

#[tokio::test]
async fn a_listing_that_breaks_off_answers_nothing_from_there() {
    let failed = Err(S3Failure::Fatal {
        code: crate::reason::FailureCode::s3("AccessDenied"),
        message: "no".into(),
    });
    let mut c = cursor(vec![page(&["org1/a"], false), failed]).await;
    assert_eq!(etag(&mut c, "org1/a").await, Some(Some("etag of org1/a".into())));
    assert_eq!(etag(&mut c, "org1/b").await, None);
    assert_eq!(etag(&mut c, "org1/c").await, None);

    // The task ended without its last page: not "absent", unknown.
    let mut c = cursor(vec![page(&["org1/a"], false)]).await;
    assert_eq!(etag(&mut c, "org1/a").await, Some(Some("etag of org1/a".into())));
    assert_eq!(etag(&mut c, "org1/b").await, None);
}
