//! A lane: one org's decisions for one invocation, made back to back on one blocking
//! thread. Handing each decision to the blocking pool on its own wakes a parked thread
//! twice per decision (there and back), which costs several times the decision; a lane
//! pays that once, and its answers wait in one-shot channels until their records ask.
//!
//! A watchdog task stands beside the thread: should a decision still be running at its
//! deadline plus [`WATCHDOG_MARGIN`] (a blocking host call; guest code alone stops at the
//! deadline), it gives that record up as timed out and every record still waiting in the
//! lane as a host failure (retryable), and the thread's later answers are dropped. Other
//! orgs have their own lanes: a stuck lane delays nobody else.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, TryAcquireError, oneshot};

use super::given::Pending;
use super::plugin::{DecisionError, Verdict};
use crate::event::SourceObject;
use crate::route::Target;

/// How long past its deadline the host waits for a decision's thread before it gives the
/// record up (the watchdog, the one of every decision: in a lane of many records, or of one
/// for [`Plugin::decide_blocking`](super::Plugin::decide_blocking)). A decision that runs
/// only guest code and non-blocking host calls stops at its deadline; this is the last line
/// should anything ever block.
pub const WATCHDOG_MARGIN: Duration = Duration::from_millis(250);

/// What one record asks its org's plugin.
#[derive(Debug)]
pub struct Request {
    /// The org the object belongs to.
    pub org: String,
    /// The object.
    pub object: SourceObject,
    /// The targets plain suffix matching proposes (none when the suffix is not selected).
    pub proposed: Vec<Target>,
    /// The org's plugin settings (JSON text).
    pub settings: String,
    /// What a 0.2 plugin is given beyond the event, now or once the record has read the
    /// source's HEAD: the lane waits for it before the decision's deadline starts.
    pub given: Pending,
}

/// What the lane answered one record.
#[derive(Debug)]
pub struct Answer {
    /// The plugin's verdict, or why there is none.
    pub result: Result<Verdict, DecisionError>,
    /// The decision's own time: from its instance-pool slot to its answer (time queued in
    /// the lane behind the org's earlier records is not the plugin's, nor is the
    /// candidate's decision after it).
    pub elapsed: Duration,
    /// The org's candidate plugin's answer to the same request, asked in the lane right
    /// after the plugin's own answer (only when that answer is a verdict); `None` when the
    /// org has no candidate or it was not asked.
    pub shadow: Option<Result<Verdict, DecisionError>>,
    /// `GetObjectTagging` reads the plugin made (`tags` of a 0.2 plugin).
    pub tag_reads: u32,
}

/// What the lane's decider returns for one request.
pub struct Decided {
    /// The plugin's answer.
    pub result: Result<Verdict, DecisionError>,
    /// The tag reads it made.
    pub tag_reads: u32,
    /// The candidate's answer with the time it took (not counted as the plugin's), when one
    /// was asked.
    pub shadow: Option<(Result<Verdict, DecisionError>, Duration)>,
}

impl Decided {
    /// The plugin's answer alone.
    pub fn alone(result: Result<Verdict, DecisionError>) -> Self {
        Decided {
            result,
            tag_reads: 0,
            shadow: None,
        }
    }
}

/// How often the watchdog looks again while the lane waits for an instance-pool slot (no
/// decision runs, so no deadline is counting).
const SLOT_WAIT_CHECK: Duration = WATCHDOG_MARGIN;
/// How soon the watchdog looks again when it caught the lane between two decisions.
const BETWEEN_DECISIONS_CHECK: Duration = Duration::from_millis(1);

struct Shared {
    state: Mutex<State>,
    /// Woken when the thread has finished, so the watchdog ends with it.
    finished: Notify,
}

#[derive(Default)]
struct State {
    /// One reply per request; taken when answered (or given up).
    replies: Vec<Option<oneshot::Sender<Answer>>>,
    /// The decision running now, and when it started.
    running: Option<(usize, Instant)>,
    /// The thread waits for an instance-pool slot.
    waiting_for_slot: bool,
    /// The thread has finished (or unwound).
    finished: bool,
    /// The watchdog gave the lane up: the thread stops at its next look.
    abandoned: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts a lane that runs `decide` on each request in order, each under an instance-pool
/// slot from `slots`, and returns one receiver per request, in the requests' order. A
/// request whose receiver is dropped (its record was cut off) is not decided. `timeout` is
/// the deadline per decision, which the watchdog enforces: with a candidate asked after the
/// plugin ([`Decided::shadow`]) it must cover both (the watchdog counts from the plugin's
/// start to the candidate's end). Must be called within a tokio runtime.
pub fn start<D>(
    plugin: Arc<str>,
    timeout: Duration,
    slots: Arc<Semaphore>,
    requests: Vec<Request>,
    decide: D,
) -> Vec<oneshot::Receiver<Answer>>
where
    D: Fn(&Request) -> Decided + Send + 'static,
{
    let (replies, receivers): (Vec<_>, Vec<_>) = requests
        .iter()
        .map(|_| {
            let (reply, receiver) = oneshot::channel();
            (Some(reply), receiver)
        })
        .unzip();
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            replies,
            ..State::default()
        }),
        finished: Notify::new(),
    });
    let runtime = tokio::runtime::Handle::current();
    // Made before the thread exists: should the closure be dropped unrun (a runtime that
    // shuts down), the guard still answers every record and ends the watchdog.
    let guard = FinishOnDrop(shared.clone());
    tokio::task::spawn_blocking(move || {
        run(&guard.0, &runtime, &slots, &requests, decide);
        drop(guard);
    });
    tokio::spawn(watchdog(shared, plugin, timeout + WATCHDOG_MARGIN, timeout));
    receivers
}

