//! hanko-server integration tests: the real `hanko` binary against a real SoftHSM token
//! (directly, or through the fault-injecting pkcs11-mock) and real SQLite / PostgreSQL
//! logs, each test in a temporary directory of its own, checked with raw HTTP and with
//! tools we did not write (openssl, rfc3161-client, sqlite3, a Python export verifier).
//!
//! One binary, so that the crate links its tests once; its tests run in parallel threads
//! (`common` says what that rules out), and those that load the machine take turns
//! (`common::load_turn`).
#![allow(clippy::unwrap_used, reason = "tests: a panic is a failed assertion")]

/// Issue #15: Merkle anchoring: batches, evidence records verified offline, the batch
/// API and metrics, `hanko log verify` over batches, an external TSA target down and back,
/// two nodes on one PostgreSQL (one batcher, takeover after SIGKILL).
mod anchor;
/// Issue #15 acceptance: SIGKILL at three points of batch closing and anchoring under
/// load (the `--dev` test hook `HANKO_FAULT_ANCHOR_PAUSE`), on SQLite and PostgreSQL;
/// after a restart every record is in exactly one anchored batch.
mod anchor_crash;
/// Issue #16: archive objects: hashes submitted (JSON, binary, `hanko archive submit`),
/// anchored, their evidence verified by hanko and Bouncy Castle; every refusal logs
/// nothing; migration 4 on an anchored log; SQLite and PostgreSQL.
mod archive;
/// Issue #16: hash-tree renewal of an archive object through the binary (SHA-256 to
/// SHA-512), the record with both chains verified by hanko and Bouncy Castle; refusals.
mod archive_rehash;
/// Issue #14: the client model through the binary (a TSA-only client refused elsewhere,
/// tsa.public = false, a client's own rate), X-Request-Id, /openapi.json, `hanko config
/// check`.
mod clients;
/// Running the binary, servers, output; `bc`, `http`, `log`, `mock` and `tsp` helpers.
mod common;
/// docs/configuration.md against the config structs, the serve flags and the environment.
mod config_doc;
/// Issue #19: `hanko-conformance` audits the dev server's TSA (RSA and ECDSA, HTTP and
/// HTTPS): every check passes.
mod conformance;
/// Issue #12: the CSC API v2 through `serve --dev`: signHash for both dev seal
/// credentials verified by openssl pkeyutl, SAD binding, every refusal in CSC JSON.
mod csc;
/// Issue #12 acceptance: pyHanko's CSC client seals a PDF through `/csc/v1` against
/// `serve --dev` (RSA-3072 and P-256); pyHanko's validator accepts it; the log holds
/// exactly the tokens it received.
mod csc_pyhanko;
/// Issue #12: CSC v2 `signDoc` seals verified by openssl and logged once each; every
/// refusal in CSC JSON; a seal or token whose record fails is not returned.
mod csc_signdoc;
/// Issue #12: CSC 1.0.4 (`/csc/v1`) and `signatures/timestamp` through `serve --dev`,
/// `[csc]` in `info`, every refusal in CSC JSON and nothing logged.
mod csc_v1;
/// `hanko dev-init`: creates, then reuses; file modes; chains verify with openssl.
mod dev_init;
/// HSM faults through the whole server (pkcs11-mock): failing, unplugged, corrupting,
/// hanging and slow `C_Sign` under load; /readyz; the log holds exactly the grants.
mod faults_server;
/// Admission control of the signing routes: 503 + Retry-After on overload, 429 per
/// client, the pool's own Busy as HTTP 200 + systemFailure.
mod http_limits;
/// Issue #18: the emergency stop (`hanko key suspend|resume`, the admin API) on two nodes
/// sharing PostgreSQL and on SQLite, and the audit events in the log.
mod key_lifecycle;
/// Issue #18: start-up refuses an RSA-2048 unit, a non-CA intermediate and an expired
/// one, each named.
mod key_policy;
/// Issue #18: key rollover under load after `hanko reload`; refused reloads; the audit
/// trail of a rollover; a restart after it.
mod key_rollover;
/// Issue #18: `dev-init --all-key-types`; RSA-PSS, ECDSA P-384 and Ed25519 tokens and
/// seals from `serve --dev` against openssl, rfc3161-client, Bouncy Castle's
/// org.bouncycastle.tsp and hanko's verifiers: the interop matrix, refusals asserted.
mod key_types;
/// `hanko log verify|export` on SQLite and PostgreSQL: tampering named, exit codes,
/// auditors without write access, the independent export verifier.
mod log_cli;
/// The database refusing writes (disk full) under load: systemFailure, nothing released
/// that is not logged, issuance back by itself once space is freed.
mod log_faults;
/// The issuance log under a running server: the log API, SIGKILL mid-load, two nodes on
/// one PostgreSQL, the linger.
mod log_server;
/// Issue #11: HANKO_PIN leaves the server's environment and never reaches a child.
mod pin_env;
/// Issue #17: the log's pipelined commits against a power loss: every write no fsync
/// covered is dropped (an LD_PRELOAD fault injector), and every token a client received
/// is still in the log after the restart.
mod power_loss;
/// Issue #16: renewal of evidence records archives hold (`POST /api/v1/evidence/renew`,
/// `hanko evidence renew`): Hanko's and Bouncy Castle's records renewed by time-stamp and
/// hash tree and validated by Bouncy Castle; every refusal changes nothing; time travel
/// with `faketime` past the first TSA certificate's expiry (`renewal_time_travel`).
mod renewal;
/// Issue #16 acceptance: the renewal scheduler SIGKILLed at three points of a renewal of
/// 10,000 evidence chains renews each exactly once after restart; the renewed records
/// verify (hanko, Bouncy Castle); SQLite and PostgreSQL; two nodes on one PostgreSQL
/// renew one at a time, with a takeover after SIGKILL.
mod renewal_crash;
/// Issue #16 acceptance: a renewed record verifies with `faketime` five days after its
/// first TSA certificate expired; the record unrenewed fails there.
mod renewal_time_travel;
/// Issue #12: B-T seals stamped by an external TSA (a second `hanko serve`), its
/// failure a retryable 503 with nothing logged; a credential's allowed levels.
mod seal_external_tsa;
/// Issue #12: POST /api/v1/seal/cades through `serve --dev`: openssl verifies every
/// seal and its time-stamp, the log holds one record per seal, clients and their
/// credentials, JSON errors, the dev client's key.
mod seal_http;
/// Issue #13: POST /api/v1/seal/pdf and `hanko seal FILE.pdf` through `serve --dev`:
/// PAdES seals of PDFs from several producers checked by pyHanko, pdfsig and qpdf, the
/// log holds one record per sealed PDF, each bad input a 4xx that logs nothing.
mod seal_pdf;
/// Issue #12: seals take their time from the clock guard (an unsynchronised clock in
/// production refuses them with a retryable 503 JSON error and logs nothing), and a
/// seal credential whose signer fails makes /readyz 503 naming it.
mod seal_readiness;
/// Issue #12: `hanko seal-verify` accepts every dev seal (and openssl does too) and
/// names each defect.
mod seal_verify;
/// `hanko serve`: --dev readiness, metrics, graceful shutdown; production refusals.
mod serve;
/// Slow clients (issue #11): trickled bodies get 408 at the deadline while ordinary
/// clients are served; slow heads and idle keep-alive are closed; connections per source;
/// all of it over TLS too, and slow handshakes (issue #14).
mod slow_clients;
/// Issue #14: HTTPS (TLS 1.3/1.2 only, curl, openssl, `hanko stamp --ca`), a
/// certificate swapped on disk without a restart, mTLS refusing unknown clients.
mod tls;
/// Issue #14: the HTTPS listener's key in the HSM (`tls.key_label`; RSA-3072, P-256, P-384
/// and Ed25519): openssl and curl over TLS 1.3/1.2, a time-stamp over it, certificates for
/// another key refused at start, at reload and by `config check --hsm`; an HSM fault
/// during the handshake fails it, counted.
mod tls_hsm;
/// dev-init's keys are sensitive and never extractable in the token.
mod token_keys;
/// The clock guard in production mode: chronyc states drive issuance and /readyz.
mod tsa_clock;
/// `POST /tsa` under bad input, `GET /tsa/policy`, `hanko stamp` and `hanko verify`.
mod tsa_http;
/// Tokens for RSA and P-256 keys accepted by openssl, rfc3161-client and `hanko verify`.
mod tsa_interop;
/// Serials unique across concurrency and a restart, and every grant in the log.
mod tsa_serials;
/// Issue #20: the verification page in headless Chromium (each verdict, axe-core,
/// Japanese, JavaScript off), the JSON report against `hanko verify`/`seal-verify`,
/// bad input and uploads over the limit.
mod verify_page;
