//! The listeners of `hanko serve`: the plain HTTP and HTTPS addresses bound, and a
//! warning when the open-file limit is below what `http.max_connections` needs.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http;

/// Binds the listen address (and the HTTPS one, with its certificate loaded and its
/// reloads started) and says what is served there: "listening on ADDR" for plain HTTP,
/// "serving TLS on ADDR" for HTTPS.
pub(super) async fn bind(
    cfg: &Config,
    tls_key: Option<Arc<http::tls_hsm::HsmTlsKey>>,
) -> anyhow::Result<Vec<http::conn::Listener>> {
    let mut listeners = vec![http::conn::Listener {
        tcp: bind_plain(cfg).await?,
        tls: None,
    }];
    if let Some(settings) = &cfg.tls {
        let tls = http::tls::TlsServer::load(settings, tls_key).context("[tls]")?;
        tls.spawn_reloader()?;
        let tcp = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen (TLS) on {}", settings.listen))?;
        let addr = tcp.local_addr().context("local address")?;
        tracing::info!(%addr, client_auth = ?settings.client_auth,
            handshake_timeout = ?settings.handshake_timeout, "serving TLS on {addr}");
        listeners.push(http::conn::Listener {
            tcp,
            tls: Some(tls),
        });
    }
    Ok(listeners)
}

/// Binds the plain HTTP address.
async fn bind_plain(cfg: &Config) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr: SocketAddr = listener.local_addr().context("local address")?;
    tracing::info!(
        max_in_flight = cfg.http.max_in_flight,
        rate_limit_per_sec = cfg.http.rate_limit.map(|r| r.per_sec.get()),
        rate_limit_burst = cfg.http.rate_limit.map(|r| r.burst.get()),
        "admission control of the signing routes"
    );
    tracing::info!(
        max_connections = cfg.http.max_connections,
        max_connections_per_source = cfg.http.max_connections_per_source,
        header_timeout = ?cfg.http.header_timeout,
        body_timeout = ?cfg.http.body_timeout,
        keepalive_timeout = ?cfg.http.keepalive_timeout,
        "connection limits"
    );
    warn_if_few_open_files(cfg.http.max_connections);
    tracing::info!(%addr, dev = cfg.dev, "listening on {addr}");
    Ok(listener)
}

/// Descriptors the server needs besides its connections: the token's sessions, the
/// issuance log, the listener, chrony's socket, logs.
const FILES_BESIDE_CONNECTIONS: u64 = 64;

/// Warns when the open-file limit cannot hold `http.max_connections` connections: past
/// it, `accept` fails with EMFILE and new clients wait in the kernel's queue instead of
/// being served or refused with a reason.
fn warn_if_few_open_files(max_connections: usize) {
    let Some(soft) = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| open_files_soft_limit(&t))
    else {
        return; // not Linux, or no /proc: nothing to judge by
    };
    let needed = max_connections as u64 + FILES_BESIDE_CONNECTIONS;
    if soft < needed {
        tracing::warn!(
            open_files_limit = soft,
            needed,
            max_connections,
            "the open-file limit is below http.max_connections + {FILES_BESIDE_CONNECTIONS}: \
             raise it (systemd LimitNOFILE=, or `ulimit -n {needed}`) or lower \
             http.max_connections"
        );
    }
}

/// The soft limit of "Max open files" in `/proc/self/limits`; `None` when unlimited or
/// absent.
fn open_files_soft_limit(limits: &str) -> Option<u64> {
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::open_files_soft_limit;

    #[test]
    fn the_soft_open_file_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(open_files_soft_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(open_files_soft_limit(unlimited), None);
        assert_eq!(
            open_files_soft_limit("Max processes 10 10 processes\n"),
            None
        );
    }
}