/// The lane's thread: every request in order, until done or abandoned.
fn run<D>(
    shared: &Shared,
    runtime: &tokio::runtime::Handle,
    slots: &Arc<Semaphore>,
    requests: &[Request],
    decide: D,
) where
    D: Fn(&Request) -> Decided,
{
    for (index, request) in requests.iter().enumerate() {
        {
            let mut state = shared.lock();
            if state.abandoned {
                return;
            }
            if state.replies[index]
                .as_ref()
                .is_none_or(|reply| reply.is_closed())
            {
                state.replies[index] = None;
                continue;
            }
        }
        // Waiting for what the record gives (its source's HEAD) and for a slot is queueing,
        // not the plugin's time: no deadline counts.
        if request.given.is_waiting() {
            shared.lock().waiting_for_slot = true;
            request.given.wait();
            shared.lock().waiting_for_slot = false;
        }
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(TryAcquireError::NoPermits) => {
                shared.lock().waiting_for_slot = true;
                let permit = runtime.block_on(slots.clone().acquire_owned());
                shared.lock().waiting_for_slot = false;
                permit.map_err(|e| e.to_string())
            }
            Err(TryAcquireError::Closed) => Err("the instance pool is closed".to_string()),
        };
        let started = Instant::now();
        let Decided {
            result,
            tag_reads,
            shadow,
        } = match permit {
            Ok(permit) => {
                shared.lock().running = Some((index, started));
                let decided = decide(request);
                drop(permit);
                decided
            }
            Err(e) => Decided::alone(Err(DecisionError::Host(format!("instance pool: {e}")))),
        };
        let candidate_time = shadow.as_ref().map_or(Duration::ZERO, |(_, took)| *took);
        let elapsed = started.elapsed().saturating_sub(candidate_time);
        let shadow = shadow.map(|(answer, _)| answer);
        let reply = {
            let mut state = shared.lock();
            state.running = None;
            if state.abandoned {
                return;
            }
            state.replies[index].take()
        };
        if let Some(reply) = reply {
            // A record cut off meanwhile has dropped its receiver: nobody to tell.
            let _ = reply.send(Answer {
                result,
                elapsed,
                shadow,
                tag_reads,
            });
        }
    }
}

/// Marks the lane finished when its thread ends, however it ends: a thread that unwound
/// leaves its unanswered records a host failure, not a wait for the watchdog.
struct FinishOnDrop(Arc<Shared>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.finished = true;
        for reply in state.replies.iter_mut().filter_map(Option::take) {
            let _ = reply.send(Answer {
                result: Err(DecisionError::Host(
                    "the org's decision thread ended early".into(),
                )),
                elapsed: Duration::ZERO,
                shadow: None,
                tag_reads: 0,
            });
        }
        drop(state);
        self.0.finished.notify_one();
    }
}

