//! Evidence renewal's rows (issue #16, migration 5): done anchors indexed as chains, due
//! chains found by their stored notAfter, a run planned and completed in two atomic
//! steps, and every way of renewing a chain twice refused without writing anything. The
//! store does not parse tokens or compute trees: the bytes here are arbitrary.

use std::time::{Duration, SystemTime};

use hanko_store::{
    ChainOrigin, Error, EvidenceChain, NewBatch, NewRun, PlannedChain, PlannedHashTree,
    RenewalKind, StoreOptions,
};

use super::{TestDb, fill};

const DAY: Duration = Duration::from_secs(86_400);

fn one_leaf_batch(seq: u64) -> NewBatch {
    NewBatch {
        first_seq: seq,
        last_seq: seq,
        hash_alg: "sha256".into(),
        root: vec![seq as u8; 32],
        block_roots: vec![vec![seq as u8; 32]],
        closed_at: SystemTime::now(),
        targets: vec!["self".into()],
    }
}

fn planned(c: &EvidenceChain, leaf: u64) -> PlannedChain {
    PlannedChain {
        chain_id: c.id,
        renewals: c.renewals,
        leaf_index: leaf,
        reduced: vec![0x30, 0x00],
    }
}

fn self_chain(batch_id: u64) -> ChainOrigin {
    ChainOrigin::Anchor {
        batch_id,
        target: "self".into(),
    }
}

fn run_of(chains: Vec<PlannedChain>) -> NewRun {
    NewRun {
        kind: RenewalKind::TimeStamp,
        hash_alg: "sha256".into(),
        root: vec![0xaa; 32],
        chains,
        hash_trees: Vec::new(),
    }
}

fn conflict<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::RenewalConflict(_)))
}

