//! What a plugin instance can see: a WASI context with nothing in it, and only the WASI
//! interfaces a `wasm32-wasip2` Rust component imports.
//!
//! No preopened directories, no environment, no arguments, no network, an empty stdin;
//! clocks frozen at the Unix epoch (a plugin must use the event time it is given, and
//! cannot time anything); randomness a fixed sequence (see [`RANDOM_SEQUENCE`]); stdout
//! and stderr captured with a size cap and written to the log.
//!
//! **No host call waits.** A host call is outside the epoch deadline's reach (the deadline
//! only fires in guest code), so anything that could block inside one would hold the
//! decision's thread past its `timeoutMs`. Every pollable a plugin can obtain is ready at
//! once: clock subscriptions (a frozen clock has no future to wait for: `sleep` returns
//! immediately), the empty stdin (end of stream) and the captured stdout/stderr (always
//! writable). `wasi:io/poll` is replaced by [`NoWaitPoll`], which returns what is ready
//! and traps, instead of waiting, when nothing is. Sockets are not linked at all (a
//! component importing them fails to load); the filesystem is linked with nothing
//! preopened, so every file operation fails at once.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream, WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sync};
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamResult, subscribe};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiView};

/// Bytes of stdout and stderr (each) kept per decision; the rest is counted and dropped.
pub const OUTPUT_CAP: usize = 16 * 1024;

/// What `wasi:random` answers, in every decision, from the start: random is
/// **deterministic per decision**, not denied. Rust std seeds `HashMap` from it, so
/// denying it would make ordinary code fail to load; a fixed sequence keeps decisions
/// reproducible (the same input gives the same answer) and tells the plugin nothing.
/// It is not secret: a plugin has nothing to keep secret.
pub const RANDOM_SEQUENCE: [u8; 16] = *b"artifact-export!";

/// Most bytes one `get-random-bytes` call may ask for (the host allocates them).
const MAX_RANDOM_BYTES: u64 = 64 * 1024;

/// A clock that never moves.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Captured output of one stream: the first [`OUTPUT_CAP`] bytes and how many were dropped.
#[derive(Debug, Default)]
pub struct Captured {
    /// Kept bytes.
    pub kept: Vec<u8>,
    /// Bytes written beyond the cap.
    pub dropped: usize,
}

/// A stdout/stderr that accepts every write (a guest never fails on printing) but keeps
/// only the first [`OUTPUT_CAP`] bytes.
#[derive(Clone, Default)]
pub struct CappedOutput(Arc<Mutex<Captured>>);

impl CappedOutput {
    /// Takes what was captured so far.
    pub fn take(&self) -> Captured {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The line containing `needle` and the line after it (a panic's location and message),
    /// without consuming the buffer.
    pub fn peek_line(&self, needle: &str) -> Option<String> {
        let captured = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let text = String::from_utf8_lossy(&captured.kept);
        let mut lines = text.lines().skip_while(|l| !l.contains(needle));
        let first = lines.next()?;
        Some(match lines.next() {
            Some(next) => format!("{} {}", first.trim(), next.trim()),
            None => first.trim().to_string(),
        })
    }

    fn accept(&self, bytes: &[u8]) {
        let mut captured = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let room = OUTPUT_CAP.saturating_sub(captured.kept.len());
        let kept = room.min(bytes.len());
        captured.kept.extend_from_slice(&bytes[..kept]);
        captured.dropped += bytes.len() - kept;
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.accept(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        // WASI's own limit for one blocking write, well under the hostcall fuel cap.
        Ok(4096)
    }
}

impl AsyncWrite for CappedOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A WASI context exposing nothing but captured stdout/stderr.
pub fn empty_wasi(stdout: &CappedOutput, stderr: &CappedOutput) -> WasiCtx {
    WasiCtxBuilder::new()
        .stdin(tokio::io::empty())
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .secure_random(Deterministic::new(RANDOM_SEQUENCE.to_vec()))
        .insecure_random(Deterministic::new(RANDOM_SEQUENCE.to_vec()))
        .insecure_random_seed(u128::from_le_bytes(RANDOM_SEQUENCE))
        .max_random_size(MAX_RANDOM_BYTES)
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false)
        .build()
}

/// Adds the WASI interfaces a plugin may import to `linker`: `wasi:cli/*` (empty
/// environment and arguments, empty stdin, captured stdout/stderr), `wasi:io/{error,
/// streams}`, `wasi:io/poll` that never waits ([`NoWaitPoll`]), `wasi:clocks` (frozen; a
/// subscription is ready at once: [`FrozenTimers`]), `wasi:random` (deterministic) and
/// `wasi:filesystem` (nothing preopened). Not `wasi:sockets`.
pub fn add_wasi<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let l = linker;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, Timers>(l, |t| FrozenTimers(t.ctx().table))?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    sync::filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    sync::io::error::add_to_linker::<T, Table>(l, |t| t.ctx().table)?;
    sync::io::streams::add_to_linker::<T, Table>(l, |t| t.ctx().table)?;
    sync::io::poll::add_to_linker::<T, PollHost>(l, |t| NoWaitPoll(t.ctx().table))?;
    Ok(())
}

/// The resource table, as the host of `wasi:io/{error,streams}`.
struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

/// `wasi:clocks/monotonic-clock` on the frozen clock: `now` is always 0, and a
/// subscription (`subscribe-duration`, `subscribe-instant`) is a pollable that is ready at
/// once. Time does not pass inside a decision, so there is nothing to wait for.
pub struct FrozenTimers<'a>(&'a mut ResourceTable);

