//! Dual coordinate descent for L2-regularised logistic regression (Yu, Huang & Lin 2011; liblinear's
//! `solve_l2r_lr_dual`, scikit-learn's `LogisticRegression(solver='liblinear', dual=True)`).
//!
//! The dual has one variable per row, `0 < alpha_i < C_i`, with `w = sum_i y_i alpha_i x_i`. Each step
//! solves one row's one-variable subproblem by a few Newton steps and updates `w` along that row, so an
//! epoch costs one pass over the rows. Stops when the largest subproblem gradient of an epoch is below
//! `eps`. Rows are visited in a seeded random order, so results are deterministic.
//!
//! Four changes make an epoch cheaper than liblinear's; none changes the optimum:
//! - **Identical rows are merged** ([`DualRows`], [`Entry`]). `m` copies of a row with the same label add
//!   `m * C_i * loss(x_i . w)` to the primal, which is one row with weight `m * C_i`. Texts that differ
//!   only in case or in what the analyzers skip give identical rows, and resampled data sets repeat rows
//!   outright. Copies of a row are perfectly correlated coordinates: their dual variables must become
//!   equal, which coordinate descent does slowly, and the stopping test waits for it although `w` only
//!   depends on their sum, so a rare label takes several times fewer epochs merged.
//!   A merged variable is visited `m` times per epoch while its row is inside the margin, about
//!   `sqrt(m)` times otherwise (see `visits`).
//! - **Columns are renumbered by falling document frequency** in the solver's copy of the matrix. Each
//!   step reads and writes `w` at every stored entry of a row, at random places; with the frequent
//!   columns packed together, most of those accesses hit a small, cache-resident part of `w`.
//! - **Values are stored once per run, not per entry.** A tf-idf entry is `count * idf_j * norm_i`;
//!   given the idf as column factors, a row is a few runs of columns that share `count * norm_i`
//!   ([`DualRows`]), and the solver keeps `idf_j w_j`. Streaming a row then reads 4 bytes per entry
//!   instead of 12.
//! - **The copy lives on huge pages** ([`crate::mem::HugeVec`]) and the next row is prefetched: rows are
//!   visited in random order, so each one starts with a TLB and cache miss that the hardware prefetcher
//!   cannot hide. A row is one block (its run table, then its columns), and what a visit reads of its
//!   variable (`alpha`, `x.x`, `y`, `C`, where the row lives) is one cache line (`Var`), prefetched two
//!   visits ahead.
//!
//! [`DualSolver`] runs one epoch at a time, so that [`crate::linear::LogRegParams::fit_many`] can hand
//! labels between threads between epochs; a label's epochs do not depend on the thread that runs them.
//!
//! The measurements behind these choices, and the command that reproduces them, are in
//! docs/performance.md.
//!
//! The stopping test takes the largest partial derivative of the dual at the current point of each
//! visit (liblinear takes it after a shift of the starting point, which keeps a settled variable above
//! `alpha > C/2` over `eps` for epochs). The weights come back in the caller's column order.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::rng::SplitMix64;
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
/// rows, with columns renumbered by falling document frequency, each row stored as runs of columns that
/// share one factor, on huge pages.
///
/// A tf-idf entry is `count * idf_j * s_i` (`s_i` the row's norm, one per vectorizer), so given the
/// column factors `f_j = idf_j` a row has only a few distinct `x_ij / f_j`: one per (vectorizer,
/// count). Each run stores that factor once and its columns without values, and the solver works on
/// `v_j = f_j w_j`, so that `x_i . w = sum over runs of factor * sum of v_j`: 4 bytes streamed per entry
/// instead of 12. A row is one block of 32-bit words, its run table (end and factor of each run) then
/// its columns run by run, so that one prefetch brings both. Without column factors (`f_j = 1`) a binary
/// matrix is one run per row, and any matrix at worst one run per entry.
pub struct DualRows {
    n_cols: usize,
    /// Block of distinct row `u`: `block_ptr[u]..block_ptr[u + 1]` of `data`.
    block_ptr: Vec<usize>,
    /// The blocks: [`RUN_WORDS`] words per run (its end, counted in entries from the row's first
    /// column, and the two halves of its factor's bits), then the renumbered columns, run by run.
    data: HugeVec<u32>,
    /// Number of runs of each distinct row.
    n_seg: Vec<u32>,
    /// Column factor `f_j`, by renumbered column.
    col_scale: Vec<f64>,
    /// `f_j^2`, by renumbered column, in `f32`: the updates gather it at every entry of a row, and half
    /// the table stays in cache better. Rounded, it scales column `j` of the problem by a fixed `1 + e_j`,
    /// `|e_j| < 6e-8`: no error builds up.
    col_sq: Vec<f32>,
    /// `x_u . x_u` of each distinct row.
    sq_norm: Vec<f64>,
    /// The distinct row of each row of the original matrix.
    of_row: Vec<u32>,
    /// The new number of each original column.
    col_new: Vec<u32>,
}

