//! Dual coordinate descent for L2-regularised logistic regression (Yu, Huang & Lin 2011; liblinear's
//! `solve_l2r_lr_dual`, scikit-learn's `LogisticRegression(solver='liblinear', dual=True)`).
//!
//! The dual has one variable per row, `0 < alpha_i < C_i`, with `w = sum_i y_i alpha_i x_i`. Each step
//! solves one row's one-variable subproblem by a few Newton steps and updates `w` along that row, so an
//! epoch costs one pass over the rows. Stops when the largest subproblem gradient of an epoch is below
//! `eps`. Rows are visited in a seeded random order, so results are deterministic.
//!
//! Three changes make an epoch cheaper than liblinear's; none changes the optimum:
//! - **Identical rows are merged** ([`DualRows`], [`Entry`]). `m` copies of a row with the same label add
//!   `m * C_i * loss(x_i . w)` to the primal, which is one row with weight `m * C_i`. Texts that differ
//!   only in case or in what the analyzers skip give identical rows, and resampled data sets repeat rows
//!   outright. Copies of a row are perfectly correlated coordinates: their dual variables must become
//!   equal, which coordinate descent does slowly, and the stopping test waits for it although `w` only
//!   depends on their sum (on the 100k bench set, a rare label took 57 epochs unmerged, 15 merged).
//!   A merged variable is visited `m` times per epoch while its row is inside the margin, about
//!   `sqrt(m)` times otherwise (see `visits`).
//! - **Columns are renumbered by falling document frequency** in the solver's copy of the matrix. Each
//!   step reads and writes `w` at every stored entry of a row, at random places; with the frequent
//!   columns packed together, most of those accesses hit a small, cache-resident part of `w`.
//! - **The copy lives on huge pages** ([`crate::mem::HugeVec`]) and the next row is prefetched: rows are
//!   visited in random order, so each one starts with a TLB and cache miss that the hardware prefetcher
//!   cannot hide.
//!
//! The stopping test takes the largest partial derivative of the dual at the current point of each
//! visit (liblinear takes it after a shift of the starting point, which keeps a settled variable above
//! `alpha > C/2` over `eps` for epochs). The weights come back in the caller's column order.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::mem::{prefetch, HugeVec};
use crate::text::csr::fill_rows_par;
use crate::text::CsrMatrix;

/// What [`solve`] reached.
#[derive(Clone, Copy, Debug)]
pub struct DualResult {
    /// Epochs taken.
    pub epochs: usize,
    /// Largest partial derivative of the dual over the visits of the last epoch.
    pub gmax: f64,
    /// True when `gmax < eps`.
    pub converged: bool,
}

/// A training matrix prepared once for [`solve`] and shared by every label fitted on it: its distinct
/// rows, with columns renumbered by falling document frequency, on huge pages.
pub struct DualRows {
    n_cols: usize,
    indptr: Vec<usize>,
    indices: HugeVec<u32>,
    data: HugeVec<f64>,
    /// `x_u . x_u` of each distinct row.
    sq_norm: Vec<f64>,
    /// The distinct row of each row of the original matrix.
    of_row: Vec<u32>,
    /// The new number of each original column.
    col_new: Vec<u32>,
}

