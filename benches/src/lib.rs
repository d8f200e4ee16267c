//! `hanko-bench`: load generators and benchmarks for Hanko, one module per subcommand.
//!
//! Every figure is meant to be read against the raw HSM signing rate measured by
//! [`hsm`] on the same machine in the same run: a TSA that reaches 90 % of the raw
//! rate is doing well whatever the hardware. See `BENCHMARKING.md` for what is measured
//! and how, and `RESULTS.md` for recorded runs.
//!
//! It does not assert anything (it is not a test) and does not run in CI by default; it
//! prints tables for humans and for `RESULTS.md`.
//!
//! Layout: `main.rs` only parses the command line; each subcommand is a module here with
//! an `Args` struct (clap) and a `run(Args)` function (`hsm`, `tsa`, `seal`, `overload`, `lanes`,
//! `anchor`, `verify`, `pipeline`), so adding
//! one means adding its module and one enum variant. What the HTTP benches share is
//! beside them: `devserver` (the `hanko serve --dev` child, the dev token, the per-row
//! config), `http` (the load generator's HTTP/1.1 client), `cpu` (where the CPU
//! went, the load average) and `stats`.

pub mod anchor;
mod cpu;
mod devserver;
pub mod hsm;
mod http;
pub mod lanes;
pub mod overload;
pub mod pipeline;
pub mod seal;
pub mod stats;
pub mod tsa;
pub mod verify;

pub use devserver::{Both, HttpBench};
