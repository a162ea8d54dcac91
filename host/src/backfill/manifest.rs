//! An S3 Batch Operations CSV manifest (`bucket,key` rows, keys URL-encoded), written next
//! to its final name and renamed into place only when complete.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A manifest being written.
pub struct ManifestWriter {
    out: BufWriter<File>,
    partial: PathBuf,
    path: PathBuf,
    rows: u64,
}

impl ManifestWriter {
    /// Starts `path` (written as `path.partial` until [`ManifestWriter::finish`]).
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let out = BufWriter::new(File::create(&partial)?);
        Ok(Self {
            out,
            partial,
            path: path.to_path_buf(),
            rows: 0,
        })
    }

    /// Adds one object.
    pub fn push(&mut self, bucket: &str, key: &str) -> std::io::Result<()> {
        self.rows += 1;
        writeln!(self.out, "{}", manifest_row(bucket, key))
    }

    /// Flushes, syncs and renames the file to its final name; returns the row count.
    pub fn finish(mut self) -> std::io::Result<u64> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        std::fs::rename(&self.partial, &self.path)?;
        Ok(self.rows)
    }

    /// Removes the unfinished file (an interrupted or failed run leaves no manifest).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.partial);
    }
}

/// One CSV row: the bucket, a comma, and the key with every byte outside the unreserved
/// set and `/` written as `%XX` (Batch Operations requires URL-encoded keys; a space is
/// `%20` and a `+` is `%2B`, so both `unquote` and `unquote_plus` decoders read it back).
pub fn manifest_row(bucket: &str, key: &str) -> String {
    let mut row = String::with_capacity(bucket.len() + key.len() + 8);
    row.push_str(bucket);
    row.push(',');
    for b in key.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => row.push(b as char),
            _ => row.push_str(&format!("%{b:02X}")),
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::keys::decode_notification_key;

    #[test]
    fn keys_are_url_encoded_and_read_back() {
        let key = "org1/a b+c,d/été%.jpg";
        let row = manifest_row("src", key);
        assert_eq!(row, "src,org1/a%20b%2Bc%2Cd/%C3%A9t%C3%A9%25.jpg");
        let (_, encoded) = row.split_once(',').unwrap();
        assert_eq!(decode_notification_key(encoded).unwrap(), key);
    }

    #[test]
    fn finished_manifest_replaces_partial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        let mut m = ManifestWriter::create(&path).unwrap();
        m.push("b", "k 1").unwrap();
        assert!(dir.path().join("m.csv.partial").exists());
        assert!(!path.exists());
        assert_eq!(m.finish().unwrap(), 1);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "b,k%201\n");
        assert!(!dir.path().join("m.csv.partial").exists());
    }

    #[test]
    fn discarded_manifest_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        let mut m = ManifestWriter::create(&path).unwrap();
        m.push("b", "k").unwrap();
        m.discard();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
