//! The `hanko serve --dev` configurations `hanko-bench tsa` compares (log on / off,
//! linger, verify-after-sign) and the group-commit figures read from the server's
//! `/metrics`. Starting and stopping the server is `devserver.rs`'s.

use crate::devserver::{config_text, metric, set, with_verify};

/// The dev config with verify-after-sign set and, for "log off", `store.durability =
/// "none"`, else `store.linger_ms` if given.
pub(super) fn bench_config(
    base: &toml::Table,
    log: bool,
    linger: Option<f64>,
    verify: bool,
) -> anyhow::Result<String> {
    let mut t = with_verify(base, verify)?;
    match (log, linger) {
        (false, _) => set(
            &mut t,
            "store",
            "durability",
            toml::Value::String("none".into()),
        )?,
        (true, Some(ms)) => set(&mut t, "store", "linger_ms", toml::Value::Float(ms))?,
        (true, None) => {}
    }
    config_text("tsa", &t)
}

/// Group-commit batches during the load, from `/metrics` deltas.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchStats {
    pub(super) commits: f64,
    pub(super) records: f64,
    /// Largest batch in the exporter's summary window (quantile 1).
    pub(super) max: Option<f64>,
    /// Mean commit time, ms.
    pub(super) commit_ms: Option<f64>,
}

pub(super) fn batch_stats(before: &str, after: &str) -> Option<BatchStats> {
    let d = |name: &str| Some(metric(after, name)? - metric(before, name).unwrap_or(0.0));
    let commits = d("hanko_log_batch_size_count")?;
    let records = d("hanko_log_batch_size_sum")?;
    let commit_ms = match (
        d("hanko_log_commit_seconds_sum"),
        d("hanko_log_commit_seconds_count"),
    ) {
        (Some(s), Some(n)) if n > 0.0 => Some(s / n * 1000.0),
        _ => None,
    };
    Some(BatchStats {
        commits,
        records,
        max: metric(after, "hanko_log_batch_size{quantile=\"1\"}"),
        commit_ms,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn batches_from_metrics_and_config() {
        let before = "hanko_log_batch_size_sum 100\nhanko_log_batch_size_count 10\n";
        let after = "hanko_log_batch_size{quantile=\"1\"} 17\nhanko_log_batch_size_sum 220\nhanko_log_batch_size_count 20\nhanko_log_commit_seconds_sum 0.02\nhanko_log_commit_seconds_count 10\n";
        let b = batch_stats(before, after).unwrap();
        assert_eq!((b.commits, b.records, b.max), (10.0, 120.0, Some(17.0)));
        assert!((b.commit_ms.unwrap() - 2.0).abs() < 1e-9);
        let base: toml::Table = "dev = true\n[hsm]\nworkers = 2\nverify_after_sign = true\n"
            .parse()
            .unwrap();
        let off: toml::Table = bench_config(&base, false, None, false)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(off["hsm"]["verify_after_sign"].as_bool(), Some(false));
        assert_eq!(off["store"]["durability"].as_str(), Some("none"));
        let on: toml::Table = bench_config(&base, true, None, true)
            .unwrap()
            .parse()
            .unwrap();
        assert!(on.get("store").is_none());
        let on: toml::Table = bench_config(&base, true, Some(0.5), true)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(on["store"]["linger_ms"].as_float(), Some(0.5));
    }
}
