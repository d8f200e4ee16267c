//! Serial numbers from the store: ranges reserved atomically, handed out from memory.
//!
//! What it is for: RFC 3161 requires serials unique per TSA, also across the nodes of one
//! TSA and across restarts. Each node reserves a block of serials with ONE atomic
//! statement on a shared counter (`serial_counters`), persisted before any serial of the
//! block is used, and hands them out from memory until the block is exhausted.
//!
//! ```text
//! INSERT INTO serial_counters (name, next) VALUES ($name, 1 + $n)
//!   ON CONFLICT (name) DO UPDATE SET next = serial_counters.next + $n
//!   RETURNING next - $n                    -- first serial of the block [first, first+n)
//! ```
//!
//! Why it is unique: the counter only grows, every reservation is committed before use, and
//! the database serialises the statement on the counter row, so two blocks never overlap —
//! not between nodes on one PostgreSQL, not after a crash (the unused rest of a block is
//! skipped, never reused; a restart reserves a fresh block). The log's unique constraint on
//! `(kind, serial)` backs this up: a duplicate would fail its batch rather than be issued.
//! Each reservation is also recorded in `serial_ranges` (counter, first, last, node, time)
//! for auditors.
//!
//! Size: serials are integers `1..=2^63-1`, so at most 63 bits, well inside RFC 3161's
//! 160-bit limit, encoded as a positive DER INTEGER (see [`crate::serial_to_bytes`]). No
//! random component is needed, and no node id enters the serial, so the scheme stays
//! provably unique by construction: use one counter name per record kind of a log (e.g.
//! `"timestamp"`) — serials are then unique per kind in the whole log, which is at least
//! "unique per TSA" even when several TSA units share the log.
//!
//! What it does not do: make serials gapless or ordered across nodes. Gaps (crashes,
//! refused requests) and interleaving between nodes are expected; time-stamp order comes
//! from genTime and the log's sequence numbers, not from serials.

use std::fmt;
use std::time::SystemTime;

use crate::record::{serial_to_bytes, system_time_to_ns};
use crate::{Error, Store};

/// Largest block one reservation may take.
pub const MAX_BLOCK: u64 = 1_000_000_000;

/// Default block size of a [`SerialAllocator`].
pub const DEFAULT_BLOCK: u64 = 1000;

/// A reserved range of serials: `first ..= last()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialRange {
    /// First serial of the range.
    pub first: u64,
    /// Number of serials in the range (at least 1).
    pub count: u64,
}

impl SerialRange {
    /// Last serial of the range.
    pub fn last(&self) -> u64 {
        self.first + (self.count - 1)
    }
}

impl Store {
    /// Reserves `n` serials (1..=[`MAX_BLOCK`]) from counter `counter` with one atomic
    /// statement, committed before this returns. Most callers want a [`SerialAllocator`].
    pub async fn reserve_serials(&self, counter: &str, n: u64) -> Result<SerialRange, Error> {
        if n == 0 || n > MAX_BLOCK {
            return Err(Error::InvalidArgument(format!(
                "serial block size must be 1..={MAX_BLOCK}, got {n}"
            )));
        }
        if counter.is_empty() || counter.len() > 128 {
            return Err(Error::InvalidArgument(
                "serial counter name must be 1..=128 bytes".into(),
            ));
        }
        let now = system_time_to_ns(SystemTime::now()).unwrap_or(0);
        let first = self
            .backend()
            .reserve_serials(counter, n, self.node_id(), now)
            .await?;
        Ok(SerialRange { first, count: n })
    }

    /// A serial allocator on counter `counter` reserving `block` serials at a time
    /// (clamped to 1..=[`MAX_BLOCK`]; [`DEFAULT_BLOCK`] is a good default).
    pub fn serial_allocator(&self, counter: &str, block: u64) -> SerialAllocator {
        SerialAllocator {
            store: self.clone(),
            counter: counter.to_owned(),
            block: block.clamp(1, MAX_BLOCK),
            state: tokio::sync::Mutex::new(None),
        }
    }
}

/// Hands out serials from reserved blocks (see the module docs). Share it behind an `Arc`;
/// concurrent callers are served in turn, and only the caller that finds the block empty
/// waits for the next reservation.
pub struct SerialAllocator {
    store: Store,
    counter: String,
    block: u64,
    /// `(next, end)`: the next serial to hand out and one past the block's last.
    state: tokio::sync::Mutex<Option<(u64, u64)>>,
}

impl fmt::Debug for SerialAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialAllocator")
            .field("counter", &self.counter)
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

impl SerialAllocator {
    /// The next serial, reserving a new block first if the current one is used up.
    pub async fn next(&self) -> Result<u64, Error> {
        let mut state = self.state.lock().await;
        if let Some((next, end)) = *state
            && next < end
        {
            *state = Some((next + 1, end));
            return Ok(next);
        }
        let range = self
            .store
            .reserve_serials(&self.counter, self.block)
            .await?;
        tracing::debug!(
            counter = %self.counter,
            first = range.first,
            last = range.last(),
            "reserved serial block"
        );
        *state = Some((range.first + 1, range.first + range.count));
        Ok(range.first)
    }

    /// The next serial in the stored byte form (big-endian, no leading zeros).
    pub async fn next_bytes(&self) -> Result<Vec<u8>, Error> {
        Ok(serial_to_bytes(self.next().await?))
    }

    /// The counter this allocator draws from.
    pub fn counter(&self) -> &str {
        &self.counter
    }
}
