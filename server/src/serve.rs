//! Serving and stopping: the accept loop with graceful shutdown (mini-redis style: the
//! shutdown signal is an argument), the signals that trigger it, and the order in which
//! a stopped server lets go of what it holds.
//!
//! ```text
//!   run(listeners, state, shutdown) ── SIGINT/SIGTERM ─> stop accepting, drain (bounded)
//!   release(state, store)          ─> drop the state (signing pools stop) ─> close the log
//!                                  ─> wait (bounded) until no worker is inside PKCS#11
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::http;
use crate::state::AppState;

/// Serves HTTP (and HTTPS) on `listeners` until `shutdown` completes, then stops accepting, lets
/// requests in flight finish for up to `drain_timeout`, and returns. The caller drops
/// the state afterwards, which stops the HSM signing pools. The accept loop, its
/// connection caps and the request deadlines (`[http]`) are `http/conn.rs`'s.
pub async fn run(
    listeners: Vec<http::conn::Listener>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> anyhow::Result<()> {
    let settings = *state.limits.settings();
    let early = http::EarlyRefusal::new(&state);
    let app = http::router(state);
    http::conn::serve(listeners, app, early, &settings, shutdown, drain_timeout).await;
    Ok(())
}

/// Registers for SIGINT (Ctrl-C) and SIGTERM (systemd stop) now, and returns a future
/// that completes on the first of them.
///
/// The handlers are in place when this returns, not when the future is first polled (as
/// with `tokio::signal::ctrl_c`): the address is announced before the accept loop first
/// polls the shutdown future, and a SIGTERM in between (a supervisor stopping a server
/// it just saw start) would end the process with the default action instead of a drain.
/// Call it before the listener is announced.
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    })
}

/// How long shutdown waits for the signing workers to leave the PKCS#11 module.
const HSM_RELEASE_WAIT: Duration = Duration::from_secs(5);

/// After [`run`] returned: drops the state (which stops the HSM signing pools and closes
/// their sessions), closes the issuance log, and waits at most `HSM_RELEASE_WAIT` (5 s) until
/// no signing worker is inside the PKCS#11 module.
pub async fn release(state: Arc<AppState>, store: hanko_store::Store) {
    let hsm_released = state.hsm.as_ref().map(hanko_hsm::Hsm::release_watch);
    match Arc::try_unwrap(state) {
        Ok(state) => drop(state),
        Err(still_shared) => {
            tracing::warn!("requests still hold the state after the drain; dropping anyway");
            drop(still_shared);
        }
    }
    // Every response that was sent had its record committed; closing flushes nothing
    // that a client relies on, it only ends the writer task cleanly.
    store.close().await;
    // Do not exit while signing workers still run inside the PKCS#11 module: process
    // exit tears down the module's globals under them.
    if let Some(watch) = hsm_released {
        let released = tokio::task::spawn_blocking(move || watch.wait(HSM_RELEASE_WAIT))
            .await
            .unwrap_or(false);
        if !released {
            tracing::warn!(
                waited = ?HSM_RELEASE_WAIT,
                "signing workers still hold the token (a call hangs in the HSM); exiting anyway"
            );
        }
    }
}
