//! What a plugin instance can see: a WASI context with nothing in it.
//!
//! No preopened directories, no environment, no arguments, no network, no stdin; clocks
//! frozen at the Unix epoch (a plugin must use the event time it is given, and cannot
//! time anything); stdout and stderr captured with a size cap and written to the log.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

/// Bytes of stdout and stderr (each) kept per decision; the rest is counted and dropped.
pub const OUTPUT_CAP: usize = 16 * 1024;

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
        Ok(64 * 1024)
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
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false)
        .build()
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
