//! The external merge sort: entries gathered into an in-memory run of bounded size, each
//! full run sorted by key and spilled to a file, runs merged (k-way, at most
//! [`SortOptions::fan_in`] at a time) back into one key-ordered stream.
//!
//! A run is a byte arena of encoded records and a `u32` offset per record, so a run costs
//! its records' bytes plus 4 bytes each, not an allocation per field. Spilled runs are kept
//! in levels like a binary counter: `fan_in` runs of one level are merged into one of the
//! next, so however many objects there are, no merge reads more than `fan_in` files at once.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use aws_smithy_types::DateTime;

use super::InventoryEntry;

/// Buffer of each spill file read or written.
const IO_BUFFER: usize = 64 * 1024;

/// Bounds of the sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortOptions {
    /// Entries per in-memory run before it is sorted and spilled.
    pub run_entries: usize,
    /// Bytes of encoded records per in-memory run before it is spilled (at most 4 GiB).
    pub run_bytes: usize,
    /// Runs merged at once (at least 2).
    pub fan_in: usize,
}

impl Default for SortOptions {
    fn default() -> Self {
        SortOptions {
            run_entries: 256 * 1024,
            run_bytes: 32 * 1024 * 1024,
            fan_in: 64,
        }
    }
}

/// Appends `e`'s encoding: key length (u32 LE) and key, a flags byte, then each field
/// present (size u64, Last-Modified as i64 seconds and u32 nanoseconds, ETag and storage
/// class each as u32 length and bytes).
fn encode(e: &InventoryEntry, out: &mut Vec<u8>) {
    let text = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    text(out, &e.key);
    let flags = u8::from(e.size.is_some())
        | u8::from(e.last_modified.is_some()) << 1
        | u8::from(e.etag.is_some()) << 2
        | u8::from(e.storage_class.is_some()) << 3;
    out.push(flags);
    if let Some(size) = e.size {
        out.extend_from_slice(&size.to_le_bytes());
    }
    if let Some(t) = e.last_modified {
        out.extend_from_slice(&t.secs().to_le_bytes());
        out.extend_from_slice(&t.subsec_nanos().to_le_bytes());
    }
    if let Some(etag) = &e.etag {
        text(out, etag);
    }
    if let Some(class) = &e.storage_class {
        text(out, class);
    }
}

/// The key of the record starting at `rec`.
fn key_of(rec: &[u8]) -> &[u8] {
    let len = u32::from_le_bytes(rec[..4].try_into().expect("4 bytes")) as usize;
    &rec[4..4 + len]
}

fn decode(rec: &[u8]) -> InventoryEntry {
    let mut at = 0;
    let mut take = |n: usize| {
        let part = &rec[at..at + n];
        at += n;
        part
    };
    let key = take_text(&mut take);
    let flags = take(1)[0];
    let size = (flags & 1 != 0).then(|| u64::from_le_bytes(take(8).try_into().expect("8")));
    let last_modified = (flags & 2 != 0).then(|| {
        let secs = i64::from_le_bytes(take(8).try_into().expect("8"));
        let nanos = u32::from_le_bytes(take(4).try_into().expect("4"));
        DateTime::from_secs_and_nanos(secs, nanos)
    });
    let etag = (flags & 4 != 0).then(|| take_text(&mut take));
    let storage_class = (flags & 8 != 0).then(|| take_text(&mut take));
    InventoryEntry {
        key,
        size,
        etag,
        last_modified,
        storage_class,
    }
}

fn take_text<'a>(take: &mut impl FnMut(usize) -> &'a [u8]) -> String {
    let len = u32::from_le_bytes(take(4).try_into().expect("4 bytes")) as usize;
    // Written from `str`s by `encode`, into files only this process writes.
    String::from_utf8_lossy(take(len)).into_owned()
}

/// Reads the next record of a spill file into `buf` (cleared first); false at its end.
fn read_record(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    if r.fill_buf()?.is_empty() {
        return Ok(false);
    }
    read_text(r, buf)?;
    read_piece(r, buf, 1)?;
    let flags = buf[buf.len() - 1];
    let fixed = if flags & 1 != 0 { 8 } else { 0 } + if flags & 2 != 0 { 12 } else { 0 };
    read_piece(r, buf, fixed)?;
    if flags & 4 != 0 {
        read_text(r, buf)?;
    }
    if flags & 8 != 0 {
        read_text(r, buf)?;
    }
    Ok(true)
}

fn read_piece(r: &mut impl Read, buf: &mut Vec<u8>, n: usize) -> io::Result<()> {
    let at = buf.len();
    buf.resize(at + n, 0);
    r.read_exact(&mut buf[at..])
}

