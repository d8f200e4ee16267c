//! `hanko-bench`: the command line. Each subcommand lives in its own module of the
//! library (`hanko_bench::hsm`, `hanko_bench::tsa`, `hanko_bench::seal`); this file only
//! dispatches.

use clap::{Parser, Subcommand};

/// Benchmarks for Hanko. Figures are printed as tables on standard output.
#[derive(Debug, Parser)]
#[command(name = "hanko-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Raw signing throughput of the HSM signing pool (SoftHSM by default).
    Hsm(hanko_bench::hsm::Args),
    /// The TSA over HTTP (a `hanko serve --dev` child), as a ratio to the raw HSM rate.
    Tsa(hanko_bench::tsa::Args),
    /// CSC signHash (1 and 64 hashes per call) and CAdES seals over HTTP (a `hanko serve
    /// --dev` child), as a ratio to the raw HSM rate of the same seal key.
    Seal(hanko_bench::seal::Args),
    /// The TSA offered ten times its capacity (open loop) for a bounded time: latency of
    /// what is accepted, speed of the 503s, hung requests, server RSS, and every token
    /// verified and found in the issuance log.
    Overload(hanko_bench::overload::Args),
    /// A bulk client's flood beside interactive callers, with lanes and without: the
    /// interactive share of the signing capacity that lanes keep.
    Lanes(hanko_bench::lanes::Args),
    /// Merkle anchoring: closing a batch of 1,000,000 leaves (time, peak RSS), evidence
    /// lookups in it (every answer checked), TSA throughput with anchoring on vs off.
    Anchor(hanko_bench::anchor::Args),
    /// One software signature verification (verify-after-sign's verifier) per key type,
    /// against `openssl speed` on the same machine.
    Verify(hanko_bench::verify::Args),
    /// How busy this machine keeps its CPUs when work passes between threads (no Hanko
    /// code): the ceiling for the server's CPU share under load.
    Pipeline(hanko_bench::pipeline::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Hsm(args) => hanko_bench::hsm::run(args),
        Command::Tsa(args) => hanko_bench::tsa::run(args),
        Command::Seal(args) => hanko_bench::seal::run(args),
        Command::Overload(args) => hanko_bench::overload::run(args),
        Command::Lanes(args) => hanko_bench::lanes::run(args),
        Command::Anchor(args) => hanko_bench::anchor::run(args),
        Command::Verify(args) => hanko_bench::verify::run(args),
        Command::Pipeline(args) => hanko_bench::pipeline::run(args),
    }
}
