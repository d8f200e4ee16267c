//! Serving and stopping: the accept loop with graceful shutdown (mini-redis style: the
//! shutdown signal is an argument), the signals that trigger it, and the order in which
//! a stopped server lets go of what it holds.
//!
//! ```text
//!   run(listener, state, shutdown) ── SIGINT/SIGTERM ─> stop accepting, drain (bounded)
//!   release(state, store)          ─> drop the state (signing pools stop) ─> close the log
//!                                  ─> wait (bounded) until no worker is inside PKCS#11
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::http;
use crate::state::AppState;

/// Serves HTTP on `listener` until `shutdown` completes, then stops accepting, lets
/// requests in flight finish for up to `drain_timeout`, and returns. The caller drops
/// the state afterwards, which stops the HSM signing pools. The accept loop, its
/// connection caps and the request deadlines (`[http]`) are `http/conn.rs`'s.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> anyhow::Result<()> {
    let settings = *state.limits.settings();
    let app = http::router(state);
    http::conn::serve(listener, app, &settings, shutdown, drain_timeout).await;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (systemd stop).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
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
