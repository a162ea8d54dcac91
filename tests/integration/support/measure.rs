//! What the benches measure of a child process: its exit and peak RSS, read with `wait4`
//! (std's `Child::wait` gives no resource usage).
//!
//! A child's `ru_maxrss` is not its own peak alone: std spawns with `vfork`, and `exec` folds
//! the peak of the address space it leaves (the bench's own, tens of MiB) into the child's.
//! So a process that exits by itself is started by a small parent, a fresh copy of the bench
//! binary that does nothing else ([`command_with_small_parent`], [`SmallParent`]),
//! and a process that is killed has its peak read from `/proc` first ([`kill_and_reap`]).

use std::ffi::OsStr;
use std::process::Command;

/// The first argument that makes a bench binary the small parent of the command after it.
const SMALL_PARENT: &str = "--small-parent-of";
/// Where the small parent writes the program's wait status and peak RSS (KiB).
const REPORT_VAR: &str = "BENCH_SMALL_PARENT_REPORT";

/// How a reaped child ended.
pub struct Reaped {
    /// The raw wait status.
    pub status: libc::c_int,
    /// Exited by itself with status 0.
    pub exited_ok: bool,
    /// Peak resident set size in MiB.
    pub peak_rss_mib: f64,
}

impl Reaped {
    fn new(status: libc::c_int, peak_kib: i64) -> Reaped {
        Reaped {
            status,
            exited_ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            peak_rss_mib: peak_kib as f64 / 1024.0,
        }
    }
}

/// Waits for the child `pid` (ours, waited for nowhere else) and reads its peak RSS.
pub fn reap(pid: u32) -> Reaped {
    let (status, peak_kib) = wait_with_usage(pid);
    Reaped::new(status, peak_kib)
}

/// `wait4` on our child `pid`: its wait status and `ru_maxrss` (KiB on Linux).
fn wait_with_usage(pid: u32) -> (libc::c_int, i64) {
    let pid = pid as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: plain FFI call with valid out-pointers; the child is ours and not waited elsewhere.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    (status, usage.ru_maxrss)
}

/// SIGKILL (a Lambda process never exits by itself), then [`reap`]; the peak RSS is the
/// process's own (`VmHWM`, read before the kill), not `wait4`'s.
pub fn kill_and_reap(pid: u32) -> Reaped {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let own_peak_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .expect("VmHWM in /proc/PID/status");
    // SAFETY: plain FFI call on our own child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    Reaped {
        peak_rss_mib: own_peak_kib / 1024.0,
        ..reap(pid)
    }
}

/// `program`, to be started by a small parent (this bench binary again, see
/// [`serve_as_small_parent`]). Arguments, environment and stdio set on the returned command
/// reach `program`; start it with [`SmallParent::spawn`].
pub fn command_with_small_parent(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the bench's own path"));
    command.arg(SMALL_PARENT).arg(program);
    command
}

/// [`command_with_small_parent`] where this binary cannot be the parent (a test under
/// libtest's own `main`): the small parent is `python3`, forking and `exec`ing `program`
/// from its own address space (a few MiB) and reporting the same way.
pub fn command_with_python_parent(program: impl AsRef<OsStr>) -> Command {
    const PARENT: &str = concat!(
        "import os, sys\n",
        "report = os.environ.pop(sys.argv[1])\n",
        "pid = os.fork()\n",
        "if pid == 0:\n",
        "    try:\n",
        "        os.execvp(sys.argv[2], sys.argv[2:])\n",
        "    finally:\n",
        "        os._exit(127)\n",
        "_, status, usage = os.wait4(pid, 0)\n",
        "open(report, 'w').write(f'{status} {usage.ru_maxrss}')\n",
    );
    let mut command = Command::new("python3");
    command.args(["-c", PARENT, REPORT_VAR]).arg(program);
    command
}

/// A running small parent and the file it reports to.
pub struct SmallParent {
    child: std::process::Child,
    report: tempfile::TempDir,
}

impl SmallParent {
    /// Spawns a command from [`command_with_small_parent`] or [`command_with_python_parent`].
    pub fn spawn(command: &mut Command) -> std::io::Result<SmallParent> {
        let report = tempfile::tempdir()?;
        // Set last, so a caller's `env_clear` cannot remove it; the small parent takes it out
        // of the program's environment.
        let child = command.env(REPORT_VAR, report.path().join("report")).spawn()?;
        Ok(SmallParent { child, report })
    }

    /// The program's stdout, when the command piped it.
    pub fn stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Waits for the small parent and returns what it measured of the program.
    pub fn reap(self) -> Reaped {
        let parent = reap(self.child.id());
        let path = self.report.path().join("report");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut fields = text.split_whitespace().map(str::parse::<i64>);
        let (Some(Ok(status)), Some(Ok(peak_kib))) = (fields.next(), fields.next()) else {
            panic!(
                "the small parent wrote no report to {} (its wait status {})",
                path.display(),
                parent.status
            );
        };
        Reaped::new(status as libc::c_int, peak_kib)
    }
}

/// The first call in a bench's `main`: when this process was started by
/// [`SmallParent::spawn`], runs the program, writes its wait status and peak RSS (KiB) to
/// the report file and exits; otherwise returns at once.
pub fn serve_as_small_parent() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new(SMALL_PARENT)) {
        return;
    }
    let (Some(report), Some(program)) = (std::env::var_os(REPORT_VAR), args.next()) else {
        eprintln!("{SMALL_PARENT} PROGRAM [ARG...], with {REPORT_VAR} set");
        std::process::exit(2);
    };
    let child = match Command::new(&program).args(args).env_remove(REPORT_VAR).spawn() {
        Ok(child) => child,
        Err(error) => {
            eprintln!("{SMALL_PARENT}: run {}: {error}", program.to_string_lossy());
            std::process::exit(2);
        }
    };
    let (status, peak_kib) = wait_with_usage(child.id());
    std::fs::write(&report, format!("{status} {peak_kib}")).expect("write the report");
    std::process::exit(0);
}

/// `1000` → `1,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
