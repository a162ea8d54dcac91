//! The function run as Lambda runs it: cargo-lambda's emulator of the Lambda control plane
//! (`cargo lambda watch --only-lambda-apis`: the Runtime API and the Invoke API, no build,
//! no function started by it), the already built `artifact-export` binary as the function
//! process polling that Runtime API, and `cargo lambda invoke` as the caller.
//!
//! cargo-lambda comes from PyPI into `target/tools-venv` (`make tools`, which `.ci/run`
//! runs); a missing cargo-lambda fails the caller with that hint, it never skips.
//!
//! Every process gets a clean environment: only PATH, HOME and the toolchain's variables,
//! then exactly what the caller adds (the function: the emulator's `AWS_LAMBDA_*` variables
//! and a test server's endpoint and credentials), never the machine's AWS or CA variables.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::paths::repo;

/// The function's name: the binary target's, which the emulator checks against the
/// workspace's binaries (`cargo metadata`) before it accepts an invoke.
pub const FUNCTION: &str = "artifact-export";

pub const INSTALL_HINT: &str = "cargo-lambda is installed (pinned, from PyPI, into target/tools-venv) by \
                                `make tools`, which .ci/run runs";

/// How long an emulator may take to answer on its port (it runs `cargo metadata` first).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// cargo-lambda from `target/tools-venv`, else from PATH; panics with the install hint.
pub fn cargo_lambda() -> PathBuf {
    let venv = repo("target/tools-venv/bin/cargo-lambda");
    if venv.is_file() {
        return venv;
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("cargo-lambda"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "cargo-lambda not found in {} nor on PATH: {INSTALL_HINT}",
                venv.display()
            )
        })
}

/// A command with none of this machine's environment except what running tools needs.
pub fn clean_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for name in ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// A free loopback port (free when asked: the emulator start is retried if it is taken).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// A running `cargo lambda watch --only-lambda-apis` on a loopback port; stopped on drop.
pub struct Emulator {
    child: Child,
    pub port: u16,
    /// The `AWS_LAMBDA_*` variables the emulator says the function process must have.
    announced: Vec<(String, String)>,
    dir: tempfile::TempDir,
    invokes: std::sync::atomic::AtomicU32,
}

