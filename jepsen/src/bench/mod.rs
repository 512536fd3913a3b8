//! Benchmarks that measure raftmha against its targets (DESIGN §8) on real processes.
pub mod election;
pub mod failover;
pub mod failover_setup;
pub mod scale;
pub mod scale_probe;
pub mod scale_report;
pub mod switchover;
pub mod via_haproxy;

/// p-th percentile (nearest rank) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 10.0);
        assert_eq!(percentile(&v, 99.0), 20.0);
        assert_eq!(percentile(&v, 100.0), 20.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