/// Where a distinct row lives in [`DualRows`]: its block's first word, its runs and its entries.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: usize,
    n_seg: u32,
    len: u32,
}

/// Words per run in a row's run table.
const RUN_WORDS: usize = 3;

/// Entries whose `x_ij / f_j` are within this relative distance share a run (and its first entry's
/// factor): far below what moves the optimum, far above the rounding of `count * idf * s / idf`.
const RUN_TOL: f64 = 1e-13;
/// A new entry is compared with this many runs at most; past that, an entry that matches none gets a
/// run of its own that later entries do not search (rows of arbitrary real values stay linear).
const RUN_SEARCH: usize = 32;

/// The runs of one row: each entry's run and each run's factor and length.
#[derive(Default)]
struct Runs {
    scale: Vec<f64>,
    len: Vec<u32>,
    of: Vec<u32>,
}

impl Runs {
    /// Groups the entries of a row by `x_ij / f_j` (computed as `x_ij * inv_f[j]`), in order of first
    /// appearance.
    fn of_row(&mut self, cols: &[u32], vals: &[f64], inv_f: &[f64]) {
        self.scale.clear();
        self.len.clear();
        self.of.clear();
        let mut last = 0usize;
        for (&c, &v) in cols.iter().zip(vals) {
            let r = v * inv_f[c as usize];
            let close = |s: f64| (r - s).abs() <= RUN_TOL * s.abs();
            let g = if last < self.scale.len() && close(self.scale[last]) {
                last
            } else if let Some(g) = self.scale[..self.scale.len().min(RUN_SEARCH)].iter().position(|&s| close(s)) {
                g
            } else {
                self.scale.push(r);
                self.len.push(0);
                self.scale.len() - 1
            };
            last = g;
            self.len[g] += 1;
            self.of.push(g as u32);
        }
    }
}

