//! The `hanko serve --dev` configurations `hanko-bench tsa` compares (log on / off,
//! linger, verify-after-sign) and the group-commit and stage figures read from the
//! server's `/metrics`. Starting and stopping the server is `devserver.rs`'s.

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
    Some(BatchStats {
        commits: d("hanko_log_batch_size_count")?,
        records: d("hanko_log_batch_size_sum")?,
        max: metric(after, "hanko_log_batch_size{quantile=\"1\"}"),
        commit_ms: mean_ms(before, after, "hanko_log_commit_seconds", ""),
    })
}

/// Where a token's time went in the server, mean ms per observation over the load, from
/// the `_sum` / `_count` deltas of the server's stage histograms (each `None` when the
/// server recorded none: a stage the configuration skips).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stages {
    /// `POST /tsa`, as the HTTP layer timed it.
    pub(crate) request: Option<f64>,
    /// The TSA's answer: checks, serial, signing pool, token DER.
    pub(crate) sign: Option<f64>,
    /// Within `sign`: the wait for a signing worker.
    pub(crate) pool_queue: Option<f64>,
    /// Within `sign`: the worker's call (signature, verify-after-sign).
    pub(crate) hsm_call: Option<f64>,
    /// The append, until the record is durable and the request runs again.
    pub(crate) log: Option<f64>,
    /// Within `log`: the wait for the writer to begin the record's batch.
    pub(crate) log_queue: Option<f64>,
    /// Within `log`: the batch's commit, until its waiters are answered.
    pub(crate) commit: Option<f64>,
}

pub(crate) fn stages(before: &str, after: &str) -> Stages {
    let mean = |histogram: &str, labels: &str| mean_ms(before, after, histogram, labels);
    Stages {
        request: mean(
            "hanko_http_request_duration_seconds",
            "{route=\"/tsa\",method=\"POST\"}",
        ),
        sign: mean("hanko_tsa_issue_seconds", "{stage=\"sign\"}"),
        pool_queue: mean("hanko_hsm_queue_wait_seconds", ""),
        hsm_call: mean("hanko_hsm_call_seconds", ""),
        log: mean("hanko_tsa_issue_seconds", "{stage=\"log\"}"),
        log_queue: mean("hanko_log_queue_seconds", ""),
        commit: mean("hanko_log_commit_seconds", ""),
    }
}

impl Stages {
    /// Each stage's mean over measurements of the same length (a stage none of them
    /// observed stays `None`).
    pub(crate) fn mean(all: &[Stages]) -> Stages {
        let avg = |f: fn(&Stages) -> Option<f64>| {
            let seen: Vec<f64> = all.iter().filter_map(f).collect();
            (!seen.is_empty()).then(|| seen.iter().sum::<f64>() / seen.len() as f64)
        };
        Stages {
            request: avg(|s| s.request),
            sign: avg(|s| s.sign),
            pool_queue: avg(|s| s.pool_queue),
            hsm_call: avg(|s| s.hsm_call),
            log: avg(|s| s.log),
            log_queue: avg(|s| s.log_queue),
            commit: avg(|s| s.commit),
        }
    }
}

impl std::fmt::Display for Stages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |m| format!("{m:.2}"));
        write!(
            f,
            "stages, mean ms: request {} = sign {} (pool queue {}, HSM call {}) + log {} \
             (writer queue {}, commit {})",
            ms(self.request),
            ms(self.sign),
            ms(self.pool_queue),
            ms(self.hsm_call),
            ms(self.log),
            ms(self.log_queue),
            ms(self.commit)
        )
    }
}

/// Mean ms per observation of `histogram` between the two scrapes: Δ`_sum` ÷ Δ`_count`
/// of the series with exactly `labels`, or of every series of the histogram summed when
/// `labels` is empty (all keys' pools). `None` when nothing was observed.
fn mean_ms(before: &str, after: &str, histogram: &str, labels: &str) -> Option<f64> {
    let delta = |suffix: &str| {
        let series = format!("{histogram}{suffix}");
        let total = |text: &str| {
            if labels.is_empty() {
                sum_of_series(text, &series)
            } else {
                metric(text, &format!("{series}{labels}"))
            }
        };
        Some(total(after)? - total(before).unwrap_or(0.0))
    };
    match (delta("_sum")?, delta("_count")?) {
        (s, n) if n > 0.0 => Some(s / n * 1000.0),
        _ => None,
    }
}

/// The sum over every series of `name`, unlabelled or labelled.
fn sum_of_series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(key, _)| {
            key.strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('{'))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
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

    #[test]
    fn stage_means_from_histogram_deltas() {
        let before = "hanko_hsm_call_seconds_sum{key=\"a\"} 1\nhanko_hsm_call_seconds_count{key=\"a\"} 10\n\
            hanko_tsa_issue_seconds_sum{stage=\"log\"} 2\nhanko_tsa_issue_seconds_count{stage=\"log\"} 100\n";
        let after = "hanko_hsm_call_seconds_sum{key=\"a\"} 1.5\nhanko_hsm_call_seconds_count{key=\"a\"} 20\n\
            hanko_hsm_call_seconds_sum{key=\"b\"} 0.5\nhanko_hsm_call_seconds_count{key=\"b\"} 10\n\
            hanko_tsa_issue_seconds_sum{stage=\"log\"} 2.3\nhanko_tsa_issue_seconds_count{stage=\"log\"} 200\n\
            hanko_tsa_issue_seconds_sum{stage=\"sign\"} 0.2\nhanko_tsa_issue_seconds_count{stage=\"sign\"} 100\n";
        let s = stages(before, after);
        // Both keys' pools: (0.5 + 0.5) s over 20 calls.
        assert!((s.hsm_call.unwrap() - 50.0).abs() < 1e-9);
        assert!((s.log.unwrap() - 3.0).abs() < 1e-9);
        // A series absent before counts from zero.
        assert!((s.sign.unwrap() - 2.0).abs() < 1e-9);
        assert!(s.request.is_none() && s.commit.is_none());
    }

    #[test]
    fn stage_means_over_slices_skip_what_a_slice_did_not_see() {
        let a = Stages {
            sign: Some(4.0),
            log: Some(1.0),
            ..Stages::default()
        };
        let b = Stages {
            sign: Some(6.0),
            ..Stages::default()
        };
        let m = Stages::mean(&[a, b]);
        assert_eq!((m.sign, m.log, m.request), (Some(5.0), Some(1.0), None));
        assert!(Stages::mean(&[]).sign.is_none());
        let line = m.to_string();
        assert!(
            line.contains("sign 5.00") && line.contains("+ log 1.00"),
            "{line}"
        );
        assert!(line.contains("request -"), "{line}");
    }
}
