//! The open loop of `hanko-bench overload`: requests fired on schedule over a fixed set
//! of keep-alive connections, whatever the answers, each answer tallied; and the
//! server's resident set size sampled while it runs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Req;
use crate::http::{Conn, connect_all};
use crate::stats::Samples;
use crate::tsa::load::tsa_status;

/// How long a connection of the open loop may sit unused before it is replaced (half the
/// server's default `http.header_timeout_ms`).
const MAX_IDLE: Duration = Duration::from_secs(5);

/// What one request of the open loop got.
enum Outcome {
    /// HTTP 200 with a granted token: latency, request index, body.
    Granted(Duration, usize, Vec<u8>),
    /// HTTP 503 (admission refused it): latency.
    Refused(Duration),
    /// Any other status or a rejected TimeStampResp.
    Other(u16),
    /// Connection error, with its message.
    Io(String),
    /// No answer within `--hang-ms`.
    Hung,
}

/// The open loop's tallies.
#[derive(Default)]
pub(super) struct OpenLoop {
    pub(super) sent: u64,
    pub(super) not_sent: u64,
    pub(super) granted: Samples,
    pub(super) granted_bodies: Vec<(usize, Vec<u8>)>,
    pub(super) refused: Samples,
    /// Other answers, by HTTP status (0: a 200 whose TimeStampResp granted nothing).
    pub(super) other: std::collections::BTreeMap<u16, u64>,
    pub(super) io: u64,
    /// The first connection error's message (the column counts them; this says what).
    pub(super) first_io: Option<String>,
    pub(super) hung: u64,
    pub(super) elapsed: f64,
}

impl OpenLoop {
    /// Adds the tallies of a later open loop (a slice of the same load).
    pub(super) fn absorb(&mut self, later: OpenLoop) {
        self.sent += later.sent;
        self.not_sent += later.not_sent;
        self.granted.merge(later.granted);
        self.granted_bodies.extend(later.granted_bodies);
        self.refused.merge(later.refused);
        for (status, n) in later.other {
            *self.other.entry(status).or_default() += n;
        }
        self.io += later.io;
        if self.first_io.is_none() {
            self.first_io = later.first_io;
        }
        self.hung += later.hung;
        self.elapsed += later.elapsed;
    }
}