impl DualRows {
    /// Prepares `x`: finds its distinct rows (same columns and bit-identical values), renumbers the
    /// columns and splits each row into runs that share a factor of `col_scale`: one positive factor per
    /// column, such that each row's entries are few distinct multiples of their columns' factors (the
    /// idf of a tf-idf matrix, [`crate::text::FittedTextFeatures::idf`]). Only speed depends on
    /// `col_scale`: `None` takes 1 for every column, and factors that are not finite and positive
    /// count as 1.
    ///
    /// # Panics
    /// If `col_scale` does not have one factor per column of `x`.
    pub fn new(x: &CsrMatrix, col_scale: Option<&[f64]>) -> Self {
        if let Some(f) = col_scale {
            assert_eq!(f.len(), x.n_cols, "col_scale has {} factors for {} columns", f.len(), x.n_cols);
        }
        let f: Vec<f64> = match col_scale {
            Some(f) => f.iter().map(|&f| if f.is_finite() && f > 0.0 { f } else { 1.0 }).collect(),
            None => vec![1.0; x.n_cols],
        };
        let inv_f: Vec<f64> = f.iter().map(|f| 1.0 / f).collect();
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
        order.par_sort_unstable_by_key(|&c| (std::cmp::Reverse(df[c as usize]), c));
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
        // each distinct row in one parallel pass: its block (run table, then its columns grouped by run),
        // and x_u . x_u; then the blocks side by side in one table
        let per_row: Vec<(Vec<u32>, u32, f64)> = keep
            .par_iter()
            .map_init(Runs::default, |g, &i| {
                let (c, v) = x.row(i);
                g.of_row(c, v, &inv_f);
                let n_seg = g.scale.len();
                let mut block = vec![0u32; RUN_WORDS * n_seg + c.len()];
                let (table, cols) = block.split_at_mut(RUN_WORDS * n_seg);
                // next free place of each run; once every column is placed, the end of each run
                let mut next: Vec<u32> = g
                    .len
                    .iter()
                    .scan(0, |start, &n| {
                        *start += n;
                        Some(*start - n)
                    })
                    .collect();
                for (&c, &r) in c.iter().zip(&g.of) {
                    cols[next[r as usize] as usize] = col_new[c as usize];
                    next[r as usize] += 1;
                }
                for ((t, &end), &scale) in table.chunks_exact_mut(RUN_WORDS).zip(&next).zip(&g.scale) {
                    let b = scale.to_bits();
                    t.copy_from_slice(&[end, b as u32, (b >> 32) as u32]);
                }
                (block, n_seg as u32, v.iter().map(|v| v * v).sum())
            })
            .collect();
        let mut block_ptr = Vec::with_capacity(keep.len() + 1);
        block_ptr.push(0);
        for (b, _, _) in &per_row {
            block_ptr.push(block_ptr.last().unwrap() + b.len());
        }
        let len = *block_ptr.last().unwrap();
        let mut data = HugeVec::<std::mem::MaybeUninit<u32>>::uninit(len);
        // (`fill_rows_par` hands out parts of two arrays; the second is of zero-sized `()`)
        fill_rows_par(&block_ptr, &mut data, &mut vec![(); len], |u, out, _| {
            for (o, &w) in out.iter_mut().zip(&per_row[u].0) {
                o.write(w);
            }
        });
        // SAFETY: `fill_rows_par` handed out every word of the table once, each row's block of its length
        let data = unsafe { data.assume_init() };
        let n_seg: Vec<u32> = per_row.iter().map(|r| r.1).collect();
        let sq_norm = per_row.iter().map(|r| r.2).collect();
        let mut col_scale = vec![1.0; x.n_cols];
        for (c, &n) in col_new.iter().enumerate() {
            col_scale[n as usize] = f[c];
        }
        let col_sq = col_scale.iter().map(|f| (f * f) as f32).collect();
        DualRows { n_cols: x.n_cols, block_ptr, data, n_seg, col_scale, col_sq, sq_norm, of_row, col_new }
    }

    /// Number of distinct rows.
    pub fn n_distinct(&self) -> usize {
        self.sq_norm.len()
    }

    /// Number of runs over all distinct rows (see [`DualRows`]): the solver's per-row bookkeeping, a
    /// few per row when the column factors fit the matrix.
    pub fn n_runs(&self) -> usize {
        self.n_seg.iter().map(|&n| n as usize).sum()
    }

