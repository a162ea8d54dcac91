//! Local mode's `DESTINATION_KEY` writes every copy under one file name, so an invocation
//! may write at most one target: two would overwrite each other and both report `copied`.
//!
//! What counts is targets, not records: one record whose plugin fans out to two targets
//! clashes as much as two records. So the count is taken after the plan. Each object record
//! holds a [`Ticket`]; once planned, it reports its targets ([`Ticket::admit`]) and waits until
//! every object record of the invocation has reported. A record that ends before its plan
//! (the deadline, no config) reports no target when its ticket is dropped, so no record
//! waits for it forever. Every object record must be in flight at once for the count to
//! complete: the handler runs them all together in this mode.

use tokio::sync::watch;

/// The invocation's count of planned targets under `DESTINATION_KEY`.
pub struct OneFile {
    name: String,
    records: usize,
    tally: watch::Sender<Tally>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    /// Object records that reported.
    reported: usize,
    /// Their targets.
    targets: usize,
}

/// More than one target under `DESTINATION_KEY`: every object record fails, nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "DESTINATION_KEY={name:?} writes every copy to one file, and this invocation has {targets} targets \
     ({records} object records); unset DESTINATION_KEY, or invoke with one record that has one target"
)]
pub struct ManyTargets {
    /// `DESTINATION_KEY`.
    pub name: String,
    /// The invocation's targets, all records together.
    pub targets: usize,
    /// The invocation's object records.
    pub records: usize,
}

/// One object record's place in the count: reports once, by [`Ticket::admit`] or on drop.
pub struct Ticket<'a> {
    gate: &'a OneFile,
    reported: bool,
}

impl OneFile {
    /// The count for `DESTINATION_KEY` = `name` over an invocation of `records` object records.
    pub fn new(name: &str, records: usize) -> Self {
        OneFile {
            name: name.to_string(),
            records,
            tally: watch::Sender::new(Tally::default()),
        }
    }

    /// The ticket of one object record (one per object record of the invocation).
    pub fn ticket(&self) -> Ticket<'_> {
        Ticket {
            gate: self,
            reported: false,
        }
    }
}

impl Ticket<'_> {
    /// Reports this record's `targets` and waits for every object record's: an error naming
    /// the file when the invocation has more than one target in all (nothing may be
    /// written then).
    pub async fn admit(mut self, targets: usize) -> Result<(), ManyTargets> {
        self.report(targets);
        let gate = self.gate;
        let mut tally = gate.tally.subscribe();
        // `wait_for` fails only once the sender is gone, which the borrow of `gate` rules out.
        let total = match tally.wait_for(|t| t.reported >= gate.records).await {
            Ok(tally) => tally.targets,
            Err(_) => gate.tally.borrow().targets,
        };
        if total <= 1 {
            return Ok(());
        }
        Err(ManyTargets {
            name: gate.name.clone(),
            targets: total,
            records: gate.records,
        })
    }

    fn report(&mut self, targets: usize) {
        if !std::mem::replace(&mut self.reported, true) {
            self.gate.tally.send_modify(|t| {
                t.reported += 1;
                t.targets += targets;
            });
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.report(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_target_in_all_passes_two_refuse_every_record() {
        let gate = OneFile::new("latest.jpg", 3);
        let (a, b, c) = (gate.ticket(), gate.ticket(), gate.ticket());
        drop(c); // ended before its plan: no target
        let (a, b) = tokio::join!(a.admit(1), b.admit(0));
        assert_eq!((a, b), (Ok(()), Ok(())));

        let gate = OneFile::new("latest.jpg", 1);
        let why = gate.ticket().admit(2).await.unwrap_err().to_string();
        assert!(
            why.contains("DESTINATION_KEY=\"latest.jpg\"") && why.contains("has 2 targets"),
            "{why}"
        );

        let gate = OneFile::new("latest.jpg", 2);
        let (a, b) = tokio::join!(gate.ticket().admit(1), gate.ticket().admit(1));
        assert!(a.is_err() && b.is_err(), "{a:?} {b:?}");
    }
}
