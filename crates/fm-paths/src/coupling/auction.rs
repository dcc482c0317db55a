//! Bertsekas' auction algorithm with epsilon scaling, for dense square assignment problems.
//!
//! Each unassigned row bids for its best column `j1` (least `C[i, j] + p[j]`), raising the
//! price by the margin over its second best plus `eps`; the previous holder is outbid and bids
//! again. An assignment in which every row holds a column within `eps` of its best is within
//! `n eps` of optimal, so `eps` shrinks by a factor of 8 a phase, keeping the prices, down to
//! `tolerance / n`.

/// The column assigned to each row of the square cost matrix `cost` (`n x n`, row-major, finite
/// entries), with a total cost within `tolerance` of the optimum.
pub fn auction(cost: &[f64], n: usize, tolerance: f64) -> Vec<usize> {
    const NONE: usize = usize::MAX;
    let range = cost.iter().copied().fold(0.0f64, |m, c| m.max(c.abs()));
    if range == 0.0 {
        // Every assignment costs 0; with eps = 0 the rows would outbid each other forever.
        return (0..n).collect();
    }
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
            let (mut best, mut second, mut j1) = (f64::INFINITY, f64::INFINITY, 0);
            for (j, (c, p)) in row.iter().zip(&price).enumerate() {
                let v = c + p;
                if v < best {
                    second = best;
                    best = v;
                    j1 = j;
                } else if v < second {
                    second = v;
                }
            }
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
