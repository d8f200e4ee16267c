//! `hanko`: see the `hanko_server` library for everything; this file only hands over.
fn main() -> std::process::ExitCode {
    hanko_server::main_entry()
}
