//! # Defaults and why
//!
//! * **Policy 0.4.0.2023.1.1** (ETSI best-practices policy, EN 319 421): an operator
//!   who has written no policy of their own still issues under a well-known one.
//! * **Hashes SHA-256, SHA-384, SHA-512.** ETSI TS 119 312; SHA-1 and MD5 are refused
//!   by name (badAlg) so an operator reading logs sees why.
//! * **Accuracy 1 s** (the largest EN 319 421 allows) **and genTime in whole seconds.**
//!   The precision follows the accuracy: the finest decimal unit not finer than it
//!   (1 s: none, 100..999 ms: one digit, 10..99 ms: two, 1..9 ms: three), truncated.
//!   Truncation moves genTime back by less than one unit of its last digit; that
//!   matches RFC 3161's reading of genTime as "the time at which the token was
//!   created", rounded down, and is why the clock guard compares the clock error with
//!   the whole accuracy rather than a fraction of it. Operators who want headroom
//!   declare a finer accuracy (e.g. 100 ms) and keep their clock within it.
//! * **Clock guard: max error and estimated error must both be within the accuracy.**
//!   The kernel's maxerror is the bound it guarantees; a declared accuracy is a bound
//!   too. Checking only the estimate would issue on a clock whose bound is worse than
//!   what the token claims.
//! * **Jump tolerance 100 ms (or the accuracy, if smaller), settle time 60 s.** Linux
//!   slews the wall and monotonic clocks alike, so their difference only changes on a
//!   step; 100 ms absorbs scheduling noise between two readings. After a backward step
//!   the guard wants a minute of good status before it trusts the clock again: long
//!   enough for an NTP daemon to report a sane state, short enough not to matter. A
//!   leap second is seen as a 1 s step back, logged, and sits out the settle time.
//! * **Kernel clock by default; `dev_mode` off.** On machines where the kernel reports
//!   STA_UNSYNC (containers, VMs whose host keeps time) production refuses to issue;
//!   `hanko serve --dev` downgrades the refusal to a warning, loudly.
//! * **Nonce up to 64 octets.** Clients send 8 (OpenSSL) to 20 bytes; 64 leaves room
//!   for any sane client and bounds what we echo. Longer is badRequest.
//! * **tsa field off, ESS issuerSerial on, qcStatements off.** The tsa name is optional
//!   and only adds bytes; issuerSerial helps verifiers; qcStatements is for the
//!   EU-qualified profile only and must not be claimed otherwise.
//! * **Serial ranges of 1000** (`store.serial_block`, chosen by the server): one
//!   reservation in the issuance log per thousand tokens; a crash skips at most 999
//!   serials, which is harmless since serials only need to be unique.
