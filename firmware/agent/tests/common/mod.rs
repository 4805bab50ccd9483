//! Helpers shared by the agent's integration tests; each test binary uses a part.
#![allow(dead_code)]

pub mod heap_peak;
pub mod http;
