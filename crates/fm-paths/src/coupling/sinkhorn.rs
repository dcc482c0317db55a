//! The entropic optimal transport plan between two uniform point sets (Cuturi 2013).
//!
//! `pi = diag(a) K diag(b)` with the Gibbs kernel `K = exp(-C / (reg max C))`, scaled by
//! alternating `a = (1/n) / (K b)`, `b = (1/n) / (K^T a)` until every row and column sums to `1/n`
//! within 1e-6 relative (or 1000 sweeps). Normalising the cost by its maximum makes `reg`
//! independent of the data's scale, as TorchCFM does.

/// The plan `[n, n]` (row-major, rows summing to 1/n) for the square cost matrix `cost`.
pub fn sinkhorn_plan(cost: &[f64], n: usize, reg: f64) -> Vec<f64> {
    let max = cost
        .iter()
        .copied()
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    // Shift each row by its minimum: it changes only the row scaling, and keeps the largest
    // kernel entry of every row at 1 (no row underflows to all zeros).
    let mut kernel: Vec<f64> = Vec::with_capacity(n * n);
    for row in cost.chunks_exact(n) {
        let low = row.iter().copied().fold(f64::INFINITY, f64::min);
        kernel.extend(row.iter().map(|c| (-(c - low) / (reg * max)).exp()));
    }
    let target = 1.0 / n as f64;
    let (mut a, mut b) = (vec![1.0f64; n], vec![1.0f64; n]);
    let mut col = vec![0.0f64; n];
    for _ in 0..1000 {
        for (ai, row) in a.iter_mut().zip(kernel.chunks_exact(n)) {
            let kb: f64 = row.iter().zip(&b).map(|(k, bj)| k * bj).sum();
            *ai = target / kb;
        }
        col.fill(0.0);
        for (ai, row) in a.iter().zip(kernel.chunks_exact(n)) {
            for (c, k) in col.iter_mut().zip(row) {
                *c += ai * k;
            }
        }
        // Rows are exact after the a-update; the columns tell how far from converged.
        let err = col
            .iter()
            .zip(&b)
            .map(|(c, bj)| (c * bj - target).abs())
            .fold(0.0, f64::max);
        for (bj, c) in b.iter_mut().zip(&col) {
            *bj = target / c;
        }
        if err < 1e-6 * target {
            break;
        }
    }
    kernel
        .chunks_exact(n)
        .zip(&a)
        .flat_map(|(row, ai)| row.iter().zip(&b).map(move |(k, bj)| ai * k * bj))
        .collect()
}