impl Emulator {
    /// Starts the emulator and waits until it accepts connections.
    pub fn start() -> Emulator {
        let program = cargo_lambda();
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir for the emulator");
            let log_path = dir.path().join("emulator.log");
            let log = std::fs::File::create(&log_path).expect("emulator log file");
            let port = free_port();
            let child = clean_command(&program)
                .args([
                    "lambda",
                    "watch",
                    "--only-lambda-apis",
                    "--invoke-address",
                    "127.0.0.1",
                ])
                .arg("--invoke-port")
                .arg(port.to_string())
                // It reads the workspace's binaries with `cargo metadata`; it builds nothing.
                .arg("--manifest-path")
                .arg(repo("Cargo.toml"))
                .env("NO_COLOR", "1")
                .current_dir(repo(""))
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}; {INSTALL_HINT}", program.display()));
            let mut emulator = Emulator {
                child,
                port,
                announced: Vec::new(),
                dir,
                invokes: Default::default(),
            };
            match emulator.wait_until_listening() {
                Ok(()) => {
                    emulator.announced = announced_variables(&emulator.log());
                    assert!(
                        emulator
                            .announced
                            .iter()
                            .any(|(k, _)| k == "AWS_LAMBDA_RUNTIME_API"),
                        "the emulator did not announce AWS_LAMBDA_RUNTIME_API; its log:\n{}",
                        emulator.log()
                    );
                    return emulator;
                }
                Err(log) => last_log = log,
            }
        }
        panic!("cargo lambda watch did not start (3 tries); its last log:\n{last_log}");
    }

    /// `Err(log)` when the process ended (a port taken meanwhile) before it listened.
    fn wait_until_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().expect("poll the emulator") {
                return Err(format!("(exited: {status})\n{}", self.log()));
            }
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch not listening on 127.0.0.1:{} after {START_TIMEOUT:?}; its log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the emulator printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("emulator.log")).unwrap_or_default()
    }

    /// The environment Lambda gives the function process: the variables the emulator
    /// announced, with the Runtime API routed to [`FUNCTION`] (the emulator serves each
    /// function's runtime under `/.rt/<name>`; the bare `/.rt` is the function `_`).
    pub fn function_env(&self) -> Vec<(String, String)> {
        self.announced
            .iter()
            .map(|(k, v)| match k.as_str() {
                "AWS_LAMBDA_RUNTIME_API" => (k.clone(), format!("{}/{FUNCTION}", v.trim_end_matches('/'))),
                "AWS_LAMBDA_FUNCTION_NAME" => (k.clone(), FUNCTION.to_string()),
                _ => (k.clone(), v.clone()),
            })
            .collect()
    }

    /// The Invoke API's URL for [`FUNCTION`] (what `cargo lambda invoke` posts to).
    #[allow(dead_code)] // used by host/benches/cold_start.rs
    pub fn invoke_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{FUNCTION}/invocations",
            self.port
        )
    }

    /// Starts `cargo lambda invoke FUNCTION --data-file F --output-format json`; its output
    /// goes to files read by [`PendingInvoke::finish`].
    pub fn start_invoke(&self, payload: &Value) -> PendingInvoke {
        let n = self.invokes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let data = self.dir.path().join(format!("payload-{n}.json"));
        std::fs::write(&data, payload.to_string()).expect("write payload");
        let stdout = self.dir.path().join(format!("invoke-{n}.out"));
        let stderr = self.dir.path().join(format!("invoke-{n}.err"));
        let child = clean_command(&cargo_lambda())
            .args(["lambda", "invoke", FUNCTION, "--invoke-address", "127.0.0.1"])
            .arg("--invoke-port")
            .arg(self.port.to_string())
            .args(["--output-format", "json", "--color", "never", "--data-file"])
            .arg(&data)
            .stdout(std::fs::File::create(&stdout).expect("invoke stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("invoke stderr file"))
            .spawn()
            .expect("start cargo lambda invoke");
        PendingInvoke {
            child,
            stdout,
            stderr,
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `AWS_LAMBDA_X=value` tokens from the emulator's log ("you MUST set these variables").
fn announced_variables(log: &str) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for line in log.lines() {
        let Some(start) = line.find("AWS_LAMBDA_") else {
            continue;
        };
        let token = line[start..].split_whitespace().next().unwrap_or_default();
        if let Some((name, value)) = token.split_once('=')
            && !value.is_empty()
            && !vars.iter().any(|(k, _)| k == name)
        {
            vars.push((name.to_string(), value.to_string()));
        }
    }
    vars
}

/// A `cargo lambda invoke` under way.
pub struct PendingInvoke {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl PendingInvoke {
    /// Waits for the answer (killing the caller after `timeout`, with a clear panic),
    /// calling `check` meanwhile (it panics when the answer can no longer come, e.g. the
    /// function process died).
    pub fn finish(mut self, timeout: Duration, mut check: impl FnMut()) -> Invoked {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll cargo lambda invoke") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("cargo lambda invoke got no answer within {timeout:?}");
            }
            check();
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let response = status
            .success()
            .then(|| serde_json::from_str(&stdout))
            .transpose()
            .unwrap_or_else(|e| panic!("cargo lambda invoke printed no JSON ({e}):\n{stdout}\n{stderr}"));
        Invoked {
            status,
            response,
            stdout,
            stderr,
        }
    }
}

/// What `cargo lambda invoke` reported.
#[derive(Debug)]
pub struct Invoked {
    pub status: ExitStatus,
    /// The function's response when the invocation succeeded.
    pub response: Option<Value>,
    pub stdout: String,
    /// On a failed invocation: the function's error message.
    pub stderr: String,
}

impl Invoked {
    /// The response of a successful invocation; panics with the caller's output otherwise.
    pub fn ok(&self) -> &Value {
        self.response.as_ref().unwrap_or_else(|| {
            panic!(
                "invocation failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
                self.status, self.stdout, self.stderr
            )
        })
    }
}