impl DualRows {
    /// Prepares `x`: finds its distinct rows (same columns and bit-identical values) and renumbers the
    /// columns.
    pub fn new(x: &CsrMatrix) -> Self {
        let df = x
            .indices
            .par_chunks(1 << 20)
            .fold(|| vec![0u32; x.n_cols], |mut df, cols| {
                for &c in cols {
                    df[c as usize] += 1;
                }
                df
            })
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            })
            .unwrap_or_else(|| vec![0; x.n_cols]);
        let mut order: Vec<u32> = (0..x.n_cols as u32).collect();
        order.sort_unstable_by_key(|&c| (std::cmp::Reverse(df[c as usize]), c));
        let mut col_new = vec![0u32; x.n_cols];
        for (k, &c) in order.iter().enumerate() {
            col_new[c as usize] = k as u32;
        }
        // distinct rows, in order of first appearance: rows with equal hashes are compared in full
        let hashes: Vec<u64> = (0..x.n_rows).into_par_iter().map(|i| row_hash(x.row(i).0)).collect();
        let same = |i: usize, j: usize| {
            let ((ci, vi), (cj, vj)) = (x.row(i), x.row(j));
            ci == cj && vi.iter().zip(vj).all(|(a, b)| a.to_bits() == b.to_bits())
        };
        let mut first: HashMap<u64, u32> = HashMap::with_capacity(x.n_rows);
        // the next distinct row with the same hash, or u32::MAX
        let mut chain: Vec<u32> = Vec::new();
        let mut keep: Vec<usize> = Vec::new();
        let mut of_row = Vec::with_capacity(x.n_rows);
        for (i, &h) in hashes.iter().enumerate() {
            let mut u = *first.entry(h).or_insert(keep.len() as u32);
            let mut last = u32::MAX;
            while (u as usize) < keep.len() && !same(keep[u as usize], i) {
                last = u;
                u = chain[u as usize];
            }
            if u as usize >= keep.len() {
                u = keep.len() as u32;
                keep.push(i);
                chain.push(u32::MAX);
                if last != u32::MAX {
                    chain[last as usize] = u;
                }
            }
            of_row.push(u);
        }
        let mut indptr = Vec::with_capacity(keep.len() + 1);
        indptr.push(0);
        for &i in &keep {
            indptr.push(indptr.last().unwrap() + x.row(i).0.len());
        }
        let nnz = *indptr.last().unwrap();
        let mut indices = HugeVec::filled(0u32, nnz);
        let mut data = HugeVec::filled(0.0f64, nnz);
        fill_rows_par(&indptr, &mut indices, &mut data, |u, oi, od| {
            let (c, v) = x.row(keep[u]);
            for (o, &c) in oi.iter_mut().zip(c) {
                *o = col_new[c as usize];
            }
            od.copy_from_slice(v);
        });
        let sq_norm = keep.iter().map(|&i| x.row(i).1.iter().map(|v| v * v).sum()).collect();
        DualRows { n_cols: x.n_cols, indptr, indices, data, sq_norm, of_row, col_new }
    }

    /// Number of distinct rows.
    pub fn n_distinct(&self) -> usize {
        self.sq_norm.len()
    }

    /// Number of rows of the original matrix.
    pub fn n_rows(&self) -> usize {
        self.of_row.len()
    }

    /// The variables of one label: one [`Entry`] per distinct row whose copies agree on the label, one
    /// per copy for the others. `y` (+1/-1) and `c` are per original row.
    pub fn entries(&self, y: &[f64], c: &[f64]) -> Vec<Entry> {
        // summed C of the positive and of the negative copies of each distinct row
        let mut pn = vec![[0.0f64; 2]; self.n_distinct()];
        let mut m = vec![0u32; self.n_distinct()];
        for (i, &u) in self.of_row.iter().enumerate() {
            pn[u as usize][usize::from(y[i] > 0.0)] += c[i];
            m[u as usize] += 1;
        }
        let mut out: Vec<Entry> = Vec::with_capacity(self.n_distinct());
        for (u, &[n, p]) in pn.iter().enumerate() {
            match (p > 0.0, n > 0.0) {
                (true, false) => out.push(Entry { row: u as u32, y: 1.0, c: p, copies: m[u] }),
                (false, _) => out.push(Entry { row: u as u32, y: -1.0, c: n, copies: m[u] }),
                (true, true) => {}
            }
        }
        for (i, &u) in self.of_row.iter().enumerate() {
            let [n, p] = pn[u as usize];
            if p > 0.0 && n > 0.0 {
                out.push(Entry { row: u, y: y[i], c: c[i], copies: 1 });
            }
        }
        out
    }

    #[inline]
    fn row(&self, u: u32) -> (&[u32], &[f64]) {
        let (a, b) = (self.indptr[u as usize], self.indptr[u as usize + 1]);
        (&self.indices[a..b], &self.data[a..b])
    }

    /// Starts loading row `u` into cache: rows are visited in random order, so the hardware prefetcher
    /// cannot see the next one coming.
    #[inline]
    fn prefetch_row(&self, u: u32) {
        let (cols, vals) = self.row(u);
        for c in cols.chunks(16) {
            prefetch(&c[0]);
        }
        for v in vals.chunks(8) {
            prefetch(&v[0]);
        }
    }
}