both!(a_chain_is_renewed_once_per_due_period);
async fn a_chain_is_renewed_once_per_due_period(db: TestDb) {
    let store = db.open(StoreOptions::default()).await;
    fill(&store, 3).await;
    for seq in 1..=3 {
        store.close_batch(&one_leaf_batch(seq)).await.unwrap();
    }
    // Only done anchors are chains.
    for b in 1..=2 {
        let token = format!("token-{b}").into_bytes();
        store
            .anchor_done(b, "self", &token, SystemTime::now())
            .await
            .unwrap();
    }
    let unindexed = store.unindexed_anchors(10).await.unwrap();
    assert_eq!(
        unindexed.iter().map(|a| a.batch_id).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(unindexed[0].token, b"token-1");
    let now = SystemTime::now();
    let chains: Vec<EvidenceChain> = unindexed
        .iter()
        .map(|a| EvidenceChain {
            id: 0,
            origin: ChainOrigin::Anchor {
                batch_id: a.batch_id,
                target: a.target.clone(),
            },
            hash_alg: a.hash_alg.clone(),
            renewals: 0,
            next_hash: vec![a.batch_id as u8; 32],
            // Chain 2's token carries no certificate: never due.
            not_after: (a.batch_id == 1).then_some(now + 10 * DAY),
        })
        .collect();
    store.index_chains(&chains).await.unwrap();
    store.index_chains(&chains).await.unwrap(); // again: left alone
    assert!(store.unindexed_anchors(10).await.unwrap().is_empty());

    // Due: within the horizon and renewable (the renewing certificate outlives it).
    let horizon = now + 30 * DAY;
    let own = now + 700 * DAY;
    assert!(
        store
            .due_chains("sha256", now + 5 * DAY, own, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .due_chains("sha256", horizon, now + 10 * DAY, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .due_chains("sha512", horizon, own, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.due_chains("sha256", horizon, own, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].origin.clone(), due[0].renewals), (self_chain(1), 0));
    assert_eq!(due[0].next_hash, vec![1u8; 32]);
    let stats = store.renewal_stats(horizon).await.unwrap();
    assert_eq!((stats.due, stats.planned_runs), (1, 0));

    // Planned: held, not due again, not plannable again; nothing served yet.
    let run = store
        .plan_renewal(&run_of(vec![planned(&due[0], 0)]))
        .await
        .unwrap();
    assert_eq!((run.id, run.leaf_count, run.token.clone()), (1, 1, None));
    assert!(
        store
            .due_chains("sha256", horizon, own, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(conflict(
        store.plan_renewal(&run_of(vec![planned(&due[0], 0)])).await
    ));
    assert_eq!(store.planned_runs().await.unwrap(), vec![run.clone()]);
    assert!(
        store
            .chain_renewals(&self_chain(1))
            .await
            .unwrap()
            .is_empty()
    );
    // Refused before the database: an empty or mixed run.
    assert!(matches!(
        store.plan_renewal(&run_of(Vec::new())).await,
        Err(Error::InvalidArgument(_))
    ));

    // Completed: the chain moves on (one renewal, its new expiry), served, not due.
    store
        .complete_renewal(run.id, b"renewal-token", &[7; 32], now + 700 * DAY)
        .await
        .unwrap();
    assert!(conflict(
        store
            .complete_renewal(run.id, b"again", &[8; 32], now + 700 * DAY)
            .await
    ));
    assert!(conflict(
        store.complete_renewal(99, b"x", &[8; 32], now).await
    ));
    assert!(store.planned_runs().await.unwrap().is_empty());
    let renewals = store.chain_renewals(&self_chain(1)).await.unwrap();
    assert_eq!(renewals.len(), 1);
    assert_eq!((renewals[0].n, renewals[0].run_id), (1, 1));
    assert_eq!(renewals[0].token, b"renewal-token");
    assert_eq!(renewals[0].reduced, vec![0x30, 0x00]);
    assert!(
        store
            .due_chains("sha256", horizon, own, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = store
        .due_chains("sha256", now + 800 * DAY, now + 900 * DAY, 10)
        .await
        .unwrap();
    assert_eq!(
        (later[0].renewals, later[0].next_hash.clone()),
        (1, vec![7u8; 32])
    );
    // A plan made from a stale read (renewals 0) is refused, writing nothing.
    assert!(conflict(
        store.plan_renewal(&run_of(vec![planned(&due[0], 0)])).await
    ));
    assert!(store.planned_runs().await.unwrap().is_empty());
    assert_eq!(store.renewal_stats(horizon).await.unwrap().due, 0);

    // A hash-tree renewal of the object at seq 1, once per algorithm.
    let rehash = |leaf| NewRun {
        kind: RenewalKind::HashTree,
        hash_alg: "sha512".into(),
        root: vec![0xbb; 64],
        chains: Vec::new(),
        hash_trees: vec![PlannedHashTree {
            seq: 1,
            batch_id: 1,
            target: "self".into(),
            renewals: 1,
            data_hash: vec![0xdd; 64],
            leaf_index: leaf,
            reduced: Vec::new(),
        }],
    };
    let r2 = store.plan_renewal(&rehash(0)).await.unwrap();
    assert!(conflict(store.plan_renewal(&rehash(1)).await));
    assert!(store.hash_tree_renewals(1).await.unwrap().is_empty());
    store
        .complete_renewal(r2.id, b"rehash-token", &[9; 64], now + 700 * DAY)
        .await
        .unwrap();
    let h = store.hash_tree_renewals(1).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(
        (h[0].n, h[0].hash_alg.as_str(), h[0].batch_id),
        (1, "sha512", 1)
    );
    assert_eq!(h[0].data_hash, vec![0xdd; 64]);
    // The chain itself is untouched by it; the run's new chain is one to renew in turn.
    assert_eq!(store.chain_renewals(&self_chain(1)).await.unwrap().len(), 1);
    let rehashed = ChainOrigin::Rehash { run_id: r2.id };
    let due = store
        .due_chains("sha512", now + 800 * DAY, now + 900 * DAY, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].origin.clone(), due[0].next_hash.clone()),
        (rehashed.clone(), vec![9u8; 64])
    );
    let mut run = run_of(vec![planned(&due[0], 0)]);
    run.hash_alg = "sha512".into();
    run.root = vec![0xcc; 64];
    let r3 = store.plan_renewal(&run).await.unwrap();
    store
        .complete_renewal(r3.id, b"rehash-renewal", &[3; 64], now + 800 * DAY)
        .await
        .unwrap();
    let r = store.chain_renewals(&rehashed).await.unwrap();
    assert_eq!(
        (r.len(), r[0].token.clone()),
        (1, b"rehash-renewal".to_vec())
    );
    assert!(
        store
            .chain_renewals(&ChainOrigin::Rehash { run_id: 99 })
            .await
            .unwrap()
            .is_empty()
    );
    // Only anchors' chains are indexed from outside.
    let mut foreign = due[0].clone();
    foreign.origin = rehashed;
    assert!(matches!(
        store.index_chains(&[foreign]).await,
        Err(Error::InvalidArgument(_))
    ));

    // One scheduler per database.
    let mut lock = store
        .renewal_lock()
        .await
        .unwrap()
        .expect("first scheduler");
    assert!(lock.still_held().await);
    if db.is_pg() {
        let other = db.open(StoreOptions::default()).await;
        assert!(other.renewal_lock().await.unwrap().is_none());
        // The batcher's lock is another lock.
        let batcher = other.batcher_lock().await.unwrap().expect("batcher");
        batcher.release().await;
        other.close().await;
    }
    lock.release().await;
    store.close().await;
}