/// Marker for [`FrozenTimers`] as the host of `wasi:clocks/monotonic-clock`.
struct Timers;

impl HasData for Timers {
    type Data<'a> = FrozenTimers<'a>;
}

/// A pollable that is always ready.
struct ReadyNow;

#[wasmtime_wasi::async_trait]
impl Pollable for ReadyNow {
    async fn ready(&mut self) {}
}

impl FrozenTimers<'_> {
    fn ready_now(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.0.push(ReadyNow)?;
        subscribe(self.0, ready)
    }
}

impl clocks::monotonic_clock::Host for FrozenTimers<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(0)
    }
    fn resolution(&mut self) -> wasmtime::Result<u64> {
        Ok(1_000_000_000)
    }
    fn subscribe_instant(&mut self, _when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        self.ready_now()
    }
    fn subscribe_duration(&mut self, _duration: u64) -> wasmtime::Result<Resource<DynPollable>> {
        self.ready_now()
    }
}

/// The trap of a plugin that waited on something that is not ready: with every pollable
/// ready at once this cannot happen, but if it did the decision must fail, not hang.
#[derive(Debug, thiserror::Error)]
#[error("would block: waited on a pollable that is not ready (a plugin may not wait)")]
pub struct WouldBlock;

/// `wasi:io/poll` that never waits: `poll` returns the pollables that are ready now and
/// traps with [`WouldBlock`] when none is; `block` returns if ready, else traps.
pub struct NoWaitPoll<'a>(&'a mut ResourceTable);

/// Marker for [`NoWaitPoll`] as the host of `wasi:io/poll`.
struct PollHost;

impl HasData for PollHost {
    type Data<'a> = NoWaitPoll<'a>;
}

impl NoWaitPoll<'_> {
    fn is_ready(&mut self, rep: u32) -> wasmtime::Result<bool> {
        // wasmtime-wasi's `ready` polls the pollable's future exactly once.
        sync::io::poll::HostPollable::ready(self.0, Resource::<DynPollable>::new_borrow(rep))
    }
}

impl sync::io::poll::Host for NoWaitPoll<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        if pollables.is_empty() {
            wasmtime::bail!("poll of an empty list");
        }
        let mut ready = Vec::new();
        for (index, pollable) in pollables.iter().enumerate() {
            if self.is_ready(pollable.rep())? {
                ready.push(u32::try_from(index)?);
            }
        }
        if ready.is_empty() {
            return Err(WouldBlock.into());
        }
        Ok(ready)
    }
}

impl sync::io::poll::HostPollable for NoWaitPoll<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        self.is_ready(pollable.rep())
    }
    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        if self.is_ready(pollable.rep())? {
            Ok(())
        } else {
            Err(WouldBlock.into())
        }
    }
    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        sync::io::poll::HostPollable::drop(self.0, pollable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_capped_not_refused() {
        let out = CappedOutput::default();
        out.accept(&vec![b'a'; OUTPUT_CAP - 10]);
        out.accept(&[b'b'; 30]);
        let captured = out.take();
        assert_eq!(captured.kept.len(), OUTPUT_CAP);
        assert_eq!(captured.dropped, 20);
        assert!(out.take().kept.is_empty(), "take empties the buffer");
    }
}
