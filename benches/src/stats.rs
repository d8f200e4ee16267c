//! Latency samples and the summaries printed in the tables (throughput, p50, p99,
//! medians over rounds).

use std::time::Duration;

/// Samples of one measured configuration.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    latencies: Vec<Duration>,
    /// Calls that failed (counted, not included in the latencies).
    pub errors: u64,
}

impl Samples {
    /// Records one successful call.
    pub fn push(&mut self, d: Duration) {
        self.latencies.push(d);
    }

    /// Adds another set of samples.
    pub fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
    }

    /// Successful calls.
    pub fn count(&self) -> usize {
        self.latencies.len()
    }

    /// The `q` quantile (0.0..=1.0) in milliseconds, nearest-rank; 0 without samples.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let mut v = self.latencies.clone();
        v.sort_unstable();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1].as_secs_f64() * 1000.0
    }
}

/// The median (mean of the middle two for an even count); 0 for none.
pub fn median(v: Vec<f64>) -> f64 {
    quantile(v, 0.5)
}

/// The `q` quantile (0.0..=1.0) of `v`, interpolated linearly between the two nearest
/// ranks (the median of an even count is the mean of the middle two); 0 when empty.
pub fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let h = (v.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (h - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut s = Samples::default();
        for ms in 1..=100 {
            s.push(Duration::from_millis(ms));
        }
        assert_eq!(s.quantile_ms(0.5), 50.0);
        assert_eq!(s.quantile_ms(0.99), 99.0);
        assert_eq!(s.quantile_ms(1.0), 100.0);
        assert_eq!(Samples::default().quantile_ms(0.5), 0.0);
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn quartiles_interpolate_between_ranks() {
        let v = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(v.clone(), 0.25), 2.0);
        assert_eq!(quantile(v.clone(), 0.75), 4.0);
        assert_eq!(quantile(v.clone(), 0.0), 1.0);
        assert_eq!(quantile(v, 1.0), 5.0);
        assert_eq!(quantile(vec![1.0, 2.0], 0.25), 1.25);
        assert_eq!(quantile(vec![], 0.25), 0.0);
    }
}
