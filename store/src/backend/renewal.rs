//! Storage of evidence renewal (`migrations/*/0005_evidence_renewal.sql`) for both
//! databases, written once as in `anchoring.rs`: the same SQL text on SQLite and
//! PostgreSQL, one macro implementing [`RenewalBackend`] for both pools, only the begin
//! of a writing transaction differs (SQLite `BEGIN IMMEDIATE`).

use crate::Error;
use crate::backend::BoxFut;
use crate::renewal::{
    EvidenceChain, NewRun, RenewalRun, RenewalStats, StoredRenewal, UnindexedAnchor,
};

/// The renewal half of the storage contract (see [`crate::renewal`]).
pub(crate) trait RenewalBackend: Send + Sync {
    fn unindexed_anchors(&self, limit: i64) -> BoxFut<'_, Vec<UnindexedAnchor>>;
    fn index_chains<'a>(&'a self, chains: &'a [EvidenceChain]) -> BoxFut<'a, ()>;
    fn due_chains<'a>(
        &'a self,
        hash_alg: &'a str,
        horizon_ns: i64,
        before_ns: i64,
        limit: i64,
    ) -> BoxFut<'a, Vec<EvidenceChain>>;
    fn plan<'a>(&'a self, run: &'a NewRun, node: &'a str, now_ns: i64) -> BoxFut<'a, RenewalRun>;
    fn complete<'a>(
        &'a self,
        run_id: i64,
        token: &'a [u8],
        next_hash: &'a [u8],
        not_after_ns: i64,
        now_ns: i64,
    ) -> BoxFut<'a, ()>;
    fn planned_runs(&self) -> BoxFut<'_, Vec<RenewalRun>>;
    /// `anchor`: the chain of anchor (`a`, `b`) = (batch id, target); else of
    /// hash-tree run `a`.
    fn chain_renewals<'a>(
        &'a self,
        anchor: bool,
        a: i64,
        b: &'a str,
    ) -> BoxFut<'a, Vec<StoredRenewal>>;
    fn hash_tree_renewals(&self, seq: i64) -> BoxFut<'_, Vec<StoredRenewal>>;
    fn stats(&self, horizon_ns: i64) -> BoxFut<'_, RenewalStats>;
}

/// A refused plan or completion: a constraint that fired means a chain is renewed
/// already (or its renewal number taken).
pub(crate) fn renewal_error(op: &'static str, e: sqlx::Error) -> Error {
    match crate::backend::anchoring::constraint_refusal(&e) {
        Some(why) => Error::RenewalConflict(format!("the database refused it: {why}")),
        None => Error::db(op, e),
    }
}

