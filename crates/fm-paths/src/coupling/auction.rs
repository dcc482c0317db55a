//! Bertsekas' auction algorithm with epsilon scaling, for dense square assignment problems.
//!
//! Each unassigned row bids for its best column `j1` (least `C[i, j] + p[j]`), raising the
//! price by the margin over its second best plus `eps`; the previous holder is outbid and bids
//! again. An assignment in which every row holds a column within `eps` of its best is within
//! `n eps` of optimal, so `eps` shrinks by a factor of 8 a phase, keeping the prices, down to
//! `tolerance / n`.

/// The column assigned to each row of the square cost matrix `cost` (`n x n`, row-major), with
/// a total cost within `tolerance` of the optimum.
pub fn auction(cost: &[f64], n: usize, tolerance: f64) -> Vec<usize> {
    const NONE: usize = usize::MAX;
    let range = cost.iter().copied().fold(0.0f64, |m, c| m.max(c.abs()));
    let final_eps = (tolerance / n as f64).max(f64::EPSILON * range);
    let mut eps = (range / 4.0).max(final_eps);
    let mut price = vec![0.0f64; n];
    let (mut col4row, mut row4col) = (vec![NONE; n], vec![NONE; n]);
    let mut queue: Vec<usize> = Vec::with_capacity(n);
    loop {
        col4row.fill(NONE);
        row4col.fill(NONE);
        queue.clear();
        queue.extend((0..n).rev());
        while let Some(i) = queue.pop() {
            let row = &cost[i * n..(i + 1) * n];
            let (best, second, j1) = best_two(row, &price);
            // With one column the margin is unbounded; any finite raise will do.
            let margin = if second.is_finite() {
                second - best
            } else {
                0.0
            };
            price[j1] += margin + eps;
            if row4col[j1] != NONE {
                let outbid = row4col[j1];
                col4row[outbid] = NONE;
                queue.push(outbid);
            }
            row4col[j1] = i;
            col4row[i] = j1;
        }
        if eps <= final_eps {
            return col4row;
        }
        eps = (eps / 8.0).max(final_eps);
    }
}

/// The least and second-least `row[j] + price[j]`, and where the least is.
///
/// Eight independent lanes keep a running least and second least without branches (`second =
/// min(second, max(best, v))`, then `best = min(best, v)`), which the compiler turns into packed
/// SIMD min/max: this scan is where the auction spends its time. A second pass finds the index.
fn best_two(row: &[f64], price: &[f64]) -> (f64, f64, usize) {
    const LANES: usize = 8;
    let mut best = [f64::INFINITY; LANES];
    let mut second = [f64::INFINITY; LANES];
    let (rows, prices) = (row.chunks_exact(LANES), price.chunks_exact(LANES));
    let (row_tail, price_tail) = (rows.remainder(), prices.remainder());
    for (c, p) in rows.zip(prices) {
        for k in 0..LANES {
            let v = c[k] + p[k];
            second[k] = second[k].min(best[k].max(v));
            best[k] = best[k].min(v);
        }
    }
    for (k, (c, p)) in row_tail.iter().zip(price_tail).enumerate() {
        let v = c + p;
        second[k] = second[k].min(best[k].max(v));
        best[k] = best[k].min(v);
    }
    let (lane, low) =
        best.iter().enumerate().fold(
            (0, f64::INFINITY),
            |(l, m), (k, &b)| if b < m { (k, b) } else { (l, m) },
        );
    let next = (0..LANES)
        .map(|k| {
            if k == lane {
                second[k]
            } else {
                best[k].min(second[k])
            }
        })
        .fold(f64::INFINITY, f64::min);
    let j1 = row
        .iter()
        .zip(price)
        .position(|(c, p)| c + p == low)
        .unwrap_or(0);
    (low, next, j1)
}
