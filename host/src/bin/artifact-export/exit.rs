//! How a command ends: its exit codes, and [`BadInput`], the error that means "exit 2".
//!
//! 0 success, 1 a record or object failed, 2 bad input (printed on one line), 130 an
//! interrupted backfill.

use std::process::ExitCode;

/// Exit code of a command in which a record or object could not be exported.
pub const FAILED: u8 = 1;
/// Exit code of bad input: options, files, environment, configuration.
pub const BAD_INPUT: u8 = 2;
/// Exit code of a backfill stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// A bad-input error: printed on one line, exit code 2.
pub struct BadInput(pub anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for BadInput {
    fn from(error: E) -> Self {
        BadInput(error.into())
    }
}

/// Exit 0 when `failed` is false, 1 when a record or object failed.
pub fn failed_if(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints a bad-input error on one line and gives its exit code.
pub fn bad_input(BadInput(error): BadInput) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::from(BAD_INPUT)
}
