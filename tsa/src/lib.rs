//! RFC 3161 time-stamp protocol core for Hanko: request checks, TSTInfo, token. No I/O.
