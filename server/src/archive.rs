//! Archive objects (issue #16, item 1): an archive system submits the hashes of objects
//! it keeps; each becomes an issuance-log record of kind `archive-object`, which the
//! batcher puts into the next anchored batch like any issued record, so that the
//! object's RFC 4998 evidence record is then served by `/api/v1/evidence/...`.
//!
//! ```text
//!   checked hashes (http/archive_api.rs: all or nothing, before this runs)
//!     ─> one submission at a time on this node (a lock: lookup and append of a hash
//!        cannot interleave with another submission's)
//!     ─> Store::archive_objects: hashes already logged as archive-object keep their id
//!     ─> each new, distinct hash: a serial from the counter "archive-object" (its id),
//!        Store::append (the normal path: hash chain, group commit), many in flight
//!     ─> per hash, in request order: id, new or existing, and where its batch stands
//! ```
//!
//! A record: kind `archive-object`, serial = the id, object_hash = the submitted SHA-256,
//! request_hash = the same, policy = `sha256` (the hash's algorithm), client = the
//! client's name, issued_at = when it was submitted, no token.
//!
//! Idempotency: a hash already logged as an archive object is answered with its existing
//! id and nothing is written; a hash repeated within one request is logged once. So a
//! submission that failed half-way (the log refused an append: 503) is simply sent
//! again. Across several nodes on one PostgreSQL two submissions of the same hash at the
//! same instant may both log it (the lock is per node); both records are anchored and
//! the evidence route serves the first.
//!
//! What it does not do: parse requests (http/archive_api.rs), hold the objects (only
//! their hashes ever reach Hanko), or renew evidence (later work of issue #16).

use std::time::{Duration, SystemTime};

use hanko_store::{NewRecord, RecordKind, SerialAllocator, Store};

use crate::config::{AnchorSettings, ArchiveSettings};

/// The serial counter of archive objects (their ids): one counter per record kind.
pub const SERIAL_COUNTER: &str = "archive-object";

/// The hash algorithm of every archive object: the trees' (`anchor::TREE_ALG_NAME`).
pub const ALG: &str = crate::anchor::TREE_ALG_NAME;

/// Appends in flight at once for one submission (the group commit batches them).
const IN_FLIGHT: usize = 512;

/// The archive service of a running server: present only when anchoring is on.
#[derive(Debug)]
pub struct Archive {
    store: Store,
    serials: SerialAllocator,
    settings: ArchiveSettings,
    anchor: AnchorSettings,
    /// One submission at a time on this node (see the module docs).
    lock: tokio::sync::Mutex<()>,
}

/// Where one submitted hash stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The submitted SHA-256.
    pub hash: [u8; 32],
    /// Its id: the record's serial (big-endian, no leading zeros).
    pub id: Vec<u8>,
    /// Logged by this submission (else it was already logged).
    pub new: bool,
    /// When its batch is expected to close, while it is in the open range; `None` once
    /// it is in a closed batch (its evidence is then served, or its anchor pending).
    pub expected_by: Option<SystemTime>,
}

impl Archive {
    /// The service over `store`, ids from the counter [`SERIAL_COUNTER`] in blocks of
    /// `serial_block`.
    pub fn new(
        store: Store,
        settings: ArchiveSettings,
        anchor: AnchorSettings,
        serial_block: u64,
    ) -> Archive {
        let serials = store.serial_allocator(SERIAL_COUNTER, serial_block);
        Archive {
            store,
            serials,
            settings,
            anchor,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// `[archive]`.
    pub fn settings(&self) -> &ArchiveSettings {
        &self.settings
    }

    /// Logs every hash of `hashes` not yet logged as an archive object, for `client`;
    /// one answer per hash, in order. An error means some hashes may be logged and others
    /// not: sending the same hashes again is safe (see the module docs).
    pub async fn submit(
        &self,
        client: &str,
        hashes: &[[u8; 32]],
    ) -> Result<Vec<Submitted>, hanko_store::Error> {
        let _one_at_a_time = self.lock.lock().await;
        let mut known = self.store.archive_objects(hashes).await?;
        let mut seen = std::collections::HashSet::with_capacity(hashes.len());
        let fresh: Vec<[u8; 32]> = hashes
            .iter()
            .filter(|h| !known.contains_key(*h) && seen.insert(**h))
            .copied()
            .collect();
        let mut new_ids = std::collections::HashMap::with_capacity(fresh.len());
        for chunk in fresh.chunks(IN_FLIGHT) {
            let now = SystemTime::now();
            let mut records = Vec::with_capacity(chunk.len());
            for h in chunk {
                let serial = self.serials.next_bytes().await?;
                records.push(NewRecord {
                    kind: RecordKind::ArchiveObject,
                    serial,
                    object_hash: *h,
                    request_hash: h.to_vec(),
                    policy: ALG.to_owned(),
                    client: client.to_owned(),
                    issued_at: now,
                    token: None,
                });
            }
            let ids: Vec<(Vec<u8>, [u8; 32])> = records
                .iter()
                .map(|r| (r.serial.clone(), r.object_hash))
                .collect();
            let receipts =
                futures_util::future::join_all(records.into_iter().map(|r| self.store.append(r)))
                    .await;
            let mut failed = None;
            for ((id, h), receipt) in ids.into_iter().zip(receipts) {
                match receipt {
                    Ok(receipt) => {
                        metrics::counter!("hanko_archive_objects_total").increment(1);
                        new_ids.insert(h, (id, receipt.seq));
                    }
                    Err(e) => failed = failed.or(Some(e)),
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        for (h, v) in &new_ids {
            known.insert(*h, v.clone());
        }
        let open = self.store.open_range().await?;
        let expected_by = open.map(|o| {
            (o.first_issued_at + self.anchor.interval)
                .max(SystemTime::now() + Duration::from_secs(1))
        });
        let mut answers = Vec::with_capacity(hashes.len());
        for h in hashes {
            let Some((id, seq)) = known.get(h) else {
                // Every hash is either known or was just appended.
                return Err(hanko_store::Error::InvalidArgument(
                    "an archive object vanished between append and answer".into(),
                ));
            };
            let is_open = open.is_some_and(|o| *seq >= o.first_seq);
            answers.push(Submitted {
                hash: *h,
                id: id.clone(),
                new: new_ids.contains_key(h),
                expected_by: if is_open { expected_by } else { None },
            });
        }
        Ok(answers)
    }
}