    /// Number of stored entries over all distinct rows.
    pub fn nnz(&self) -> usize {
        self.data.len() - RUN_WORDS * self.n_runs()
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

    /// Where distinct row `u` lives.
    #[inline]
    fn span(&self, u: u32) -> Span {
        let u = u as usize;
        let (start, n_seg) = (self.block_ptr[u], self.n_seg[u]);
        Span { start, n_seg, len: (self.block_ptr[u + 1] - start - RUN_WORDS * n_seg as usize) as u32 }
    }

    /// Columns and run table of a row.
    #[inline]
    fn row(&self, r: &Span) -> (&[u32], &[u32]) {
        let table = RUN_WORDS * r.n_seg as usize;
        let block = &self.data[r.start..r.start + table + r.len as usize];
        let (table, cols) = block.split_at(table);
        (cols, table)
    }

    /// End (in entries from the row's first column) and factor of each run of a run table.
    #[inline]
    fn runs(table: &[u32]) -> impl Iterator<Item = (usize, f64)> + '_ {
        table.chunks_exact(RUN_WORDS).map(|t| (t[0] as usize, f64::from_bits(u64::from(t[1]) | u64::from(t[2]) << 32)))
    }

    /// `x_u . w`, given `v_j = f_j w_j`.
    #[inline]
    fn dot(&self, v: &[f64], r: &Span) -> f64 {
        let (cols, table) = self.row(r);
        let mut start = 0;
        let mut acc = 0.0;
        for (end, scale) in Self::runs(table) {
            let run = &cols[start..end];
            // four partial sums, so that the adds do not wait on each other
            let mut p = [0.0f64; 4];
            let mut q4 = run.chunks_exact(4);
            for c in &mut q4 {
                for q in 0..4 {
                    // SAFETY: renumbered columns are below n_cols, and v has n_cols (+1) entries
                    p[q] += unsafe { *v.get_unchecked(c[q] as usize) };
                }
            }
            for &c in q4.remainder() {
                // SAFETY: as above
                p[0] += unsafe { *v.get_unchecked(c as usize) };
            }
            acc += scale * ((p[0] + p[1]) + (p[2] + p[3]));
            start = end;
        }
        acc
    }

    /// `w += a x_u`, given `v_j = f_j w_j`: `v_j += a * factor * f_j^2`.
    #[inline]
    fn axpy(&self, v: &mut [f64], r: &Span, a: f64) {
        let (cols, table) = self.row(r);
        let mut start = 0;
        for (end, scale) in Self::runs(table) {
            let t = a * scale;
            for &c in &cols[start..end] {
                // SAFETY: as in `dot`; col_sq has n_cols entries
                unsafe { *v.get_unchecked_mut(c as usize) += t * f64::from(*self.col_sq.get_unchecked(c as usize)) };
            }
            start = end;
        }
    }

    /// Starts loading row `u` into cache: rows are visited in random order, so the hardware prefetcher
    /// cannot see the next one coming.
    #[inline]
    fn prefetch_row(&self, r: &Span) {
        let block = &self.data[r.start..r.start + RUN_WORDS * r.n_seg as usize + r.len as usize];
        for c in block.chunks(16) {
            prefetch(&c[0]);
        }
    }
}

/// One variable of the merged dual: a distinct row, its label (+1/-1), its weight `C` (the summed `C_i`
/// of the rows it stands for) and how many rows of the original matrix it stands for.
///
/// Only copies that agree on the label are merged. A row whose copies carry both labels keeps one
/// variable per copy: merged, it would be two variables on the same row with opposite labels, perfectly
/// anti-correlated, and coordinate descent zig-zags between such a pair for many epochs.
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

/// The problem's constant column and the stopping rules of [`solve`] (like [`super::tron::TronParams`] for
/// the trust-region method).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DualParams {
    /// Value of the constant column (`intercept_scaling`; 0: no intercept).
    pub bias: f64,
    /// Stop when an epoch's largest partial derivative of the dual is below this.
    pub eps: f64,
    /// Stop after this many epochs at the latest.
    pub max_epochs: usize,
    /// Seed of the visiting order ([`crate::rng::SplitMix64`]).
    pub seed: u64,
}

