//! Merkle anchoring's rows (issue #15): batches tile the log without gap or overlap, a
//! second close of an overlapping range fails cleanly, anchors move from pending to done,
//! evidence lookups find their block, and one batcher per database holds the lock. The
//! store does not compute trees, so roots here are arbitrary bytes of the right length.

use std::time::{Duration, SystemTime};

use hanko_store::{AnchorState, Error, NewBatch, NewRecord, RecordKind, StoreOptions};
use sqlx::Connection as _;

use super::{TestDb, fill, record};

fn batch(first: u64, last: u64, targets: &[&str]) -> NewBatch {
    let blocks = (last + 1 - first).div_ceil(hanko_store::anchoring::BLOCK_LEAVES) as usize;
    NewBatch {
        first_seq: first,
        last_seq: last,
        hash_alg: "sha256".into(),
        root: vec![first as u8; 32],
        block_roots: vec![vec![last as u8; 32]; blocks],
        closed_at: SystemTime::now(),
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
    }
}

fn is_conflict(r: Result<hanko_store::Batch, Error>) -> bool {
    matches!(r, Err(Error::BatchConflict(_)))
}

both!(batches_tile_the_log);
async fn batches_tile_the_log(db: TestDb) {
    let store = db.open(StoreOptions::with_node_id("node-a")).await;
    assert_eq!(
        store.open_range().await.unwrap(),
        None,
        "empty log: nothing open"
    );
    fill(&store, 10).await;
    let open = store.open_range().await.unwrap().unwrap();
    assert_eq!((open.first_seq, open.head_seq, open.len()), (1, 10, 10));
    assert!(open.has_issued);
    assert_eq!(open.first_issued_at, record(1, "alice").issued_at);

    // The leaves, in chunks, in seq order.
    let mut leaves = Vec::new();
    let mut chunks = store.object_hashes(1, 10);
    while let Some(c) = chunks.next_chunk(4).await.unwrap() {
        assert!(c.len() <= 4);
        leaves.extend(c);
    }
    let want: Vec<[u8; 32]> = (1..=10).map(|i| record(i, "alice").object_hash).collect();
    assert_eq!(leaves, want);

    // Only a range starting at seq 1 and ending at or before the head closes.
    assert!(is_conflict(
        store.close_batch(&batch(2, 6, &["self"])).await
    ));
    assert!(is_conflict(
        store.close_batch(&batch(1, 11, &["self"])).await
    ));
    let b1 = store
        .close_batch(&batch(1, 6, &["self", "tsa2"]))
        .await
        .unwrap();
    assert_eq!(
        (b1.id, b1.first_seq, b1.last_seq, b1.leaf_count),
        (1, 1, 6, 6)
    );
    assert_eq!(b1.closed_by, "node-a");
    // A second close of an overlapping range fails and writes nothing.
    assert!(is_conflict(
        store.close_batch(&batch(1, 6, &["self"])).await
    ));
    assert!(is_conflict(
        store.close_batch(&batch(3, 8, &["self"])).await
    ));
    assert_eq!(store.batches(None, 10).await.unwrap().len(), 1);
    let open = store.open_range().await.unwrap().unwrap();
    assert_eq!((open.first_seq, open.head_seq), (7, 10));
    let b2 = store.close_batch(&batch(7, 10, &["self"])).await.unwrap();
    assert_eq!(b2.id, 2);
    assert_eq!(store.open_range().await.unwrap(), None);

    assert_eq!(store.batch_containing(8).await.unwrap().unwrap(), b2);
    assert_eq!(store.batch_containing(1).await.unwrap().unwrap(), b1);
    assert_eq!(store.batch_containing(11).await.unwrap(), None);
    assert_eq!(store.batch(1).await.unwrap().unwrap(), b1);
    assert_eq!(store.batch(3).await.unwrap(), None);
    let page = store.batches(None, 10).await.unwrap();
    assert_eq!(page.iter().map(|b| b.id).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(store.batches(Some(2), 10).await.unwrap(), vec![b1.clone()]);
    assert_eq!(
        store.batches_ascending(0, 1).await.unwrap(),
        vec![b1.clone()]
    );

    // Invalid batches are refused before the database.
    fill_more(&store, 11, 12).await;
    let mut bad = batch(11, 12, &["self"]);
    bad.block_roots.clear();
    assert!(matches!(
        store.close_batch(&bad).await,
        Err(Error::InvalidArgument(_))
    ));
    let mut bad = batch(11, 12, &["self", "self"]);
    bad.block_roots = vec![vec![0; 32]];
    assert!(matches!(
        store.close_batch(&bad).await,
        Err(Error::InvalidArgument(_))
    ));
    store.close().await;
}

async fn fill_more(store: &hanko_store::Store, from: u64, to: u64) {
    for i in from..=to {
        store.append(record(i, "alice")).await.unwrap();
    }
}

both!(anchors_pending_then_done);
async fn anchors_pending_then_done(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    fill(&store, 5).await;
    let t0 = store.oldest_unanchored().await.unwrap().unwrap();
    assert_eq!(t0.0, 1, "open records are unanchored");
    store
        .close_batch(&batch(1, 3, &["self", "tsa2"]))
        .await
        .unwrap();
    store
        .close_batch(&batch(4, 5, &["self", "tsa2"]))
        .await
        .unwrap();
    let pending = store.pending_anchors("tsa2", 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|p| p.batch_id).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(pending[0].root, vec![1u8; 32]);
    assert_eq!(pending[0].hash_alg, "sha256");

    // A failure counts, keeps the message and moves the next attempt.
    let later = SystemTime::now() + Duration::from_secs(30);
    store
        .anchor_failed(1, "tsa2", "connection refused", later)
        .await
        .unwrap();
    store
        .anchor_failed(1, "tsa2", "timed out", later)
        .await
        .unwrap();
    let a = store.anchors(1).await.unwrap();
    assert_eq!(
        a.iter().map(|a| a.target.as_str()).collect::<Vec<_>>(),
        ["self", "tsa2"]
    );
    assert_eq!(a[1].state, AnchorState::Pending);
    assert_eq!(a[1].attempts, 2);
    assert_eq!(a[1].last_error.as_deref(), Some("timed out"));
    assert!(a[1].next_attempt_at_ns > a[0].next_attempt_at_ns);

    // Done: the token is kept, the target's queue moves on, the other target's does not.
    store
        .anchor_done(1, "self", b"token-1", SystemTime::now())
        .await
        .unwrap();
    let a = store.anchors(1).await.unwrap();
    assert_eq!(a[0].state, AnchorState::Done);
    assert_eq!(a[0].token.as_deref(), Some(&b"token-1"[..]));
    assert!(a[0].anchored_at_ns.is_some());
    assert_eq!(
        store.pending_anchors("self", 10).await.unwrap()[0].batch_id,
        2
    );
    assert_eq!(store.pending_anchors("tsa2", 10).await.unwrap().len(), 2);
    // Batch 1 has a done anchor, batch 2 none: the oldest unanchored record is seq 4.
    assert_eq!(store.oldest_unanchored().await.unwrap().unwrap().0, 4);
    // A done anchor never changes again, and unknown anchors are refused.
    assert!(matches!(
        store
            .anchor_done(1, "self", b"other", SystemTime::now())
            .await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        store.anchor_failed(9, "self", "x", later).await,
        Err(Error::InvalidArgument(_))
    ));
    store
        .anchor_done(2, "self", b"token-2", SystemTime::now())
        .await
        .unwrap();
    assert_eq!(store.oldest_unanchored().await.unwrap(), None);
    // An unbatched archive time-stamp waits for the next issued record: not counted.
    let mut stamp = record(6, "anchor");
    stamp.kind = RecordKind::ArchiveStamp;
    store.append(stamp).await.unwrap();
    assert_eq!(store.oldest_unanchored().await.unwrap(), None);
    assert!(!store.open_range().await.unwrap().unwrap().has_issued);
    store.append(record(7, "alice")).await.unwrap();
    assert_eq!(store.oldest_unanchored().await.unwrap().unwrap().0, 7);
    assert!(store.open_range().await.unwrap().unwrap().has_issued);
    store.close().await;
}

both!(the_open_range_is_read_in_one_snapshot);
/// The batcher's view of the open range is one snapshot: a record committed while it is
/// read is either wholly there (counted, issued, with its issue time) or not at all. Read
/// in parts, a record committed between them once showed as issued with no issue time,
/// which read as the epoch and closed its batch at once. Each round is a fresh range whose
/// first record arrives while the range is being read over and over.
async fn the_open_range_is_read_in_one_snapshot(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    for i in 1..=40u64 {
        let appender = {
            let store = store.clone();
            tokio::spawn(async move { store.append(record(i, "alice")).await })
        };
        loop {
            if let Some(open) = store.open_range().await.unwrap()
                && open.has_issued
            {
                assert_eq!(
                    open.first_issued_at,
                    record(i, "alice").issued_at,
                    "round {i}"
                );
                assert_eq!((open.first_seq, open.head_seq), (i, i), "round {i}");
                break;
            }
            tokio::task::yield_now().await;
        }
        appender.await.unwrap().unwrap();
        store.close_batch(&batch(i, i, &["self"])).await.unwrap();
    }
    store.close().await;
}

both!(schema_refuses_overlaps_behind_the_stores_back);
async fn schema_refuses_overlaps_behind_the_stores_back(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    fill(&store, 6).await;
    store.close_batch(&batch(1, 3, &["self"])).await.unwrap();
    store.close().await;
    let root = if db.is_pg() {
        "decode(repeat('00', 32), 'hex')"
    } else {
        "zeroblob(32)"
    };
    let insert = |id: i64, first: i64, last: i64, prev: &str| {
        format!(
            "INSERT INTO anchor_batches (id, first_seq, last_seq, prev_last_seq, leaf_count, \
             hash_alg, root, block_roots, closed_at_ns, closed_by) VALUES ({id}, {first}, \
             {last}, {prev}, {}, 'sha256', {root}, {root}, 0, 'x')",
            last - first + 1
        )
    };
    // Overlap, a gap, a second batch after the same one, a second first batch, past the log.
    for sql in [
        insert(2, 3, 5, "3"),
        insert(2, 5, 6, "3"),
        insert(2, 2, 4, "NULL"),
        insert(2, 1, 2, "NULL"),
        insert(2, 4, 9, "3"),
    ] {
        assert!(db.try_exec(&sql).await.is_err(), "accepted: {sql}");
    }
    assert!(db.try_exec(&insert(2, 4, 6, "3")).await.is_ok());
}

both!(evidence_lookups);
async fn evidence_lookups(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    // 2100 records: three blocks of 1024, 1024 and 52 leaves.
    let mut tasks = Vec::new();
    for chunk in 0..21u64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 1..=100 {
                s.append(record(chunk * 100 + i, "bob")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let b = store.close_batch(&batch(1, 2100, &["self"])).await.unwrap();
    assert_eq!(b.block_roots.len(), 3);
    let all: Vec<[u8; 32]> = {
        let mut v = Vec::new();
        let mut c = store.object_hashes(1, 2100);
        while let Some(x) = c.next_chunk(1000).await.unwrap() {
            v.extend(x);
        }
        v
    };
    assert_eq!(all.len(), 2100);
    assert_eq!(store.block_leaves(&b, 1).await.unwrap(), all[..1024]);
    assert_eq!(store.block_leaves(&b, 2048).await.unwrap(), all[1024..2048]);
    assert_eq!(store.block_leaves(&b, 2100).await.unwrap(), all[2048..]);
    assert!(store.block_leaves(&b, 2101).await.is_err());

    let rec = store
        .find_by_object_hash(&all[1500])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.seq, 1501);
    assert_eq!(rec.object_hash, all[1500]);
    assert!(store.find_by_object_hash(&[7; 32]).await.unwrap().is_none());
    let by_serial = store
        .get_by_serial(RecordKind::Timestamp, &rec.serial)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_serial.seq, 1501);
    // The same object logged twice (e.g. re-sealed): the first record answers.
    let mut again: NewRecord = record(9999, "bob");
    again.token = None;
    again.object_hash = all[0];
    store.append(again).await.unwrap();
    assert_eq!(
        store
            .find_by_object_hash(&all[0])
            .await
            .unwrap()
            .unwrap()
            .seq,
        1
    );
    store.close().await;
}

both!(one_batcher_per_database);
async fn one_batcher_per_database(db: TestDb) {
    let a = db.open(StoreOptions::with_node_id("node-a")).await;
    let b = db.open(StoreOptions::with_node_id("node-b")).await;
    let mut lock = a.batcher_lock().await.unwrap().expect("first batcher");
    assert!(lock.still_held().await);
    if !db.is_pg() {
        // SQLite: one node per file, the lock is this process's own.
        lock.release().await;
        return;
    }
    assert!(
        b.batcher_lock().await.unwrap().is_none(),
        "a second batcher refused"
    );
    lock.release().await;
    let mut lock_b = b
        .batcher_lock()
        .await
        .unwrap()
        .expect("taken over after release");
    assert!(a.batcher_lock().await.unwrap().is_none());
    // The holder's session dies (node killed, connection cut): the lock is lost, it says
    // so, and another node takes over.
    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_locks WHERE locktype = 'advisory' \
         AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    admin.close().await.unwrap();
    assert!(!lock_b.still_held().await, "a lost session is noticed");
    // (The lock is released as the session ends; allow the server a moment.)
    let mut lock_a = None;
    for _ in 0..100 {
        lock_a = a.batcher_lock().await.unwrap();
        if lock_a.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut lock_a = lock_a.expect("takeover");
    assert!(lock_a.still_held().await);
    lock_a.release().await;
    drop(lock_b);
    a.close().await;
    b.close().await;
}
