//! A compressed sparse row matrix of `f64`: what the vectorizers produce and the solver consumes.
//!
//! Same layout as scipy's `csr_matrix` (`indptr`, `indices`, `data`; column indices sorted within a row),
//! so it maps one to one onto what scikit-learn builds and can be saved for Python.

use std::mem::MaybeUninit;

use anyhow::{ensure, Result};
use rayon::prelude::*;

/// Sparse matrix in CSR layout with sorted column indices in each row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsrMatrix {
    /// Number of rows.
    pub n_rows: usize,
    /// Number of columns.
    pub n_cols: usize,
    /// Row `i` owns entries `indptr[i]..indptr[i + 1]`; `n_rows + 1` long.
    pub indptr: Vec<usize>,
    /// Column of each stored entry.
    pub indices: Vec<u32>,
    /// Value of each stored entry.
    pub data: Vec<f64>,
}

impl CsrMatrix {
    /// An empty `0 x n_cols` matrix.
    pub fn empty(n_cols: usize) -> Self {
        CsrMatrix { n_rows: 0, n_cols, indptr: vec![0], indices: Vec::new(), data: Vec::new() }
    }

    /// Builds a matrix from per-row `(column, value)` lists (columns sorted, below `n_cols`).
    pub fn from_rows(n_cols: usize, rows: Vec<Vec<(u32, f64)>>) -> Self {
        Self::build(n_cols, rows.iter().map(|r| r.len()), |i, cols, vals| {
            for ((c, v), &(col, val)) in cols.iter_mut().zip(vals.iter_mut()).zip(&rows[i]) {
                c.write(col);
                v.write(val);
            }
        })
    }

    /// A matrix whose row `i` has `lens[i]` entries, all written by `fill(i, columns, values)`. Rows are
    /// filled in parallel, straight into the final arrays: the vectorizers' matrices have tens of
    /// millions of entries, and copying them on one thread took a quarter of a fit.
    pub(crate) fn build(
        n_cols: usize,
        lens: impl Iterator<Item = usize>,
        fill: impl Fn(usize, &mut [MaybeUninit<u32>], &mut [MaybeUninit<f64>]) + Sync,
    ) -> Self {
        let mut indptr = vec![0usize];
        indptr.extend(lens.scan(0usize, |end, n| {
            *end += n;
            Some(*end)
        }));
        let n_rows = indptr.len() - 1;
        let nnz = indptr[n_rows];
        let mut indices: Vec<u32> = Vec::with_capacity(nnz);
        let mut data: Vec<f64> = Vec::with_capacity(nnz);
        fill_rows_par(&indptr, &mut indices.spare_capacity_mut()[..nnz], &mut data.spare_capacity_mut()[..nnz], fill);
        // SAFETY: `fill_rows_par` hands out every entry of 0..nnz once, and `fill` wrote every entry of
        // its row (both callers copy exactly `lens[i]` entries)
        unsafe {
            indices.set_len(nnz);
            data.set_len(nnz);
        }
        CsrMatrix { n_rows, n_cols, indptr, indices, data }
    }

    /// Builds a matrix from raw CSR arrays, checking their consistency.
    pub fn from_parts(n_rows: usize, n_cols: usize, indptr: Vec<usize>, indices: Vec<u32>, data: Vec<f64>) -> Result<Self> {
        ensure!(indptr.len() == n_rows + 1, "indptr has {} entries, expected {}", indptr.len(), n_rows + 1);
        ensure!(indices.len() == data.len(), "indices ({}) and data ({}) differ in length", indices.len(), data.len());
        ensure!(indptr[0] == 0 && *indptr.last().unwrap() == data.len(), "indptr does not span the data");
        ensure!(indptr.windows(2).all(|w| w[0] <= w[1]), "indptr is not monotone");
        ensure!(indices.iter().all(|&c| (c as usize) < n_cols), "a column index is out of range");
        Ok(CsrMatrix { n_rows, n_cols, indptr, indices, data })
    }