/// Minimises the primal `0.5 |w|^2 + sum_e c_e ln(1 + exp(-y_e (x_e . w + bias * w_b)))` over the merged
/// rows `entries` of `rows` through its dual. Returns the weights in the original column order (with the
/// constant column's last when `bias != 0`).
pub fn solve(rows: &DualRows, entries: &[Entry], params: &DualParams) -> (Vec<f64>, DualResult) {
    let mut s = DualSolver::new(rows, entries, params);
    while !s.done() {
        s.epoch();
    }
    s.finish()
}

/// [`solve`] one epoch at a time, so that a scheduler can hand labels between threads between epochs
/// (see [`crate::linear::LogRegParams::fit_many`]). The epochs, and so the result, are the same whoever
/// runs them.
pub struct DualSolver<'a> {
    rows: &'a DualRows,
    entries: &'a [Entry],
    bias: f64,
    eps: f64,
    max_epochs: usize,
    /// The solver's weights: `v_j = f_j w_j` (see [`DualRows`]), then the constant column's.
    w: Vec<f64>,
    var: Vec<Var>,
    index: Vec<usize>,
    rng: SplitMix64,
    innereps: f64,
    res: DualResult,
    /// `ln(gmax)` of each epoch so far.
    log_gmax: Vec<f64>,
}

impl<'a> DualSolver<'a> {
    /// The starting point of [`solve`].
    pub fn new(rows: &'a DualRows, entries: &'a [Entry], params: &DualParams) -> Self {
        let DualParams { bias, eps, max_epochs, seed } = *params;
        let nb = rows.n_cols;
        let mut w = vec![0.0; nb + usize::from(bias != 0.0)];
        // what a visit of variable i reads and writes, in one cache line (visits are in random order)
        let var: Vec<Var> = entries
            .iter()
            .map(|e| {
                let a = (0.001 * e.c).min(1e-8);
                Var { alpha: [a, e.c - a], xtx: rows.sq_norm[e.row as usize] + bias * bias, y: e.y, c: e.c, row: rows.span(e.row) }
            })
            .collect();
        for v in &var {
            axpy(rows, bias, &mut w, &v.row, v.y * v.alpha[0]);
        }
        let index = Vec::with_capacity(entries.iter().map(|e| e.copies as usize).sum());
        let res = DualResult { epochs: 0, gmax: f64::INFINITY, converged: false };
        DualSolver { rows, entries, bias, eps, max_epochs, w, var, index, rng: SplitMix64::new(seed), innereps: 1e-2, res, log_gmax: Vec::new() }
    }

    /// True once converged or out of epochs.
    pub fn done(&self) -> bool {
        self.res.converged || self.res.epochs >= self.max_epochs
    }

    /// Where it stands.
    pub fn result(&self) -> DualResult {
        self.res
    }

    /// A guess of the epochs left: the distance of `ln(gmax)` to `ln(eps)` over its fall per epoch in
    /// the last three epochs (the fall is about constant after the first few). Infinite before two
    /// epochs, zero when done. Only for scheduling.
    pub fn epochs_left(&self) -> f64 {
        if self.done() {
            return 0.0;
        }
        let n = self.log_gmax.len();
        if n < 2 {
            return f64::INFINITY;
        }
        let k = (n - 1).min(3);
        let fall = ((self.log_gmax[n - 1 - k] - self.log_gmax[n - 1]) / k as f64).max(0.05);
        ((self.log_gmax[n - 1] - self.eps.ln()) / fall).max(1.0)
    }

