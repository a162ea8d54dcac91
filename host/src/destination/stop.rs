//! [`Stop`]: tells the copies of one invocation or backfill that their time is up (the
//! Lambda deadline) or that the user interrupted (Ctrl-C or SIGTERM in a backfill). A
//! multipart copy told so aborts its upload, so no incomplete upload is left to cost
//! storage; what started no copy yet is reported failed with [`StopReason::code`].

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use crate::reason::FailureCode;

/// Why copies were told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The Lambda invocation's deadline is near.
    Deadline,
    /// The backfill was interrupted.
    Interrupted,
}

impl StopReason {
    /// The failure code of work cut short for this reason.
    pub fn code(self) -> FailureCode {
        match self {
            StopReason::Deadline => FailureCode::Deadline,
            StopReason::Interrupted => FailureCode::Interrupted,
        }
    }

    /// What happened, for a report's reason.
    pub fn message(self) -> &'static str {
        match self {
            StopReason::Deadline => {
                "the invocation's time ran out before this copy could finish; it is retried"
            }
            StopReason::Interrupted => "the backfill was interrupted; rerun it to copy the rest",
        }
    }
}

/// A stop signal shared by every copy of one invocation (clones observe the same signal).
#[derive(Debug, Clone, Default)]
pub struct Stop {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

impl Stop {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Stop::default()
    }

    /// Fires the signal; the first reason given is the one reported.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// The reason, once the signal fired.
    pub fn reason(&self) -> Option<StopReason> {
        self.reason.get().copied()
    }

    /// Completes when the signal fires, with its reason.
    pub async fn stopped(&self) -> StopReason {
        self.token.cancelled().await;
        self.reason().unwrap_or(StopReason::Deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_first_reason() {
        let stop = Stop::new();
        let seen = stop.clone();
        assert_eq!(seen.reason(), None);
        stop.stop(StopReason::Interrupted);
        stop.stop(StopReason::Deadline);
        assert_eq!(seen.stopped().await, StopReason::Interrupted);
        assert_eq!(
            seen.reason().map(StopReason::code),
            Some(FailureCode::Interrupted)
        );
    }
}