/// One variable of the merged dual: a distinct row, its label (+1/-1), its weight `C` (the summed `C_i`
/// of the rows it stands for) and how many rows of the original matrix it stands for.
///
/// Only copies that agree on the label are merged. A row whose copies carry both labels keeps one
/// variable per copy: merged, it would be two variables on the same row with opposite labels, perfectly
/// anti-correlated, and coordinate descent zig-zags between such a pair for hundreds of epochs
/// (measured: 72 epochs instead of 20 on the 20k bench set).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    /// Distinct row.
    pub row: u32,
    /// +1 or -1.
    pub y: f64,
    /// Summed `C_i` of the row's copies.
    pub c: f64,
    /// Number of rows of the original matrix merged into this one.
    pub copies: u32,
}

/// Hash of a row's columns (FxHash-style multiply-rotate in four independent lanes; rows with equal
/// hashes are compared in full, values included).
fn row_hash(c: &[u32]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = [c.len() as u64, 1, 2, 3];
    let mut q = c.chunks_exact(4);
    for c4 in &mut q {
        for l in 0..4 {
            h[l] = (h[l].rotate_left(5) ^ c4[l] as u64).wrapping_mul(K);
        }
    }
    for (l, &c) in q.remainder().iter().enumerate() {
        h[l] = (h[l].rotate_left(5) ^ c as u64).wrapping_mul(K);
    }
    h.iter().fold(0u64, |a, &b| (a.rotate_left(5) ^ b).wrapping_mul(K))
}