/// Gives the lane up if a decision outlives `limit`; ends when the thread does.
async fn watchdog(shared: Arc<Shared>, plugin: Arc<str>, limit: Duration, timeout: Duration) {
    loop {
        let (running, wake) = {
            let state = shared.lock();
            if state.finished {
                return;
            }
            match state.running {
                Some((index, started)) => (Some(index), started + limit),
                None if state.waiting_for_slot => (None, Instant::now() + SLOT_WAIT_CHECK),
                None => (None, Instant::now() + BETWEEN_DECISIONS_CHECK),
            }
        };
        tokio::select! {
            () = shared.finished.notified() => return,
            () = tokio::time::sleep_until(wake.into()) => {}
        }
        let Some(index) = running else { continue };
        let mut state = shared.lock();
        if state.running.is_none_or(|(now_running, _)| now_running != index) {
            continue;
        }
        state.abandoned = true;
        let waiting = state.replies.iter().skip(index + 1).flatten().count();
        tracing::error!(
            plugin = &*plugin,
            waiting,
            "plugin decision still running past its deadline; the watchdog gave the record up, and the records behind it in the org's lane"
        );
        if let Some(reply) = state.replies[index].take() {
            let _ = reply.send(Answer {
                result: Err(DecisionError::Timeout(timeout)),
                elapsed: limit,
                shadow: None,
                tag_reads: 0,
            });
        }
        for reply in state.replies.iter_mut().skip(index + 1).filter_map(Option::take) {
            let _ = reply.send(Answer {
                result: Err(DecisionError::Host(format!(
                    "not decided: an earlier decision of plugin {plugin} hung past its deadline"
                ))),
                elapsed: Duration::ZERO,
                shadow: None,
                tag_reads: 0,
            });
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn request(key: &str) -> Request {
        Request {
            org: "org1".into(),
            object: SourceObject::created("source", key),
            proposed: Vec::new(),
            settings: "{}".into(),
            given: Pending::default(),
        }
    }

    fn requests(n: usize) -> Vec<Request> {
        (0..n).map(|i| request(&format!("org1/{i}.jpg"))).collect()
    }

    fn skip_with_key(request: &Request) -> Decided {
        Decided::alone(Ok(Verdict::Skip(request.object.key.clone())))
    }

    async fn answers(receivers: Vec<oneshot::Receiver<Answer>>) -> Vec<Result<Verdict, DecisionError>> {
        let mut out = Vec::new();
        for receiver in receivers {
            out.push(receiver.await.expect("every request is answered").result);
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_request_gets_its_own_answer_in_order() {
        let receivers = start(
            "p".into(),
            Duration::from_secs(1),
            Arc::new(Semaphore::new(1)),
            requests(50),
            skip_with_key,
        );
        let got = answers(receivers).await;
        let want: Vec<_> = (0..50)
            .map(|i| Ok(Verdict::Skip(format!("org1/{i}.jpg"))))
            .collect();
        assert_eq!(got, want);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_whose_record_is_gone_is_not_decided() {
        let slots = Arc::new(Semaphore::new(1));
        // The test holds the only slot, so the lane waits before its first decision.
        let held = slots.clone().acquire_owned().await.unwrap();
        let (seen_tx, seen_rx) = mpsc::channel();
        let seen = Mutex::new(seen_tx);
        let mut receivers = start("p".into(), Duration::from_secs(1), slots, requests(3), move |r| {
            let _ = seen.lock().unwrap().send(r.object.key.clone());
            skip_with_key(r)
        });
        drop(receivers.remove(1));
        drop(held);
        let got = answers(receivers).await;
        assert_eq!(got.len(), 2);
        let decided: Vec<String> = seen_rx.try_iter().collect();
        assert_eq!(decided, ["org1/0.jpg", "org1/2.jpg"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_decision_fails_its_record_and_the_ones_behind_it_but_not_earlier_ones() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let receivers = start(
            "p".into(),
            Duration::from_millis(20),
            Arc::new(Semaphore::new(4)),
            requests(4),
            move |r| {
                if r.object.key == "org1/1.jpg" {
                    // Blocks like a host call that never returns, until the test ends.
                    let _ = release_rx.lock().unwrap().recv();
                }
                skip_with_key(r)
            },
        );
        // Without the watchdog this would wait for the blocked thread for ever.
        let got = tokio::time::timeout(Duration::from_secs(30), answers(receivers))
            .await
            .expect("the watchdog answers every record although the thread is blocked");
        drop(release_tx);
        assert_eq!(got[0], Ok(Verdict::Skip("org1/0.jpg".into())));
        assert_eq!(got[1], Err(DecisionError::Timeout(Duration::from_millis(20))));
        for later in &got[2..] {
            assert!(
                matches!(later, Err(DecisionError::Host(why)) if why.contains("hung past its deadline")),
                "{later:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lane_whose_thread_panics_answers_every_record() {
        // A deadline far beyond the panic: printing its backtrace (RUST_BACKTRACE=1, a
        // debug build, a loaded machine) can take longer than a second, and the watchdog
        // must not be what answers here.
        let receivers = start(
            "p".into(),
            Duration::from_secs(60),
            Arc::new(Semaphore::new(1)),
            requests(3),
            |r| {
                if r.object.key == "org1/1.jpg" {
                    panic!("decider failed");
                }
                skip_with_key(r)
            },
        );
        let got = answers(receivers).await;
        assert_eq!(got[0], Ok(Verdict::Skip("org1/0.jpg".into())));
        for later in &got[1..] {
            assert!(
                matches!(later, Err(DecisionError::Host(why)) if why.contains("ended early")),
                "{later:?}"
            );
        }
    }
}