    /// Sparse copy of a dense matrix (zeros are not stored).
    pub fn from_dense(a: &ndarray::ArrayView2<f64>) -> Self {
        let rows = a
            .outer_iter()
            .map(|r| r.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(c, &v)| (c as u32, v)).collect())
            .collect();
        CsrMatrix::from_rows(a.ncols(), rows)
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.data.len()
    }

    /// Column indices and values of row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.data[a..b])
    }

    /// `x_i . w` for row `i` (`w` at least `n_cols` long).
    #[inline]
    pub fn row_dot(&self, i: usize, w: &[f64]) -> f64 {
        let (c, v) = self.row(i);
        c.iter().zip(v).map(|(&c, &v)| v * w[c as usize]).sum()
    }

    /// The rows at `idx`, in that order.
    pub fn select_rows(&self, idx: &[usize]) -> CsrMatrix {
        let mut m = CsrMatrix { n_rows: idx.len(), n_cols: self.n_cols, indptr: Vec::with_capacity(idx.len() + 1), ..Default::default() };
        m.indptr.push(0);
        for &i in idx {
            let (c, v) = self.row(i);
            m.indices.extend_from_slice(c);
            m.data.extend_from_slice(v);
            m.indptr.push(m.indices.len());
        }
        m
    }

    /// Side-by-side concatenation (scipy's `hstack`): the columns of `b` follow those of `a`.
    pub fn hstack(a: &CsrMatrix, b: &CsrMatrix) -> Result<CsrMatrix> {
        ensure!(a.n_rows == b.n_rows, "hstack of {} and {} rows", a.n_rows, b.n_rows);
        let off = u32::try_from(a.n_cols)?;
        let lens = (0..a.n_rows).map(|i| a.row(i).0.len() + b.row(i).0.len());
        Ok(Self::build(a.n_cols + b.n_cols, lens, |i, cols, vals| {
            let (ca, va) = a.row(i);
            let (cb, vb) = b.row(i);
            let cols_in = ca.iter().copied().chain(cb.iter().map(|&c| c + off));
            for ((o, c), (p, &v)) in cols.iter_mut().zip(cols_in).zip(vals.iter_mut().zip(va.iter().chain(vb))) {
                o.write(c);
                p.write(v);
            }
        }))
    }
}

/// Calls `fill(i, cols_i, vals_i)` for every row `i` of the CSR layout `indptr`, with `cols_i` and
/// `vals_i` row `i`'s parts of `cols` and `vals`, on blocks of rows in parallel: the one way this crate
/// writes large sparse arrays without copying them on one thread.
pub(crate) fn fill_rows_par<A: Send, B: Send>(
    indptr: &[usize],
    cols: &mut [A],
    vals: &mut [B],
    fill: impl Fn(usize, &mut [A], &mut [B]) + Sync,
) {
    const BLOCK: usize = 256;
    let n_rows = indptr.len() - 1;
    let mut blocks = Vec::with_capacity(n_rows.div_ceil(BLOCK));
    let (mut rc, mut rv) = (&mut cols[..indptr[n_rows] - indptr[0]], &mut vals[..indptr[n_rows] - indptr[0]]);
    for start in (0..n_rows).step_by(BLOCK) {
        let end = (start + BLOCK).min(n_rows);
        let len = indptr[end] - indptr[start];
        let (bc, tc) = std::mem::take(&mut rc).split_at_mut(len);
        let (bv, tv) = std::mem::take(&mut rv).split_at_mut(len);
        (rc, rv) = (tc, tv);
        blocks.push((start..end, bc, bv));
    }
    blocks.into_par_iter().for_each(|(range, bc, bv)| {
        let base = indptr[range.start];
        for i in range {
            let (a, b) = (indptr[i] - base, indptr[i + 1] - base);
            fill(i, &mut bc[a..b], &mut bv[a..b]);
        }
    });
}

impl linfa::dataset::Records for CsrMatrix {
    type Elem = f64;

    fn nsamples(&self) -> usize {
        self.n_rows
    }

    fn nfeatures(&self) -> usize {
        self.n_cols
    }
}
