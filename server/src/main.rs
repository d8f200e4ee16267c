//! `hanko`: see the `hanko_server` library for everything; this file only hands over.
//! `main_entry` must be the first thing `main` does: it takes the PIN out of the
//! environment while the process still has one thread.
fn main() -> std::process::ExitCode {
    hanko_server::main_entry()
}
