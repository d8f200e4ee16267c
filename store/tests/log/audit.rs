//! Audit events and key suspensions (issue #18, schema v6): audit records in the one
//! chain (their own serial counter, their body kept and bound by `object_hash`, shown
//! decoded by export), the suspension and its audit record in one transaction, and
//! migration 6 on a log that already holds records, batches and anchors.

use std::time::SystemTime;

use hanko_store::{
    AuditEvent, AuditEventType, ExportRange, KeyStateChange, RecordKind, StoreOptions,
};

use super::{TestDb, fill};

fn exported(lines: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(lines)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

both!(audit_events_are_chained_with_everything_else);
async fn audit_events_are_chained_with_everything_else(db: TestDb) {
    // Tokens not kept: an audit record's body is kept anyway.
    let mut opts = StoreOptions::with_node_id("node-a");
    opts.keep_tokens = false;
    let store = db.open(opts).await;
    fill(&store, 2).await;
    let started = AuditEvent::new(AuditEventType::ServiceStarted, [("version", "1.0")]);
    let r = store
        .append_audit(&started, "system", SystemTime::now())
        .await
        .unwrap();
    assert_eq!(r.seq, 3);
    fill_more(&store).await;

    // Suspend: the row and its record in one transaction; again: unchanged, nothing logged.
    let s = store
        .suspend_key("tsa-rsa", "compromise suspected", "cli:alice")
        .await
        .unwrap();
    let KeyStateChange::Changed(suspended) = s else {
        panic!("{s:?}");
    };
    let list = store.key_suspensions().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            list[0].label.as_str(),
            list[0].reason.as_str(),
            list[0].suspended_by.as_str(),
            list[0].node_id.as_str(),
            list[0].audit_seq
        ),
        (
            "tsa-rsa",
            "compromise suspected",
            "cli:alice",
            "node-a",
            suspended.seq
        )
    );
    match store.suspend_key("tsa-rsa", "again", "client:ops").await {
        Ok(KeyStateChange::AlreadySuspended(k)) => assert_eq!(k.reason, "compromise suspected"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.head().await.unwrap().seq, suspended.seq);
    // Resume; again: not suspended.
    let KeyStateChange::Changed(resumed) = store
        .resume_key("tsa-rsa", "cleared", "client:ops")
        .await
        .unwrap()
    else {
        panic!("not resumed");
    };
    assert_eq!(resumed.seq, suspended.seq + 1);
    assert!(store.key_suspensions().await.unwrap().is_empty());
    assert_eq!(
        store.resume_key("tsa-rsa", "", "cli:alice").await.unwrap(),
        KeyStateChange::NotSuspended
    );
    assert!(store.suspend_key("", "x", "cli:alice").await.is_err());

    // The chain verifies across every kind; the export shows each event decoded.
    let report = store.verify_chain().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.rows_checked, resumed.seq);
    let mut out = Vec::new();
    store
        .export(ExportRange::All, false, &mut out)
        .await
        .unwrap();
    let rows = exported(&out);
    let audit: Vec<&serde_json::Value> = rows.iter().filter(|r| r["kind"] == "audit").collect();
    let types: Vec<&str> = audit
        .iter()
        .map(|r| r["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["service-started", "key-suspended", "key-resumed"]);
    assert_eq!(audit[1]["client"], "cli:alice");
    assert_eq!(audit[1]["policy"], "key-suspended");
    assert_eq!(audit[1]["event"]["fields"]["key"], "tsa-rsa");
    assert_eq!(
        audit[1]["event"]["fields"]["reason"],
        "compromise suspected"
    );
    assert_eq!(audit[2]["client"], "client:ops");
    assert_eq!(audit[2]["event"]["fields"]["reason"], "cleared");
    // Serials of their own counter, whatever the tokens' were; the second suspension,
    // which changed nothing, used up number 3 (reserved before its transaction), as a
    // refused token uses up its serial.
    let serials: Vec<&str> = audit
        .iter()
        .map(|r| r["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials, ["01", "02", "04"]);
    // The body is the stored token, and what object_hash binds.
    let rec = store
        .get_by_serial(RecordKind::Audit, &[2])
        .await
        .unwrap()
        .unwrap();
    let body = rec.token.clone().unwrap();
    let ev = AuditEvent::decode(&body).unwrap();
    assert_eq!(ev.event, AuditEventType::KeySuspended);
    assert_eq!(ev.field("reason"), Some("compromise suspected"));
    // An edited body breaks the chain check.
    let forged = String::from_utf8(body)
        .unwrap()
        .replace("compromise suspected", "routine maintenance");
    let sql = if db.is_pg() {
        format!(
            "UPDATE log_records SET token = convert_to('{forged}', 'UTF8') WHERE seq = {}",
            rec.seq
        )
    } else {
        format!(
            "UPDATE log_records SET token = CAST('{forged}' AS BLOB) WHERE seq = {}",
            rec.seq
        )
    };
    db.exec(&sql).await;
    let report = store.verify_chain().await.unwrap();
    assert_eq!(
        report.first_bad.map(|b| (b.seq, b.reason)),
        Some((rec.seq, hanko_store::BadReason::TokenMismatch))
    );
    store.close().await;
}

/// Two more tokens after the first audit record.
async fn fill_more(store: &hanko_store::Store) {
    for i in 3..=4 {
        store.append(super::record(i, "bob")).await.unwrap();
    }
}

both!(two_stores_see_one_suspension);
async fn two_stores_see_one_suspension(db: TestDb) {
    // Two nodes on PostgreSQL; on SQLite, two handles on the same file.
    let a = db.open(StoreOptions::with_node_id("node-a")).await;
    let b = db.open(StoreOptions::with_node_id("node-b")).await;
    let (sa, sb) = tokio::join!(
        a.suspend_key("seal-p256", "from a", "cli:a"),
        b.suspend_key("seal-p256", "from b", "cli:b"),
    );
    // Exactly one of them suspended it; the other found it suspended.
    let changed = [&sa, &sb]
        .iter()
        .filter(|r| matches!(r, Ok(KeyStateChange::Changed(_))))
        .count();
    let already = [&sa, &sb]
        .iter()
        .filter(|r| matches!(r, Ok(KeyStateChange::AlreadySuspended(_))))
        .count();
    assert_eq!((changed, already), (1, 1), "{sa:?} {sb:?}");
    assert_eq!(b.key_suspensions().await.unwrap().len(), 1);
    assert!(a.verify_chain().await.unwrap().is_ok());
    a.close().await;
    b.close().await;
}

/// Takes a v6 log back to schema v5 behind the store's back: no `audit` kind, no
/// `key_suspensions`, and migration 6 unrecorded, so the next open runs it again.
async fn downgrade_to_v5(db: &TestDb) {
    if db.is_pg() {
        db.exec(
            "DROP TABLE key_suspensions; \
             ALTER TABLE log_records DROP CONSTRAINT log_records_kind_check; \
             ALTER TABLE log_records ADD CONSTRAINT log_records_kind_check \
             CHECK (kind IN ('timestamp', 'seal', 'archive-stamp', 'archive-object')); \
             DELETE FROM _sqlx_migrations WHERE version = 6;",
        )
        .await;
    } else {
        // The same rebuild with the old kind list, without the new table, is the way back.
        let full = include_str!("../../migrations/sqlite/0006_key_lifecycle.sql");
        let rebuild: String = full
            .split("-- The emergency stop")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace(",\n                                  'audit'", "");
        assert!(!rebuild.contains("'audit'"), "{rebuild}");
        db.exec(&format!(
            "BEGIN; DROP TABLE key_suspensions; {rebuild}; \
             DELETE FROM _sqlx_migrations WHERE version = 6; COMMIT;"
        ))
        .await;
    }
}

both!(migration_6_keeps_records_batches_and_anchors);
async fn migration_6_keeps_records_batches_and_anchors(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    fill(&store, 5).await;
    let b1 = store
        .close_batch(&super::archive::batch(1, 3))
        .await
        .unwrap();
    store
        .anchor_done(b1.id, "self", b"token", SystemTime::now())
        .await
        .unwrap();
    let head = store.head().await.unwrap();
    store.close().await;

    downgrade_to_v5(&db).await;
    let refused = db
        .try_exec(
            "INSERT INTO log_records (seq, kind, serial, object_hash, request_hash, policy, \
             client, issued_at_ns, node_id, chain_hash) SELECT 99, 'audit', serial, \
             object_hash, request_hash, policy, client, issued_at_ns, node_id, chain_hash \
             FROM log_records WHERE seq = 1",
        )
        .await;
    assert!(refused.is_err(), "v5 must refuse the new kind");

    // Opening migrates (6 runs on the populated log) ...
    let store = db.open(StoreOptions::default()).await;
    assert_eq!(store.head().await.unwrap(), head);
    let report = store.verify_chain().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.rows_checked, 5);
    let b = store.batch(1).await.unwrap().unwrap();
    assert_eq!((b.first_seq, b.last_seq), (1, 3));
    assert_eq!(store.anchors(1).await.unwrap().len(), 1);
    if !db.is_pg() {
        let indexes = db
            .count(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN \
                 ('log_records_issued_at', 'log_records_object_hash', \
                 'log_records_seq_object_hash')",
            )
            .await;
        assert_eq!(indexes, 3);
        assert_eq!(
            db.count("SELECT count(*) FROM pragma_foreign_key_check")
                .await,
            0
        );
        assert_eq!(
            db.count("SELECT count(*) FROM sqlite_temp_master").await,
            0,
            "the migration's temporary table is gone"
        );
    }
    // ... after which audit records and suspensions are written, and still verify.
    assert!(matches!(
        store.suspend_key("k", "test", "cli:t").await.unwrap(),
        KeyStateChange::Changed(_)
    ));
    assert!(store.verify_chain().await.unwrap().is_ok());
    // A batch's has_issued ignores audit records: the range 4..=6 has tokens.
    let open = store.open_range().await.unwrap().unwrap();
    assert!(open.has_issued);
    store.close().await;
}