/// Minimises the primal `0.5 |w|^2 + sum_e c_e ln(1 + exp(-y_e (x_e . w + bias * w_b)))` over the merged
/// rows `entries` of `rows` through its dual. Returns the weights in the original column order (with the
/// constant column's last when `bias != 0`).
pub fn solve(rows: &DualRows, entries: &[Entry], bias: f64, eps: f64, max_epochs: usize, seed: u64) -> (Vec<f64>, DualResult) {
    let l = entries.len();
    let nb = rows.n_cols;
    let dim = nb + usize::from(bias != 0.0);
    let mut w = vec![0.0; dim];
    // alpha[2i] = alpha_i, alpha[2i + 1] = C_i - alpha_i
    let mut alpha = vec![0.0; 2 * l];
    let dot = |w: &[f64], u: u32| -> f64 {
        let (cols, vals) = rows.row(u);
        // four partial sums, so that the adds do not wait on each other
        let mut s = [0.0f64; 4];
        let mut k = 0;
        while k + 4 <= cols.len() {
            for q in 0..4 {
                // SAFETY: renumbered columns are below n_cols and w has n_cols (+1) entries
                s[q] += vals[k + q] * unsafe { *w.get_unchecked(cols[k + q] as usize) };
            }
            k += 4;
        }
        for q in k..cols.len() {
            // SAFETY: as above
            s[0] += vals[q] * unsafe { *w.get_unchecked(cols[q] as usize) };
        }
        (s[0] + s[1]) + (s[2] + s[3]) + bias * if bias != 0.0 { w[nb] } else { 0.0 }
    };
    let axpy = |w: &mut [f64], u: u32, a: f64| {
        let (cols, vals) = rows.row(u);
        for (&c, &v) in cols.iter().zip(vals) {
            // SAFETY: as in `dot`
            unsafe { *w.get_unchecked_mut(c as usize) += a * v };
        }
        if bias != 0.0 {
            w[nb] += a * bias;
        }
    };
    let xtx: Vec<f64> = entries.iter().map(|e| rows.sq_norm[e.row as usize] + bias * bias).collect();
    for (i, e) in entries.iter().enumerate() {
        alpha[2 * i] = (0.001 * e.c).min(1e-8);
        alpha[2 * i + 1] = e.c - alpha[2 * i];
        axpy(&mut w, e.row, e.y * alpha[2 * i]);
    }
    let mut index: Vec<usize> = Vec::with_capacity(entries.iter().map(|e| e.copies as usize).sum());
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
    let mut res = DualResult { epochs: 0, gmax: f64::INFINITY, converged: false };
    while res.epochs < max_epochs {
        index.clear();
        for (i, e) in entries.iter().enumerate() {
            index.extend(std::iter::repeat(i).take(visits(e.copies, alpha[2 * i] / e.c)));
        }
        let l = index.len();
        for i in 0..l {
            let j = i + (next() % (l - i) as u64) as usize;
            index.swap(i, j);
        }
        let mut newton_iter = 0;
        let mut gmax = 0f64;
        for (k, &i) in index.iter().enumerate() {
            if let Some(&n) = index.get(k + 1) {
                rows.prefetch_row(entries[n].row);
            }
            let Entry { row, y, c: ci, .. } = entries[i];
            let (a, b) = (xtx[i], y * dot(&w, row));
            let (mut ind1, mut ind2, mut sign) = (2 * i, 2 * i + 1, 1.0);
            if 0.5 * a * (alpha[ind2] - alpha[ind1]) + b < 0.0 {
                (ind1, ind2, sign) = (2 * i + 1, 2 * i, -1.0);
            }
            let alpha_old = alpha[ind1];
            // the optimality measure is the dual's partial derivative at the current point (liblinear
            // takes it after the shift below, which keeps a settled row with alpha > C/2 above `eps`)
            let g = sign * b + (alpha_old / (ci - alpha_old)).ln();
            gmax = gmax.max(g.abs());
            let mut z = alpha_old;
            // the Newton steps start from the current point (where the gradient is `g`), or, past C/2, from
            // a tenth of it
            let mut gp = g;
            if ci - z < 0.5 * ci {
                z *= 0.1;
                gp = a * (z - alpha_old) + sign * b + (z / (ci - z)).ln();
            }
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
                axpy(&mut w, row, sign * (z - alpha_old) * y);
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
    let mut out = vec![0.0; dim];
    for (old, &new) in rows.col_new.iter().enumerate() {
        out[old] = w[new as usize];
    }
    if bias != 0.0 {
        out[nb] = w[nb];
    }
    (out, res)
}

/// Visits in the next epoch of a variable that merges `copies` rows and whose `alpha` is the fraction
/// `share` of its `C`. A row inside the margin (`share > 1 / (1 + e)`, that is `y x . w < 1` at the
/// optimum: the rows that still move `w`) is visited once per copy, as its copies would be; any other
/// row round(sqrt(copies)) times. Fit time of the five labels at 100k rows (the 20k set has few copies):
///
/// | visits | epochs (relevant, ads, irrelevant, non_visit, spam) | fit |
/// |---|---|---|
/// | once per copy | 18, 15, 38, 14, 16 | 6.7-7.0 s |
/// | sqrt | 32, 16, 50, 16, 16 | 4.8-5.1 s |
/// | once per copy inside the margin, else sqrt | 21, 15, 39, 15, 17 | 4.4 s |
///
/// Once for every row was worse still (the balanced labels took 84-95 epochs).
fn visits(copies: u32, share: f64) -> usize {
    const MARGIN: f64 = 0.268_941_421_369_995_1; // 1 / (1 + e)
    if share > MARGIN {
        copies as usize
    } else {
        ((copies as f64).sqrt().round() as usize).max(1)
    }
}
