//! What queueing alone does to the p99 at a load below capacity: an ideal server whose
//! only cost is its `c` signers, each signature taking exactly the same time, fed by
//! requests that arrive at random (independent clients: Poisson arrivals, the M/D/c
//! queue). The open loop fires on a fixed schedule instead, which is kinder; real
//! clients do not coordinate. Printed beside the measured p99 so a reader can tell the
//! queue's share of a tail from the server's.
//!
//! The figure is simulated (Lindley's recursion over `c` servers, first come first
//! served), not looked up: M/D/c has no closed form for its quantiles. The generator is
//! a fixed-seed xorshift, so the same arguments always give the same figure.

/// The p99 of the time in system (queue plus service) of an M/D/`servers` queue at
/// utilisation `load` (0 < load < 1), in units of the service time: one request alone
/// takes 1.
pub(super) fn md_c_p99(servers: usize, load: f64) -> f64 {
    const REQUESTS: usize = 200_000;
    let servers = servers.max(1);
    let rate = load * servers as f64; // arrivals per service time
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    // When each server is next free; the earliest takes the next request.
    let mut free = vec![0.0_f64; servers];
    let mut arrival = 0.0_f64;
    let mut times = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        arrival += -rng.unit_open().ln() / rate;
        let (i, earliest) =
            free.iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |a, (i, t)| if t < a.1 { (i, t) } else { a },
                );
        let done = arrival.max(earliest) + 1.0;
        free[i] = done;
        times.push(done - arrival);
    }
    crate::stats::quantile(times, 0.99)
}

/// xorshift64*: enough for a simulation's arrivals, and repeatable.
struct XorShift(u64);

impl XorShift {
    /// Uniform in (0, 1]: never 0, so its logarithm is finite.
    fn unit_open(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_matches_the_pollaczek_khinchine_mean_and_grows_with_the_load() {
        // M/D/1 at 0.5: mean wait ρ / (2 (1 − ρ)) = 0.5 service times; the p99 of the
        // time in system lies well above the mean (1.5) and below 5.
        let p99 = md_c_p99(1, 0.5);
        assert!(p99 > 2.0 && p99 < 5.0, "{p99}");
        assert!(md_c_p99(1, 0.8) > p99);
    }

    #[test]
    fn two_servers_at_80_percent_queue_far_beyond_three_service_times() {
        // The figure issue #17's p99 criterion meets with two signers (RESULTS.md).
        let p99 = md_c_p99(2, 0.8);
        assert!(p99 > 5.0 && p99 < 7.0, "{p99}");
        assert!(md_c_p99(2, 0.5) < 3.0);
    }

    #[test]
    fn many_servers_barely_queue_at_the_same_load() {
        // 64 signers in flight (the simulated network HSM) at 80 %: the p99 is close to
        // one service time.
        let p99 = md_c_p99(64, 0.8);
        assert!((1.0..1.5).contains(&p99), "{p99}");
    }
}
