//! Archive objects (issue #16): the record kind `archive-object` (schema v4), the lookup
//! of already submitted hashes, and migration 4 on a log that already holds records,
//! batches and anchors (SQLite rebuilds `log_records`; PostgreSQL swaps the CHECK).

use std::time::SystemTime;

use hanko_store::{NewBatch, NewRecord, RecordKind, StoreOptions, serial_to_bytes};

use super::{TestDb, fill};

fn archive_object(serial: u64, hash: [u8; 32]) -> NewRecord {
    NewRecord {
        kind: RecordKind::ArchiveObject,
        serial: serial_to_bytes(serial),
        object_hash: hash,
        request_hash: hash.to_vec(),
        policy: "sha256".into(),
        client: "archive".into(),
        issued_at: SystemTime::now(),
        token: None,
    }
}

pub(super) fn batch(first: u64, last: u64) -> NewBatch {
    NewBatch {
        first_seq: first,
        last_seq: last,
        hash_alg: "sha256".into(),
        root: vec![7; 32],
        block_roots: vec![vec![7; 32]],
        closed_at: SystemTime::now(),
        targets: vec!["self".into()],
    }
}

/// Takes a v4 log back to schema v3 behind the store's back: the kind list without
/// `archive-object`, and migration 4 unrecorded, so the next open runs it again.
async fn downgrade_to_v3(db: &TestDb) {
    if db.is_pg() {
        db.exec(
            "ALTER TABLE log_records DROP CONSTRAINT log_records_kind_check; \
             ALTER TABLE log_records ADD CONSTRAINT log_records_kind_check \
             CHECK (kind IN ('timestamp', 'seal', 'archive-stamp')); \
             DELETE FROM _sqlx_migrations WHERE version = 4;",
        )
        .await;
    } else {
        // The same rebuild with the old kind list is the way back.
        let rebuild = include_str!("../../migrations/sqlite/0004_archive_objects.sql")
            .replace(", 'archive-object'", "");
        assert!(!rebuild.contains("'archive-object'"));
        db.exec(&format!(
            "BEGIN; {rebuild}; DELETE FROM _sqlx_migrations WHERE version = 4; COMMIT;"
        ))
        .await;
    }
}

both!(migration_4_keeps_records_batches_and_anchors);
async fn migration_4_keeps_records_batches_and_anchors(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    fill(&store, 5).await;
    let b1 = store.close_batch(&batch(1, 3)).await.unwrap();
    store
        .anchor_done(b1.id, "self", b"token", SystemTime::now())
        .await
        .unwrap();
    let head = store.head().await.unwrap();
    store.close().await;

    downgrade_to_v3(&db).await;
    // At v3 the kind is refused by the database itself.
    let refused = db
        .try_exec(
            "INSERT INTO log_records (seq, kind, serial, object_hash, request_hash, policy, \
             client, issued_at_ns, node_id, chain_hash) SELECT 99, 'archive-object', serial, \
             object_hash, request_hash, policy, client, issued_at_ns, node_id, chain_hash \
             FROM log_records WHERE seq = 1",
        )
        .await;
    assert!(refused.is_err(), "v3 must refuse the new kind");

    // Opening migrates (4 runs on the populated log) ...
    let store = db.open(StoreOptions::default()).await;
    assert_eq!(store.head().await.unwrap(), head);
    let report = store.verify_chain().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.rows_checked, 5);
    let b = store.batch(1).await.unwrap().unwrap();
    assert_eq!(
        (b.first_seq, b.last_seq, b.root.clone()),
        (1, 3, vec![7; 32])
    );
    let anchors = store.anchors(1).await.unwrap();
    assert_eq!(anchors.len(), 1);
    assert_eq!(anchors[0].token.as_deref(), Some(&b"token"[..]));
    if !db.is_pg() {
        // Every index of 0001..0003 is back, and every foreign key holds.
        let indexes = db
            .count(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN \
                 ('log_records_issued_at', 'log_records_object_hash', \
                 'log_records_seq_object_hash', 'anchors_pending')",
            )
            .await;
        assert_eq!(indexes, 4);
        assert_eq!(
            db.count("SELECT count(*) FROM pragma_foreign_key_check")
                .await,
            0
        );
        assert_eq!(
            db.count("SELECT count(*) FROM sqlite_temp_master").await,
            0,
            "the migration's temporary tables are gone"
        );
    }

    // ... after which archive objects are logged, found by hash, and batched.
    let hashes: Vec<[u8; 32]> = (1..=3u8).map(|i| [0xa0 + i; 32]).collect();
    for (i, h) in hashes.iter().enumerate() {
        store
            .append(archive_object(i as u64 + 1, *h))
            .await
            .unwrap();
    }
    let found = store
        .archive_objects(&[hashes[0], hashes[2], [0xee; 32]])
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[&hashes[0]], (serial_to_bytes(1), 6));
    assert_eq!(found[&hashes[2]], (serial_to_bytes(3), 8));
    // A timestamp record's object hash is no archive object.
    let ts = super::record(1, "alice").object_hash;
    assert!(store.archive_objects(&[ts]).await.unwrap().is_empty());
    let rec = store
        .get_by_serial(RecordKind::ArchiveObject, &serial_to_bytes(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rec.seq, rec.object_hash, rec.token), (7, hashes[1], None));
    let open = store.open_range().await.unwrap().unwrap();
    assert!(open.has_issued, "archive objects close a batch");
    store.close_batch(&batch(4, 8)).await.unwrap();
    assert!(store.verify_chain().await.unwrap().is_ok());
    store.close().await;
}

both!(archive_objects_lookup_in_chunks);
async fn archive_objects_lookup_in_chunks(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    let n = hanko_store::anchoring::ARCHIVE_LOOKUP_CHUNK as u64 + 7;
    let hash = |i: u64| {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&i.to_be_bytes());
        h[31] = 1;
        h
    };
    let appends: Vec<_> = (1..=n)
        .map(|i| store.append(archive_object(i, hash(i))))
        .collect();
    for a in appends {
        a.await.unwrap();
    }
    let all: Vec<[u8; 32]> = (1..=n).map(hash).collect();
    let found = store.archive_objects(&all).await.unwrap();
    assert_eq!(found.len() as u64, n);
    assert_eq!(found[&hash(n)].0, serial_to_bytes(n));
    store.close().await;
}
