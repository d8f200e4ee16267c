//! Lanes: which class of traffic a signature belongs to, so that bulk work (batch seals,
//! archive submissions, re-stamping) cannot crowd out interactive work (time-stamps,
//! single seals) in a signing pool.
//!
//! ```text
//!   HTTP front: the client's lane ──> in_lane(lane, handler) ──> ... ──> Signer::sign
//!                                                                          │ current()
//!   pool:  interactive queue ─┐                                             v
//!          bulk queue ────────┴─> a free worker takes bulk only while fewer than
//!                                 `bulk_share × workers` bulk jobs are being signed,
//!                                 or when no interactive job waits
//! ```
//!
//! # Why a task-local and not a parameter
//! The lane is decided by the HTTP front (who the client is) and acted on by the pool
//! (which job a worker takes next); the protocol crates in between (RFC 3161, CMS, PAdES)
//! sign through [`hanko_pki::Signer`] and have no use for it. Threading a lane argument
//! through each of them would change every signing API for a concern none of them has,
//! so the lane travels with the request's task, as a tracing span does: [`in_lane`] sets
//! it around the handler's future and the pool reads [`current`] when it queues a job.
//! Work outside such a scope (start-up checks, the anchoring batcher's own time-stamps)
//! is interactive. A future moved to another task (`tokio::spawn`) leaves the scope: wrap
//! it again there if its signatures are bulk.

use std::future::Future;

/// The class of traffic a signature belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Time-stamps and single seals: someone is waiting for each answer.
    #[default]
    Interactive,
    /// Batch seals, archive submissions, re-stamping: throughput matters, not each latency.
    Bulk,
}

impl Lane {
    /// Both lanes, in the order of their queues.
    pub const ALL: [Lane; 2] = [Lane::Interactive, Lane::Bulk];

    /// The name used in configuration and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Interactive => "interactive",
            Lane::Bulk => "bulk",
        }
    }

    /// The lane named `name` in configuration (`interactive` or `bulk`).
    pub fn from_name(name: &str) -> Option<Lane> {
        Lane::ALL.into_iter().find(|l| l.as_str() == name)
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Lane::Interactive => 0,
            Lane::Bulk => 1,
        }
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

tokio::task_local! {
    static LANE: Lane;
}

/// Runs `fut` with every signature it requests queued in `lane`.
pub async fn in_lane<F: Future>(lane: Lane, fut: F) -> F::Output {
    LANE.scope(lane, fut).await
}

/// The lane of the signature being requested now: the innermost [`in_lane`] around the
/// caller, [`Lane::Interactive`] outside any.
pub fn current() -> Lane {
    LANE.try_with(|l| *l).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_lane_is_the_innermost_scope_and_interactive_outside() {
        assert_eq!(current(), Lane::Interactive);
        let seen = in_lane(Lane::Bulk, async {
            let outer = current();
            let inner = in_lane(Lane::Interactive, async { current() }).await;
            (outer, inner, current())
        })
        .await;
        assert_eq!(seen, (Lane::Bulk, Lane::Interactive, Lane::Bulk));
        assert_eq!(current(), Lane::Interactive);
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for lane in Lane::ALL {
            assert_eq!(Lane::from_name(lane.as_str()), Some(lane));
        }
        assert_eq!(Lane::from_name("Bulk"), None);
        assert_eq!(Lane::from_name(""), None);
    }
}
