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
mod scaffold;
mod validate;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let in_lambda = artifact_export::env::runs_in_lambda(&artifact_export::env::process_env);
    if in_lambda && std::env::args_os().len() == 1 {
        lambda::run().await
    } else {
        // Like other command-line tools, end quietly when the reader of our output goes away
        // (`artifact-export plan ... | head`) instead of failing on the next write. Copies are
        // atomic, so ending at any point loses nothing.
        // SAFETY: sets a signal disposition to its default, before any other thread writes.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
        cli::run().await
    }
}
