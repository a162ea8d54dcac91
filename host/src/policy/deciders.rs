//! [`Deciders`]: the threads that run one plugin's decisions.
//!
//! Decisions never run on an async worker: WASI's host calls are synchronous, and a
//! plugin's CPU time must not stall the copies. Handing each decision to tokio's blocking
//! pool costs a thread wake-up on the way there (about 30 µs here, three times the decision
//! itself). A plugin's own threads instead stay awake for [`SPIN`] after each decision, so
//! the records of an invocation, which arrive in quick succession, find a thread already
//! running and pay no wake-up.
//!
//! Each plugin (so each org) has its own threads, at most one per CPU (decisions are
//! CPU-bound: more threads would not decide faster): one org's slow plugin never queues
//! another org's decisions. The threads end when the plugin is dropped.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long a thread keeps looking for the next decision before it sleeps.
pub const SPIN: Duration = Duration::from_micros(200);

/// A decision to run.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// One plugin's decision threads (started on demand).
pub struct Deciders {
    shared: Arc<Shared>,
    max_threads: usize,
    name: String,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Jobs waiting in the queue, readable without the lock (what a spinning thread watches).
    waiting: AtomicUsize,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    threads: usize,
    /// Threads not running a job (spinning or asleep): a new job needs no new thread.
    idle: usize,
    closed: bool,
}

impl Deciders {
    /// Threads named after `plugin`, at most `max_threads` (at least 1).
    pub fn new(plugin: &str, max_threads: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                wake: Condvar::new(),
                waiting: AtomicUsize::new(0),
            }),
            max_threads: max_threads.max(1),
            name: plugin.chars().take(40).collect(),
        }
    }

    /// One thread per CPU the process may use (read once per process: it costs a dozen
    /// system calls to read the cgroup limits).
    pub fn per_cpu(plugin: &str) -> Self {
        static CPUS: OnceLock<usize> = OnceLock::new();
        let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Self::new(plugin, cpus)
    }

    /// Queues `job`; a thread runs it as soon as one is free. Fails only when no thread
    /// exists and none can be started.
    pub fn submit(&self, job: Job) -> std::io::Result<()> {
        let mut queue = lock(&self.shared.queue);
        queue.jobs.push_back(job);
        self.shared.waiting.fetch_add(1, Ordering::Release);
        if queue.idle == 0 && queue.threads < self.max_threads {
            let shared = self.shared.clone();
            let started = std::thread::Builder::new()
                .name(format!("decide {}", self.name))
                .spawn(move || work(&shared));
            match started {
                Ok(_) => queue.threads += 1,
                Err(error) if queue.threads == 0 => {
                    queue.jobs.pop_back();
                    self.shared.waiting.fetch_sub(1, Ordering::Release);
                    return Err(error);
                }
                // The threads there are will get to it.
                Err(_) => {}
            }
        }
        drop(queue);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Threads started so far.
    pub fn threads(&self) -> usize {
        lock(&self.shared.queue).threads
    }
}

impl Drop for Deciders {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.wake.notify_all();
    }
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A decision thread: runs jobs until the plugin is dropped and the queue is empty.
fn work(shared: &Shared) {
    loop {
        let Some(job) = next_job(shared) else {
            return;
        };
        // A job sends its own answer; a panic (a host bug) drops that sender, which the
        // waiting record sees as a failed decision. The thread lives on.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

/// The next job: from the queue, else after spinning for [`SPIN`], else after sleeping.
/// `None` once the plugin is gone and nothing is left to run.
fn next_job(shared: &Shared) -> Option<Job> {
    let mut queue = lock(&shared.queue);
    queue.idle += 1;
    let job = loop {
        if let Some(job) = queue.jobs.pop_front() {
            shared.waiting.fetch_sub(1, Ordering::Release);
            break Some(job);
        }
        if queue.closed {
            queue.threads -= 1;
            break None;
        }
        drop(queue);
        let spin_until = Instant::now() + SPIN;
        while shared.waiting.load(Ordering::Acquire) == 0 && Instant::now() < spin_until {
            std::hint::spin_loop();
        }
        queue = lock(&shared.queue);
        if queue.jobs.is_empty() && !queue.closed {
            queue = shared.wake.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
    };
    queue.idle -= 1;
    job
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_every_job_on_at_most_max_threads() {
        let deciders = Deciders::new("test", 2);
        let (tx, rx) = mpsc::channel();
        for i in 0..50 {
            let tx = tx.clone();
            deciders
                .submit(Box::new(move || {
                    std::thread::sleep(Duration::from_millis(1));
                    tx.send((i, std::thread::current().name().map(str::to_string)))
                        .unwrap();
                }))
                .unwrap();
        }
        let mut done: Vec<_> = (0..50)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).expect("every job runs"))
            .collect();
        done.sort_by_key(|(i, _)| *i);
        assert_eq!(
            done.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..50).collect::<Vec<_>>()
        );
        assert!(
            done.iter()
                .all(|(_, name)| name.as_deref() == Some("decide test"))
        );
        assert!(deciders.threads() <= 2, "{} threads", deciders.threads());
    }

    #[test]
    fn a_panicking_job_drops_its_answer_and_the_thread_goes_on() {
        let deciders = Deciders::new("test", 1);
        let (tx, rx) = mpsc::channel::<u32>();
        deciders
            .submit(Box::new(move || {
                let _answer = tx;
                panic!("host bug");
            }))
            .unwrap();
        assert!(
            rx.recv_timeout(Duration::from_secs(10)).is_err(),
            "the answer is dropped"
        );
        let (tx, rx) = mpsc::channel();
        deciders.submit(Box::new(move || tx.send(7).unwrap())).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(7));
        assert_eq!(deciders.threads(), 1);
    }

    #[test]
    fn threads_end_when_the_plugin_is_dropped() {
        let deciders = Deciders::new("test", 3);
        let (tx, rx) = mpsc::channel();
        for _ in 0..3 {
            let tx = tx.clone();
            deciders
                .submit(Box::new(move || {
                    std::thread::sleep(Duration::from_millis(5));
                    tx.send(()).unwrap();
                }))
                .unwrap();
        }
        for _ in 0..3 {
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        let shared = deciders.shared.clone();
        drop(deciders);
        let give_up = Instant::now() + Duration::from_secs(10);
        while lock(&shared.queue).threads > 0 {
            assert!(Instant::now() < give_up, "threads still running after the drop");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