fn read_text(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<()> {
    read_piece(r, buf, 4)?;
    let len = u32::from_le_bytes(buf[buf.len() - 4..].try_into().expect("4 bytes")) as usize;
    read_piece(r, buf, len)
}

/// A spill failed: the file and what went wrong.
#[derive(Debug)]
pub struct SpillError {
    pub path: PathBuf,
    pub error: io::Error,
}

fn at(path: &Path) -> impl Fn(io::Error) -> SpillError + '_ {
    move |error| SpillError {
        path: path.to_path_buf(),
        error,
    }
}

/// Entries gathered into sorted runs under one directory.
#[derive(Debug)]
pub struct Runs {
    dir: PathBuf,
    options: SortOptions,
    arena: Vec<u8>,
    offsets: Vec<u32>,
    /// Spilled runs as (level, file), levels never increasing along the list.
    spilled: Vec<(u32, PathBuf)>,
    files_made: u64,
}

impl Runs {
    /// Runs spilled into `dir` (which must exist), bounded by `options`.
    pub fn new(dir: &Path, options: SortOptions) -> Runs {
        Runs {
            dir: dir.to_path_buf(),
            options: SortOptions {
                run_entries: options.run_entries.max(1),
                run_bytes: options.run_bytes.clamp(1, u32::MAX as usize),
                fan_in: options.fan_in.max(2),
            },
            arena: Vec::new(),
            offsets: Vec::new(),
            spilled: Vec::new(),
            files_made: 0,
        }
    }

    /// Adds one entry, spilling the run when it is full.
    pub fn push(&mut self, entry: &InventoryEntry) -> Result<(), SpillError> {
        self.offsets.push(self.arena.len() as u32);
        encode(entry, &mut self.arena);
        if self.offsets.len() >= self.options.run_entries || self.arena.len() >= self.options.run_bytes {
            self.spill()?;
        }
        Ok(())
    }

    fn new_file(&mut self) -> PathBuf {
        self.files_made += 1;
        self.dir.join(format!("run-{}", self.files_made))
    }

    /// Sorts the run in memory and writes it to a file of level 0, then merges every
    /// `fan_in` runs of one level into one of the next.
    fn spill(&mut self) -> Result<(), SpillError> {
        if self.offsets.is_empty() {
            return Ok(());
        }
        let path = self.new_file();
        let arena = &self.arena;
        self.offsets
            .sort_unstable_by(|a, b| key_of(&arena[*a as usize..]).cmp(key_of(&arena[*b as usize..])));
        let file = File::create(&path).map_err(at(&path))?;
        let mut w = BufWriter::with_capacity(IO_BUFFER, file);
        for &start in &self.offsets {
            let rec = &arena[start as usize..];
            w.write_all(&rec[..record_len(rec)]).map_err(at(&path))?;
        }
        w.flush().map_err(at(&path))?;
        self.arena.clear();
        self.offsets.clear();
        self.spilled.push((0, path));
        let fan_in = self.options.fan_in;
        while self.spilled.len() >= fan_in {
            let tail = &self.spilled[self.spilled.len() - fan_in..];
            let level = tail[0].0;
            if tail.iter().any(|(l, _)| *l != level) {
                break;
            }
            let group = self.spilled.split_off(self.spilled.len() - fan_in);
            let merged = self.merge_to_file(group.into_iter().map(|(_, p)| p).collect())?;
            self.spilled.push((level + 1, merged));
        }
        Ok(())
    }

    /// Merges `files` into a new run file, removing them.
    fn merge_to_file(&mut self, files: Vec<PathBuf>) -> Result<PathBuf, SpillError> {
        let path = self.new_file();
        let file = File::create(&path).map_err(at(&path))?;
        let mut w = BufWriter::with_capacity(IO_BUFFER, file);
        let mut merge = Merge::open(files)?;
        while let Some(rec) = merge.next_record()? {
            w.write_all(rec).map_err(at(&path))?;
        }
        w.flush().map_err(at(&path))?;
        merge.remove_files();
        Ok(path)
    }

    /// Spills what is left and merges until at most `fan_in` runs remain: the merge that
    /// yields the entries in key order.
    pub fn finish(mut self) -> Result<Merge, SpillError> {
        self.spill()?;
        self.arena = Vec::new();
        self.offsets = Vec::new();
        let fan_in = self.options.fan_in;
        while self.spilled.len() > fan_in {
            let group = self.spilled.split_off(self.spilled.len() - fan_in);
            let merged = self.merge_to_file(group.into_iter().map(|(_, p)| p).collect())?;
            self.spilled.push((u32::MAX, merged));
        }
        Merge::open(self.spilled.into_iter().map(|(_, p)| p).collect())
    }
}

/// Length of the record at the start of `rec`.
fn record_len(rec: &[u8]) -> usize {
    let u32_at = |at: usize| u32::from_le_bytes(rec[at..at + 4].try_into().expect("4")) as usize;
    let mut at = 4 + u32_at(0);
    let flags = rec[at];
    at += 1;
    if flags & 1 != 0 {
        at += 8;
    }
    if flags & 2 != 0 {
        at += 12;
    }
    if flags & 4 != 0 {
        at += 4 + u32_at(at);
    }
    if flags & 8 != 0 {
        at += 4 + u32_at(at);
    }
    at
}

