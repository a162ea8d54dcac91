//! Paths of the guest plugins built for tests and benchmarks (see `build.rs`).

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
