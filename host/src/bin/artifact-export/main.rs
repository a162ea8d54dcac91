//! The `artifact-export` binary: the Lambda runtime loop when `AWS_LAMBDA_RUNTIME_API` is
//! set and no arguments are given, the CLI otherwise. Both are thin shells over
//! `artifact_export::handler::handle`.

mod cli;
mod lambda;
mod plugin_cmd;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    if in_lambda && std::env::args_os().len() == 1 {
        lambda::run().await
    } else {
        cli::run().await
    }
}