    /// One epoch: every variable visited (merged ones `visits` times) in a fresh seeded random order,
    /// each by a few Newton steps on its one-variable subproblem.
    pub fn epoch(&mut self) {
        const MAX_INNER: usize = 100;
        const ETA: f64 = 0.1;
        let (rows, bias) = (self.rows, self.bias);
        let innereps_min = self.eps.min(1e-8);
        let (w, var, index) = (&mut self.w, &mut self.var, &mut self.index);
        index.clear();
        for (i, e) in self.entries.iter().enumerate() {
            index.extend(std::iter::repeat_n(i, visits(e.copies, var[i].alpha[0] / e.c)));
        }
        let l = index.len();
        self.rng.shuffle_prefix(index, l);
        let mut newton_iter = 0;
        let mut gmax = 0f64;
        for (k, &i) in index.iter().enumerate() {
            if let Some(&n) = index.get(k + 2) {
                prefetch(&var[n]);
            }
            if let Some(&n) = index.get(k + 1) {
                rows.prefetch_row(&var[n].row);
            }
            let v = &mut var[i];
            let (a, ci, y) = (v.xtx, v.c, v.y);
            let b = y * dot(rows, bias, w, &v.row);
            let (mut ind1, mut ind2, mut sign) = (0, 1, 1.0);
            if 0.5 * a * (v.alpha[ind2] - v.alpha[ind1]) + b < 0.0 {
                (ind1, ind2, sign) = (1, 0, -1.0);
            }
            let alpha_old = v.alpha[ind1];
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
                if gp.abs() < self.innereps {
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
                v.alpha[ind1] = z;
                v.alpha[ind2] = ci - z;
                axpy(rows, bias, w, &v.row, sign * (z - alpha_old) * y);
            }
        }
        self.res.epochs += 1;
        self.res.gmax = gmax;
        self.log_gmax.push(gmax.max(f64::MIN_POSITIVE).ln());
        if gmax < self.eps {
            self.res.converged = true;
        } else if newton_iter <= l / 10 {
            self.innereps = innereps_min.max(0.1 * self.innereps);
        }
    }

    /// The weights in the original column order (with the constant column's last when `bias != 0`),
    /// and where the solver stopped.
    pub fn finish(self) -> (Vec<f64>, DualResult) {
        let (rows, nb) = (self.rows, self.rows.n_cols);
        let mut out = vec![0.0; self.w.len()];
        for (old, &new) in rows.col_new.iter().enumerate() {
            out[old] = self.w[new as usize] / rows.col_scale[new as usize];
        }
        if self.bias != 0.0 {
            out[nb] = self.w[nb];
        }
        (out, self.res)
    }
}

/// `x_r . w` with the constant column, given the solver's weights.
#[inline]
fn dot(rows: &DualRows, bias: f64, w: &[f64], r: &Span) -> f64 {
    rows.dot(w, r) + if bias != 0.0 { bias * w[rows.n_cols] } else { 0.0 }
}

/// `w += a x_r` with the constant column, on the solver's weights.
#[inline]
fn axpy(rows: &DualRows, bias: f64, w: &mut [f64], r: &Span, a: f64) {
    rows.axpy(w, r, a);
    if bias != 0.0 {
        w[rows.n_cols] += a * bias;
    }
}

/// One dual variable as [`solve`] keeps it: `alpha_i` and `C_i - alpha_i`, `x_i . x_i` (with the
/// constant column), the label, `C_i` and where its row lives. 64 bytes, one cache line.
#[repr(C, align(64))]
struct Var {
    alpha: [f64; 2],
    xtx: f64,
    y: f64,
    c: f64,
    row: Span,
}

/// Visits in the next epoch of a variable that merges `copies` rows and whose `alpha` is the fraction
/// `share` of its `C`. A row inside the margin (`share > 1 / (1 + e)`, that is `y x . w < 1` at the
/// optimum: the rows that still move `w`) is visited once per copy, as its copies would be; any other
/// row round(sqrt(copies)) times: fewer visits where they do not move `w`, without the extra epochs of
/// visiting every row sqrt(copies) times.
fn visits(copies: u32, share: f64) -> usize {
    const MARGIN: f64 = 0.268_941_421_369_995_1; // 1 / (1 + e)
    if share > MARGIN {
        copies as usize
    } else {
        ((copies as f64).sqrt().round() as usize).max(1)
    }
}