pub(crate) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Implements [`RenewalBackend`] for a backend with a sqlx `pool` field; `$begin` starts
/// a writing transaction on it.
macro_rules! impl_renewal_backend {
    ($backend:ty, |$pool:ident| $begin:expr) => {
        impl $crate::backend::renewal::RenewalBackend for $backend {
            fn unindexed_anchors(
                &self,
                limit: i64,
            ) -> $crate::backend::BoxFut<'_, Vec<$crate::renewal::UnindexedAnchor>> {
                Box::pin(async move {
                    let rows: Vec<(i64, String, String, Vec<u8>)> = sqlx::query_as(
                        "SELECT a.batch_id, a.target, b.hash_alg, a.token FROM anchors a \
                         JOIN anchor_batches b ON b.id = a.batch_id \
                         WHERE a.state = 'done' AND a.token IS NOT NULL AND NOT EXISTS \
                         (SELECT 1 FROM evidence_chains c WHERE c.batch_id = a.batch_id \
                         AND c.target = a.target) ORDER BY a.batch_id, a.target LIMIT $1",
                    )
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::Error::db("read unindexed anchors", e))?;
                    Ok(rows
                        .into_iter()
                        .map(|(b, target, hash_alg, token)| $crate::renewal::UnindexedAnchor {
                            batch_id: $crate::backend::renewal::u(b),
                            target,
                            hash_alg,
                            token,
                        })
                        .collect())
                })
            }

            fn index_chains<'a>(
                &'a self,
                chains: &'a [$crate::renewal::EvidenceChain],
            ) -> $crate::backend::BoxFut<'a, ()> {
                Box::pin(async move {
                    const OP: &str = "index evidence chains";
                    let $pool = &self.pool;
                    let mut tx = $begin.await.map_err(|e| $crate::Error::db(OP, e))?;
                    for c in chains {
                        let $crate::renewal::ChainOrigin::Anchor { batch_id, target } = &c.origin
                        else {
                            continue;
                        };
                        let not_after = c.not_after.map($crate::renewal::ns).transpose()?;
                        sqlx::query(
                            "INSERT INTO evidence_chains (batch_id, target, hash_alg, renewals, \
                             next_hash, not_after_ns) VALUES ($1, $2, $3, 0, $4, $5) \
                             ON CONFLICT (batch_id, target) DO NOTHING",
                        )
                        .bind($crate::backend::to_i64(*batch_id, "batch id")?)
                        .bind(target.as_str())
                        .bind(c.hash_alg.as_str())
                        .bind(c.next_hash.as_slice())
                        .bind(not_after)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| $crate::Error::db(OP, e))?;
                    }
                    tx.commit().await.map_err(|e| $crate::Error::db(OP, e))
                })
            }

            fn due_chains<'a>(
                &'a self,
                hash_alg: &'a str,
                horizon_ns: i64,
                before_ns: i64,
                limit: i64,
            ) -> $crate::backend::BoxFut<'a, Vec<$crate::renewal::EvidenceChain>> {
                Box::pin(async move {
                    type Row = (
                        i64,
                        Option<i64>,
                        Option<String>,
                        Option<i64>,
                        String,
                        i64,
                        Vec<u8>,
                        Option<i64>,
                    );
                    let rows: Vec<Row> = sqlx::query_as(
                        "SELECT id, batch_id, target, rehash_run, hash_alg, renewals, next_hash, \
                         not_after_ns FROM evidence_chains WHERE run_id IS NULL \
                         AND not_after_ns <= $1 AND not_after_ns < $2 AND hash_alg = $3 \
                         ORDER BY not_after_ns, id LIMIT $4",
                    )
                    .bind(horizon_ns)
                    .bind(before_ns)
                    .bind(hash_alg)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::Error::db("read due evidence chains", e))?;
                    use $crate::backend::renewal::u;
                    use $crate::renewal::ChainOrigin;
                    Ok(rows
                        .into_iter()
                        .map(|(id, b, t, r, hash_alg, n, next_hash, na)| {
                            let origin = match (b, t, r) {
                                (Some(b), Some(t), _) => ChainOrigin::Anchor {
                                    batch_id: u(b),
                                    target: t,
                                },
                                (_, _, r) => ChainOrigin::Rehash {
                                    run_id: u(r.unwrap_or(0)),
                                },
                            };
                            $crate::renewal::EvidenceChain {
                                id: u(id),
                                origin,
                                hash_alg,
                                renewals: u(n),
                                next_hash,
                                not_after: na.map($crate::renewal::time),
                            }
                        })
                        .collect())
                })
            }

            fn plan<'a>(
                &'a self,
                run: &'a $crate::renewal::NewRun,
                node: &'a str,
                now_ns: i64,
            ) -> $crate::backend::BoxFut<'a, $crate::renewal::RenewalRun> {
                Box::pin(async move {
                    const OP: &str = "plan a renewal run";
                    use $crate::backend::renewal::renewal_error as err;
                    use $crate::backend::to_i64;
                    let $pool = &self.pool;
                    let mut tx = $begin.await.map_err(|e| $crate::Error::db(OP, e))?;
                    let id: i64 =
                        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM renewal_runs")
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(|e| $crate::Error::db(OP, e))?;
                    let leaves = to_i64(run.leaf_count() as u64, "leaf count")?;
                    sqlx::query(
                        "INSERT INTO renewal_runs (id, kind, hash_alg, root, leaf_count, state, \
                         planned_at_ns, planned_by) VALUES ($1, $2, $3, $4, $5, 'planned', $6, $7)",
                    )
                    .bind(id)
                    .bind(run.kind.as_str())
                    .bind(run.hash_alg.as_str())
                    .bind(run.root.as_slice())
                    .bind(leaves)
                    .bind(now_ns)
                    .bind(node)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err(OP, e))?;
                    for c in &run.chains {
                        let chain = to_i64(c.chain_id, "chain id")?;
                        let renewals = to_i64(c.renewals, "renewals")?;
                        let moved = sqlx::query(
                            "UPDATE evidence_chains SET run_id = $1 WHERE id = $2 \
                             AND renewals = $3 AND run_id IS NULL",
                        )
                        .bind(id)
                        .bind(chain)
                        .bind(renewals)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| err(OP, e))?;
                        if moved.rows_affected() != 1 {
                            return Err($crate::Error::RenewalConflict(format!(
                                "chain {} is in another run or has moved on",
                                c.chain_id
                            )));
                        }
                        sqlx::query(
                            "INSERT INTO chain_renewals (chain_id, n, run_id, leaf_index, \
                             reduced) VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(chain)
                        .bind(renewals + 1)
                        .bind(id)
                        .bind(to_i64(c.leaf_index, "leaf index")?)
                        .bind(c.reduced.as_slice())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| err(OP, e))?;
                    }
                    for h in &run.hash_trees {
                        sqlx::query(
                            "INSERT INTO hash_tree_renewals (seq, hash_alg, batch_id, target, \
                             renewals, data_hash, run_id, leaf_index, reduced) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        )
                        .bind(to_i64(h.seq, "seq")?)
                        .bind(run.hash_alg.as_str())
                        .bind(to_i64(h.batch_id, "batch id")?)
                        .bind(h.target.as_str())
                        .bind(to_i64(h.renewals, "renewals")?)
                        .bind(h.data_hash.as_slice())
                        .bind(id)
                        .bind(to_i64(h.leaf_index, "leaf index")?)
                        .bind(h.reduced.as_slice())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| err(OP, e))?;
                    }
                    tx.commit().await.map_err(|e| err(OP, e))?;
                    Ok($crate::renewal::RenewalRun::from_columns((
                        id,
                        run.kind.as_str().to_owned(),
                        run.hash_alg.clone(),
                        run.root.clone(),
                        leaves,
                        None,
                        now_ns,
                    )))
                })
            }

            fn complete<'a>(
                &'a self,
                run_id: i64,
                token: &'a [u8],
                next_hash: &'a [u8],
                not_after_ns: i64,
                now_ns: i64,
            ) -> $crate::backend::BoxFut<'a, ()> {
                Box::pin(async move {
                    const OP: &str = "complete a renewal run";
                    use $crate::backend::renewal::renewal_error as err;
                    let $pool = &self.pool;
                    let mut tx = $begin.await.map_err(|e| $crate::Error::db(OP, e))?;
                    let done = sqlx::query(
                        "UPDATE renewal_runs SET state = 'done', token = $2, not_after_ns = $3, \
                         done_at_ns = $4 WHERE id = $1 AND state = 'planned'",
                    )
                    .bind(run_id)
                    .bind(token)
                    .bind(not_after_ns)
                    .bind(now_ns)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err(OP, e))?;
                    if done.rows_affected() != 1 {
                        return Err($crate::Error::RenewalConflict(format!(
                            "run {run_id} is not planned"
                        )));
                    }
                    sqlx::query(
                        "UPDATE evidence_chains SET renewals = renewals + 1, next_hash = $2, \
                         not_after_ns = $3, run_id = NULL WHERE run_id = $1",
                    )
                    .bind(run_id)
                    .bind(next_hash)
                    .bind(not_after_ns)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err(OP, e))?;
                    // A hash-tree run's token ends its objects' new chain: a chain to
                    // renew in turn.
                    sqlx::query(
                        "INSERT INTO evidence_chains (rehash_run, hash_alg, renewals, next_hash, \
                         not_after_ns) SELECT id, hash_alg, 0, $2, $3 FROM renewal_runs \
                         WHERE id = $1 AND kind = 'hash-tree'",
                    )
                    .bind(run_id)
                    .bind(next_hash)
                    .bind(not_after_ns)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err(OP, e))?;
                    tx.commit().await.map_err(|e| err(OP, e))
                })
            }

            fn planned_runs(
                &self,
            ) -> $crate::backend::BoxFut<'_, Vec<$crate::renewal::RenewalRun>> {
                Box::pin(async move {
                    type Row = (i64, String, String, Vec<u8>, i64, Option<Vec<u8>>, i64);
                    let rows: Vec<Row> = sqlx::query_as(
                            "SELECT id, kind, hash_alg, root, leaf_count, token, planned_at_ns \
                             FROM renewal_runs WHERE state = 'planned' ORDER BY id",
                        )
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| $crate::Error::db("read planned renewal runs", e))?;
                    Ok(rows
                        .into_iter()
                        .map($crate::renewal::RenewalRun::from_columns)
                        .collect())
                })
            }

            fn chain_renewals<'a>(
                &'a self,
                anchor: bool,
                a: i64,
                b: &'a str,
            ) -> $crate::backend::BoxFut<'a, Vec<$crate::renewal::StoredRenewal>> {
                Box::pin(async move {
                    let which = if anchor {
                        "e.batch_id = $1 AND e.target = $2"
                    } else {
                        "e.rehash_run = $1 AND $2 = ''"
                    };
                    let sql = format!(
                        "SELECT c.n, c.run_id, c.reduced, r.token FROM chain_renewals c \
                         JOIN evidence_chains e ON e.id = c.chain_id \
                         JOIN renewal_runs r ON r.id = c.run_id \
                         WHERE {which} AND r.state = 'done' ORDER BY c.n"
                    );
                    let rows: Vec<(i64, i64, Vec<u8>, Vec<u8>)> =
                        sqlx::query_as(sqlx::AssertSqlSafe(sql))
                            .bind(a)
                            .bind(b)
                            .fetch_all(&self.pool)
                            .await
                            .map_err(|e| $crate::Error::db("read chain renewals", e))?;
                    use $crate::backend::renewal::u;
                    Ok(rows
                        .into_iter()
                        .map(|(n, run, reduced, token)| $crate::renewal::StoredRenewal {
                            n: u(n),
                            run_id: u(run),
                            reduced,
                            token,
                            hash_alg: String::new(),
                            data_hash: Vec::new(),
                            batch_id: if anchor { u(a) } else { 0 },
                            target: b.to_owned(),
                        })
                        .collect())
                })
            }

            fn hash_tree_renewals(
                &self,
                seq: i64,
            ) -> $crate::backend::BoxFut<'_, Vec<$crate::renewal::StoredRenewal>> {
                Box::pin(async move {
                    type Row = (i64, i64, Vec<u8>, Vec<u8>, String, Vec<u8>, i64, String);
                    let rows: Vec<Row> = sqlx::query_as(
                        "SELECT h.renewals, h.run_id, h.reduced, r.token, h.hash_alg, \
                         h.data_hash, h.batch_id, h.target FROM hash_tree_renewals h \
                         JOIN renewal_runs r ON r.id = h.run_id \
                         WHERE h.seq = $1 AND r.state = 'done' ORDER BY h.run_id",
                    )
                    .bind(seq)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::Error::db("read hash-tree renewals", e))?;
                    use $crate::backend::renewal::u;
                    Ok(rows
                        .into_iter()
                        .map(|(n, run, reduced, token, hash_alg, data_hash, b, target)| {
                            $crate::renewal::StoredRenewal {
                                n: u(n),
                                run_id: u(run),
                                reduced,
                                token,
                                hash_alg,
                                data_hash,
                                batch_id: u(b),
                                target,
                            }
                        })
                        .collect())
                })
            }

            fn stats(
                &self,
                horizon_ns: i64,
            ) -> $crate::backend::BoxFut<'_, $crate::renewal::RenewalStats> {
                Box::pin(async move {
                    let err = |e| $crate::Error::db("read renewal figures", e);
                    let (due, earliest): (i64, Option<i64>) = sqlx::query_as(
                        "SELECT COUNT(*), MIN(not_after_ns) FROM evidence_chains \
                         WHERE not_after_ns <= $1",
                    )
                    .bind(horizon_ns)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(err)?;
                    let planned: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM renewal_runs WHERE state = 'planned'",
                    )
                    .fetch_one(&self.pool)
                    .await
                    .map_err(err)?;
                    Ok($crate::renewal::RenewalStats {
                        due: $crate::backend::renewal::u(due),
                        earliest_not_after: earliest.map($crate::renewal::time),
                        planned_runs: $crate::backend::renewal::u(planned),
                    })
                })
            }
        }
    };
}
pub(crate) use impl_renewal_backend;
