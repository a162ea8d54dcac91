//! The `artifact-export` binary: the Lambda runtime loop when `AWS_LAMBDA_RUNTIME_API` is
//! set and no arguments are given, the CLI otherwise. Both are thin shells over
//! `artifact_export::handler::handle`.

mod backfill;
mod check;
mod cli;
mod exit;
mod input;
mod invoke;
mod lambda;
mod plan;
mod plugin;
mod plugin_diff;
mod reconcile;
mod scaffold;
mod split;
mod validate;

use std::process::ExitCode;

/// A plain `main`: what must happen before any other thread exists (the signal disposition)
/// happens before the tokio runtime and its worker threads are built.
fn main() -> ExitCode {
    let in_lambda = artifact_export::env::runs_in_lambda(&artifact_export::env::process_env);
    let lambda_loop = in_lambda && std::env::args_os().len() == 1;
    if !lambda_loop {
        // Like other command-line tools, end quietly when the reader of our output goes away
        // (`artifact-export plan ... | head`) instead of failing on the next write. Copies are
        // atomic, so ending at any point loses nothing.
        // SAFETY: sets a signal disposition to its default while this is the process's only
        // thread (the runtime is built below).
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if lambda_loop {
        runtime.block_on(lambda::run())
    } else {
        runtime.block_on(cli::run())
    }
}
