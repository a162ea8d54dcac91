//! What the benches measure of a child process: its exit and peak RSS, read with `wait4`
//! (std's `Child::wait` gives no resource usage).

/// How a reaped child ended.
pub struct Reaped {
    /// The raw wait status.
    pub status: libc::c_int,
    /// Exited by itself with status 0.
    pub exited_ok: bool,
    /// Peak resident set size in MiB.
    pub peak_rss_mib: f64,
}

/// Waits for the child `pid` (ours, waited for nowhere else) and reads its peak RSS.
pub fn reap(pid: u32) -> Reaped {
    let pid = pid as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: plain FFI call with valid out-pointers; the child is ours and not waited elsewhere.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    Reaped {
        status,
        exited_ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        // Linux reports ru_maxrss in KiB.
        peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
    }
}

/// SIGKILL (a Lambda process never exits by itself), then [`reap`].
pub fn kill_and_reap(pid: u32) -> Reaped {
    // SAFETY: plain FFI call on our own child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    reap(pid)
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
