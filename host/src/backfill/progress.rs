//! Live counters of a running backfill, readable from another task (the progress display).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::ObjectOutcome;

/// Counters updated as objects are listed and finished.
#[derive(Debug, Default)]
pub struct Progress {
    listed: AtomicU64,
    listed_bytes: AtomicU64,
    listing_done: AtomicBool,
    done: AtomicU64,
    done_bytes: AtomicU64,
    copied: AtomicU64,
    copied_bytes: AtomicU64,
    in_place: AtomicU64,
    would_copy: AtomicU64,
    pending: AtomicU64,
    skipped: AtomicU64,
    superseded: AtomicU64,
    failed: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Objects listed so far.
    pub listed: u64,
    /// Their total size.
    pub listed_bytes: u64,
    /// The listing reached its last page.
    pub listing_done: bool,
    /// Objects finished (any outcome).
    pub done: u64,
    /// Total size of the finished objects.
    pub done_bytes: u64,
    /// Objects copied (to at least one target, with no target failing).
    pub copied: u64,
    /// Bytes copied.
    pub copied_bytes: u64,
    /// Objects whose every destination already held them.
    pub in_place: u64,
    /// Objects a dry run would copy.
    pub would_copy: u64,
    /// Reconcile: objects with a gap written within the grace period.
    pub pending: u64,
    /// Objects not selected (no org, suffix, plugin, other org).
    pub skipped: u64,
    /// Objects that changed or vanished while the backfill ran.
    pub superseded: u64,
    /// Objects that could not be copied.
    pub failed: u64,
}

impl Progress {
    /// Counts one listed object of `size` bytes.
    pub fn listed(&self, size: u64) {
        self.listed.fetch_add(1, Relaxed);
        self.listed_bytes.fetch_add(size, Relaxed);
    }

    /// Marks the listing complete (the total is known from now on).
    pub fn listing_finished(&self) {
        self.listing_done.store(true, Relaxed);
    }

    /// Counts one finished object of `size` bytes.
    pub fn finished(&self, size: u64, outcome: &ObjectOutcome) {
        let counter = match outcome {
            ObjectOutcome::Copied { bytes } => {
                self.copied_bytes.fetch_add(*bytes, Relaxed);
                &self.copied
            }
            ObjectOutcome::InPlace => &self.in_place,
            ObjectOutcome::WouldCopy(_) => &self.would_copy,
            ObjectOutcome::Pending => &self.pending,
            ObjectOutcome::Skipped(_) => &self.skipped,
            ObjectOutcome::Superseded(_) => &self.superseded,
            ObjectOutcome::Failed(_) => &self.failed,
        };
        counter.fetch_add(1, Relaxed);
        self.done_bytes.fetch_add(size, Relaxed);
        self.done.fetch_add(1, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            listed: self.listed.load(Relaxed),
            listed_bytes: self.listed_bytes.load(Relaxed),
            listing_done: self.listing_done.load(Relaxed),
            done: self.done.load(Relaxed),
            done_bytes: self.done_bytes.load(Relaxed),
            copied: self.copied.load(Relaxed),
            copied_bytes: self.copied_bytes.load(Relaxed),
            in_place: self.in_place.load(Relaxed),
            would_copy: self.would_copy.load(Relaxed),
            pending: self.pending.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            superseded: self.superseded.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }
}

impl Snapshot {
    /// Objects per second over `elapsed`.
    pub fn rate(&self, elapsed: Duration) -> f64 {
        per_second(self.done, elapsed)
    }

    /// Bytes (of finished objects) per second over `elapsed`.
    pub fn byte_rate(&self, elapsed: Duration) -> f64 {
        per_second(self.done_bytes, elapsed)
    }

    /// Time left at the rate so far; known once the listing is complete and something is
    /// done. Estimated by bytes when the objects have any, by count otherwise.
    pub fn eta(&self, elapsed: Duration) -> Option<Duration> {
        if !self.listing_done || self.done == 0 {
            return None;
        }
        let (left, rate) = if self.listed_bytes > 0 && self.done_bytes > 0 {
            (
                self.listed_bytes.saturating_sub(self.done_bytes),
                self.byte_rate(elapsed),
            )
        } else {
            (self.listed.saturating_sub(self.done), self.rate(elapsed))
        };
        (rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate))
    }
}

fn per_second(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_outcome_and_estimates_by_bytes() {
        let p = Progress::default();
        for _ in 0..4 {
            p.listed(100);
        }
        p.finished(100, &ObjectOutcome::Copied { bytes: 100 });
        p.finished(100, &ObjectOutcome::Failed("x".into()));
        let s = p.snapshot();
        assert_eq!(
            (s.listed, s.done, s.copied, s.failed, s.copied_bytes),
            (4, 2, 1, 1, 100)
        );
        assert_eq!(s.eta(Duration::from_secs(2)), None, "listing not finished yet");
        p.listing_finished();
        let s = p.snapshot();
        // 200 bytes in 2 s; 200 left.
        assert_eq!(s.eta(Duration::from_secs(2)), Some(Duration::from_secs(2)));
    }

    #[test]
    fn empty_objects_estimate_by_count() {
        let p = Progress::default();
        for _ in 0..3 {
            p.listed(0);
        }
        p.listing_finished();
        p.finished(0, &ObjectOutcome::InPlace);
        let s = p.snapshot();
        assert_eq!(s.eta(Duration::from_secs(1)), Some(Duration::from_secs(2)));
    }
}