/// Fires `reqs` round-robin, from the one after the first `skip`, at `rate` per second
/// for `dur` over `conns` connections.
pub(super) async fn open_loop(
    addr: &str,
    reqs: Arc<Vec<Req>>,
    skip: u64,
    rate: f64,
    dur: Duration,
    conns: usize,
    hang: Duration,
) -> anyhow::Result<OpenLoop> {
    // Last in, first out (the connections in use stay few and warm), each with the time
    // it was last used: one idle for longer than MAX_IDLE is replaced before it is used,
    // as a client's pool expires its idle connections, because the server closes a
    // connection that has sent nothing for `http.header_timeout_ms` (10 s) after its
    // accept, and the bottom of the stack can wait that long.
    let opened = Instant::now();
    let idle = Arc::new(Mutex::new(
        connect_all(&crate::http::Target::plain(addr), conns)
            .await?
            .into_iter()
            .map(|c| (c, opened))
            .collect::<Vec<_>>(),
    ));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    let mut out = OpenLoop::default();
    let start = Instant::now();
    let mut fired: u64 = 0;
    loop {
        let now = Instant::now();
        if now >= start + dur {
            break;
        }
        let due = (now.duration_since(start).as_secs_f64() * rate) as u64;
        while fired < due {
            let i = (skip.wrapping_add(fired) % reqs.len() as u64) as usize;
            fired += 1;
            let Some((mut conn, since)) =
                idle.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop()
            else {
                out.not_sent += 1;
                continue;
            };
            out.sent += 1;
            let (reqs, idle, outcomes, addr) = (
                reqs.clone(),
                idle.clone(),
                outcomes.clone(),
                addr.to_owned(),
            );
            tasks.spawn(async move {
                if since.elapsed() > MAX_IDLE {
                    match Conn::connect(&addr).await {
                        Ok(fresh) => conn = fresh,
                        Err(e) => {
                            if let Ok(mut o) = outcomes.lock() {
                                o.push(Outcome::Io(format!("{e:#}")));
                            }
                            return;
                        }
                    }
                }
                let t0 = Instant::now();
                let result = tokio::time::timeout(hang, conn.exchange(&reqs[i].http)).await;
                let (outcome, reusable) = match result {
                    Err(_) => (Outcome::Hung, false),
                    Ok(Err(e)) => (Outcome::Io(format!("{e:#}")), false),
                    Ok(Ok((status, body, close))) => {
                        let o = match (status, tsa_status(&body)) {
                            (200, Some((0 | 1, true))) => Outcome::Granted(t0.elapsed(), i, body),
                            (200, _) => Outcome::Other(0),
                            (503, _) => Outcome::Refused(t0.elapsed()),
                            (s, _) => Outcome::Other(s),
                        };
                        (o, !close)
                    }
                };
                if let Ok(mut o) = outcomes.lock() {
                    o.push(outcome);
                }
                // A closed or failed connection is replaced, so the set keeps its size.
                let conn = if reusable {
                    Some(conn)
                } else {
                    Conn::connect(&addr).await.ok()
                };
                if let (Some(c), Ok(mut idle)) = (conn, idle.lock()) {
                    idle.push((c, Instant::now()));
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while tasks.join_next().await.is_some() {}
    out.elapsed = start.elapsed().as_secs_f64();
    let outcomes = std::mem::take(&mut *outcomes.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    for o in outcomes {
        match o {
            Outcome::Granted(d, i, body) => {
                out.granted.push(d);
                out.granted_bodies.push((i, body));
            }
            Outcome::Refused(d) => out.refused.push(d),
            Outcome::Other(status) => *out.other.entry(status).or_default() += 1,
            Outcome::Io(e) => {
                out.io += 1;
                out.first_io.get_or_insert(e);
            }
            Outcome::Hung => out.hung += 1,
        }
    }
    Ok(out)
}

/// The server's resident set size in KiB (`VmRSS`), if it can be read.
pub(super) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// RSS samples every 200 ms until `stop` is set: (max KiB, last KiB).
pub(super) async fn sample_rss(pid: u32, stop: Arc<std::sync::atomic::AtomicBool>) -> (u64, u64) {
    let (mut max, mut last) = (0, 0);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(r) = rss_kib(pid) {
            max = max.max(r);
            last = r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (max, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_add_up() {
        let slice = |granted: u64, status: u16, io: Option<&str>| {
            let mut o = OpenLoop {
                sent: 10,
                not_sent: 1,
                io: u64::from(io.is_some()),
                first_io: io.map(str::to_owned),
                hung: 1,
                elapsed: 2.0,
                ..OpenLoop::default()
            };
            for i in 0..granted {
                o.granted.push(Duration::from_millis(i + 1));
                o.granted_bodies.push((i as usize, vec![]));
            }
            o.refused.push(Duration::from_millis(1));
            o.other.insert(status, 2);
            o
        };
        let mut all = slice(3, 0, None);
        all.absorb(slice(2, 0, Some("first")));
        all.absorb(slice(1, 500, Some("second")));
        assert_eq!((all.sent, all.not_sent, all.hung, all.io), (30, 3, 3, 2));
        assert_eq!((all.granted.count(), all.granted_bodies.len()), (6, 6));
        assert_eq!(all.refused.count(), 3);
        assert_eq!(all.other.get(&0), Some(&4));
        assert_eq!(all.other.get(&500), Some(&2));
        assert_eq!(all.first_io.as_deref(), Some("first"));
        assert!((all.elapsed - 6.0).abs() < 1e-9);
    }
}