/// One run being read: its current record.
struct Head {
    record: Vec<u8>,
    run: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    /// Reversed: `BinaryHeap` is a max-heap, the merge wants the smallest key first.
    fn cmp(&self, other: &Self) -> Ordering {
        key_of(&other.record)
            .cmp(key_of(&self.record))
            .then(other.run.cmp(&self.run))
    }
}

/// A k-way merge of sorted run files.
pub struct Merge {
    files: Vec<PathBuf>,
    readers: Vec<BufReader<File>>,
    heap: BinaryHeap<Head>,
    /// The record last returned (its buffer is reused for the next read of its run).
    last: Option<Head>,
    /// The entry read but not yet returned by [`Merge::next_entry`] (duplicates are folded).
    pending: Option<InventoryEntry>,
}

impl Merge {
    fn open(files: Vec<PathBuf>) -> Result<Merge, SpillError> {
        let mut readers = Vec::with_capacity(files.len());
        let mut heap = BinaryHeap::with_capacity(files.len());
        for (run, path) in files.iter().enumerate() {
            let mut r = BufReader::with_capacity(IO_BUFFER, File::open(path).map_err(at(path))?);
            let mut record = Vec::new();
            if read_record(&mut r, &mut record).map_err(at(path))? {
                heap.push(Head { record, run });
            }
            readers.push(r);
        }
        Ok(Merge {
            files,
            readers,
            heap,
            last: None,
            pending: None,
        })
    }

    /// The next record in key order (runs in order on equal keys).
    fn next_record(&mut self) -> Result<Option<&[u8]>, SpillError> {
        if let Some(mut head) = self.last.take() {
            let path = &self.files[head.run];
            if read_record(&mut self.readers[head.run], &mut head.record).map_err(at(path))? {
                self.heap.push(head);
            }
        }
        self.last = self.heap.pop();
        Ok(self.last.as_ref().map(|h| h.record.as_slice()))
    }

    /// The next entry in key order. Should a key occur twice, the entry with the later
    /// Last-Modified is kept.
    pub fn next_entry(&mut self) -> Result<Option<InventoryEntry>, SpillError> {
        loop {
            let next = self.next_record()?.map(decode);
            match (self.pending.take(), next) {
                (None, None) => return Ok(None),
                (None, Some(e)) => self.pending = Some(e),
                (Some(p), None) => return Ok(Some(p)),
                (Some(p), Some(e)) if p.key == e.key => {
                    self.pending = Some(if e.last_modified > p.last_modified { e } else { p });
                }
                (Some(p), Some(e)) => {
                    self.pending = Some(e);
                    return Ok(Some(p));
                }
            }
        }
    }

    /// Deletes the run files (once merged into another).
    fn remove_files(self) {
        for path in &self.files {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, n: u64) -> InventoryEntry {
        InventoryEntry {
            key: key.into(),
            size: Some(n),
            etag: n.is_multiple_of(2).then(|| format!("e{n}")),
            last_modified: n
                .is_multiple_of(3)
                .then(|| DateTime::from_millis(n as i64 * 1001)),
            storage_class: n.is_multiple_of(5).then(|| "GLACIER".into()),
        }
    }

    #[test]
    fn encoding_round_trips() {
        for n in 0..30 {
            let e = entry(&format!("k é {n}"), n);
            let mut buf = Vec::new();
            encode(&e, &mut buf);
            assert_eq!(record_len(&buf), buf.len());
            assert_eq!(decode(&buf), e);
            let mut again = Vec::new();
            assert!(read_record(&mut &buf[..], &mut again).unwrap());
            assert_eq!(again, buf);
        }
    }

    #[test]
    fn many_small_runs_merge_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let options = SortOptions {
            run_entries: 3,
            run_bytes: 1 << 20,
            fan_in: 2,
        };
        let mut runs = Runs::new(dir.path(), options);
        let mut keys: Vec<String> = (0..100u64).map(|i| format!("{:x}", i * 7919 % 1000)).collect();
        for (i, k) in keys.iter().enumerate() {
            runs.push(&entry(k, i as u64)).unwrap();
        }
        runs.push(&entry("dup", 3)).unwrap();
        runs.push(&entry("dup", 6)).unwrap();
        keys.push("dup".into());
        keys.sort();
        let mut merge = runs.finish().unwrap();
        assert!(merge.files.len() <= 2, "{}", merge.files.len());
        let mut got = Vec::new();
        while let Some(e) = merge.next_entry().unwrap() {
            if e.key == "dup" {
                assert_eq!(e.size, Some(6), "the later Last-Modified is kept");
            }
            got.push(e.key);
        }
        assert_eq!(got, keys);
    }
}
