//! Dual coordinate descent for L2-regularised logistic regression (Yu, Huang & Lin 2011; liblinear's
//! `solve_l2r_lr_dual`, scikit-learn's `LogisticRegression(solver='liblinear', dual=True)`).
//!
//! The dual has one variable per row, `0 < alpha_i < C_i`, with `w = sum_i y_i alpha_i x_i`. Each step
//! solves one row's one-variable subproblem by a few Newton steps and updates `w` along that row, so an
//! epoch costs one pass over the rows. Stops when the largest subproblem gradient of an epoch is below
//! `eps`. Rows are visited in a seeded random order, so results are deterministic.

use crate::text::CsrMatrix;

/// What [`solve`] reached.
#[derive(Clone, Copy, Debug)]
pub struct DualResult {
    /// Epochs taken.
    pub epochs: usize,
    /// Largest subproblem gradient in the last epoch.
    pub gmax: f64,
    /// True when `gmax < eps`.
    pub converged: bool,
}

/// Minimises the primal `0.5 |w|^2 + sum_i c_i ln(1 + exp(-y_i (x_i . w + bias * w_b)))` through its dual.
/// `y` is +1/-1 per row; returns the weights (with the constant column's last when `bias != 0`).
pub fn solve(
    x: &CsrMatrix,
    y: &[f64],
    c: &[f64],
    bias: f64,
    eps: f64,
    max_epochs: usize,
    seed: u64,
) -> (Vec<f64>, DualResult) {
    let l = x.n_rows;
    let nb = x.n_cols;
    let dim = nb + usize::from(bias != 0.0);
    let mut w = vec![0.0; dim];
    // alpha[2i] = alpha_i, alpha[2i + 1] = C_i - alpha_i
    let mut alpha = vec![0.0; 2 * l];
    let mut xtx = vec![0.0; l];
    let dot = |w: &[f64], i: usize| -> f64 {
        let (cols, vals) = x.row(i);
        let mut s = 0.0;
        for (&c, &v) in cols.iter().zip(vals) {
            s += v * w[c as usize];
        }
        if bias != 0.0 {
            s += bias * w[nb];
        }
        s
    };
    let axpy = |w: &mut [f64], i: usize, a: f64| {
        let (cols, vals) = x.row(i);
        for (&c, &v) in cols.iter().zip(vals) {
            w[c as usize] += a * v;
        }
        if bias != 0.0 {
            w[nb] += a * bias;
        }
    };
    for i in 0..l {
        alpha[2 * i] = (0.001 * c[i]).min(1e-8);
        alpha[2 * i + 1] = c[i] - alpha[2 * i];
        let (_, vals) = x.row(i);
        xtx[i] = vals.iter().map(|v| v * v).sum::<f64>() + bias * bias;
        axpy(&mut w, i, y[i] * alpha[2 * i]);
    }
    let mut index: Vec<usize> = (0..l).collect();
    let mut rng = seed;
    let mut next = || {
        rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    const MAX_INNER: usize = 100;
    const ETA: f64 = 0.1;
    let mut innereps = 1e-2;
    let innereps_min = eps.min(1e-8);
    let mut res = DualResult {
        epochs: 0,
        gmax: f64::INFINITY,
        converged: false,
    };
    while res.epochs < max_epochs {
        for i in 0..l {
            let j = i + (next() % (l - i) as u64) as usize;
            index.swap(i, j);
        }
        let mut newton_iter = 0;
        let mut gmax = 0f64;
        for &i in &index {
            let ci = c[i];
            let (a, b) = (xtx[i], y[i] * dot(&w, i));
            let (mut ind1, mut ind2, mut sign) = (2 * i, 2 * i + 1, 1.0);
            if 0.5 * a * (alpha[ind2] - alpha[ind1]) + b < 0.0 {
                (ind1, ind2, sign) = (2 * i + 1, 2 * i, -1.0);
            }
            let alpha_old = alpha[ind1];
            let mut z = alpha_old;
            if ci - z < 0.5 * ci {
                z *= 0.1;
            }
            let mut gp = a * (z - alpha_old) + sign * b + (z / (ci - z)).ln();
            gmax = gmax.max(gp.abs());
            let mut inner = 0;
            while inner <= MAX_INNER {
                if gp.abs() < innereps {
                    break;
                }
                let gpp = a + ci / (ci - z) / z;
                let t = z - gp / gpp;
                z = if t <= 0.0 { z * ETA } else { t };
                gp = a * (z - alpha_old) + sign * b + (z / (ci - z)).ln();
                newton_iter += 1;
                inner += 1;
            }
            if inner > 0 {
                alpha[ind1] = z;
                alpha[ind2] = ci - z;
                axpy(&mut w, i, sign * (z - alpha_old) * y[i]);
            }
        }
        res.epochs += 1;
        res.gmax = gmax;
        if gmax < eps {
            res.converged = true;
            break;
        }
        if newton_iter <= l / 10 {
            innereps = innereps_min.max(0.1 * innereps);
        }
    }
    (w, res)
}
