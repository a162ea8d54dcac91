//! Helpers shared by the test modules.

pub mod events;
pub mod lambda;
pub mod paths;
pub mod proxy;
#[macro_use]
pub mod servers;
pub mod world;
