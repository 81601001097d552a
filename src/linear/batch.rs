//! Several binary logistic regressions on the same sparse matrix, solved in lockstep.
//!
//! The seed fits one model per label on the same TF-IDF matrix. Each trust-region Newton step costs
//! passes over the matrix (`X w`, `X' u`); running the labels' solvers side by side lets one pass serve
//! all of them (the matrix is streamed once per step instead of once per label, and the weights of all
//! labels for one column sit in one cache line). `X' u` uses a column-major copy of the matrix, so both
//! products are gathers that split over threads without write conflicts. The iterates are exactly
//! those of [`super::tron::minimize`] run per label; only the memory traffic is shared.

use anyhow::{ensure, Result};
use rayon::prelude::*;

use super::logreg::{LogRegModel, LogRegParams, SolverInfo};
use crate::text::CsrMatrix;

/// The shared data of K problems: `X` (rows and columns), per row and label `y`, `C_i`, `z`, `D`.
struct Problems<'a> {
    x: &'a CsrMatrix,
    xt: CsrMatrix,
    k: usize,
    bias: f64,
    /// `n_rows * k`, interleaved by row.
    y: Vec<f64>,
    c: Vec<f64>,
    z: Vec<f64>,
    d: Vec<f64>,
}

const ROWS_PER_TASK: usize = 512;

impl Problems<'_> {
    /// Variables per label (columns + intercept).
    fn dim(&self) -> usize {
        self.x.n_cols + usize::from(self.bias != 0.0)
    }

    /// `out[i*k + l] = x_i . v_l` for interleaved `v` (`dim * k`).
    fn xv(&self, v: &[f64], out: &mut [f64]) {
        let (k, n, bias) = (self.k, self.x.n_cols, self.bias);
        out.par_chunks_mut(ROWS_PER_TASK * k).enumerate().for_each(|(t, chunk)| {
            let mut acc = vec![0.0; k];
            for (r, o) in chunk.chunks_mut(k).enumerate() {
                let i = t * ROWS_PER_TASK + r;
                acc.fill(0.0);
                let (cols, vals) = self.x.row(i);
                for (&c, &x) in cols.iter().zip(vals) {
                    let w = &v[c as usize * k..c as usize * k + k];
                    for l in 0..k {
                        acc[l] += x * w[l];
                    }
                }
                if bias != 0.0 {
                    for l in 0..k {
                        acc[l] += bias * v[n * k + l];
                    }
                }
                o.copy_from_slice(&acc);
            }
        });
    }

    /// `out[j*k + l] = base[j*k + l] + sum_i x_ij u[i*k + l]` (`X' u` plus `base`), for all labels.
    fn xtu_plus(&self, u: &[f64], base: &[f64], out: &mut [f64]) {
        let (k, n, bias) = (self.k, self.x.n_cols, self.bias);
        out[..n * k].par_chunks_mut(ROWS_PER_TASK * k).enumerate().for_each(|(t, chunk)| {
            for (r, o) in chunk.chunks_mut(k).enumerate() {
                let j = t * ROWS_PER_TASK + r;
                o.copy_from_slice(&base[j * k..j * k + k]);
                let (rows, vals) = self.xt.row(j);
                for (&i, &x) in rows.iter().zip(vals) {
                    let ui = &u[i as usize * k..i as usize * k + k];
                    for l in 0..k {
                        o[l] += x * ui[l];
                    }
                }
            }
        });
        if bias != 0.0 {
            for l in 0..k {
                let s: f64 = (0..self.x.n_rows).map(|i| u[i * k + l]).sum();
                out[n * k + l] = base[n * k + l] + bias * s;
            }
        }
    }

    /// Loss part of the objective of every label at interleaved `w` (sets `z`).
    fn fun(&mut self, w: &[f64]) -> Vec<f64> {
        let mut z = std::mem::take(&mut self.z);
        self.xv(w, &mut z);
        self.z = z;
        let k = self.k;
        let mut f = vec![0.0; k];
        for i in 0..self.x.n_rows {
            for l in 0..k {
                let yz = self.y[i * k + l] * self.z[i * k + l];
                let loss = if yz >= 0.0 { (-yz).exp().ln_1p() } else { -yz + yz.exp().ln_1p() };
                f[l] += self.c[i * k + l] * loss;
            }
        }
        for (l, fl) in f.iter_mut().enumerate() {
            *fl += 0.5 * (0..self.dim()).map(|j| w[j * k + l] * w[j * k + l]).sum::<f64>();
        }
        f
    }

    /// Gradient at the `w` of the last `fun`, for all labels; the Hessian weights `D` are updated only
    /// for labels with `mask[l]` (the others keep the curvature of their current iterate).
    fn grad(&mut self, w: &[f64], mask: &[bool], g: &mut [f64]) {
        let k = self.k;
        let mut a = vec![0.0; self.x.n_rows * k];
        for i in 0..self.x.n_rows {
            for l in 0..k {
                let idx = i * k + l;
                let s = 1.0 / (1.0 + (-self.y[idx] * self.z[idx]).exp());
                if mask[l] {
                    self.d[idx] = self.c[idx] * s * (1.0 - s);
                }
                a[idx] = self.c[idx] * (s - 1.0) * self.y[idx];
            }
        }
        self.xtu_plus(&a, w, g);
    }

    /// Hessian-vector products `v + X' D X v` for all labels.
    fn hv(&self, v: &[f64], out: &mut [f64]) {
        let mut t = vec![0.0; self.x.n_rows * self.k];
        self.xv(v, &mut t);
        for (t, d) in t.iter_mut().zip(&self.d) {
            *t *= d;
        }
        self.xtu_plus(&t, v, out);
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

fn pack(vs: &[Vec<f64>], out: &mut [f64]) {
    let k = vs.len();
    for (l, v) in vs.iter().enumerate() {
        for (j, &x) in v.iter().enumerate() {
            out[j * k + l] = x;
        }
    }
}

fn unpack(src: &[f64], l: usize, k: usize, out: &mut [f64]) {
    for (j, o) in out.iter_mut().enumerate() {
        *o = src[j * k + l];
    }
}

/// Per-label trust-region state.
struct Tron {
    w: Vec<f64>,
    g: Vec<f64>,
    s: Vec<f64>,
    r: Vec<f64>,
    d: Vec<f64>,
    hd: Vec<f64>,
    f: f64,
    delta: f64,
    gnorm0: f64,
    gnorm: f64,
    iter: usize,
    cg_steps: usize,
    active: bool,
    converged: bool,
    // CG state
    rtr: f64,
    cgtol: f64,
    cg_done: bool,
}

/// Fits one model per target vector in `ys` on the same rows `x` (each needs both classes); the same
/// models as [`LogRegParams::fit_sparse`] per label, computed with shared passes over `x`.
pub fn fit_many(p: &LogRegParams, x: &CsrMatrix, ys: &[Vec<bool>]) -> Result<Vec<LogRegModel>> {
    let k = ys.len();
    ensure!(k > 0, "no targets to fit");
    ensure!(p.c > 0.0, "C must be positive, got {}", p.c);
    let n_rows = x.n_rows;
    let mut y = vec![0.0; n_rows * k];
    let mut c = vec![0.0; n_rows * k];
    for (l, yl) in ys.iter().enumerate() {
        ensure!(yl.len() == n_rows, "{n_rows} rows but {} targets for label {l}", yl.len());
        let pos = yl.iter().filter(|&&b| b).count();
        ensure!(pos > 0 && pos < n_rows, "label {l}: logistic regression needs both classes; got {pos} positive of {n_rows} rows");
        let (wn, wp) = p.class_weights(yl);
        for i in 0..n_rows {
            y[i * k + l] = if yl[i] { 1.0 } else { -1.0 };
            c[i * k + l] = p.c * if yl[i] { wp } else { wn };
        }
    }
    let bias = if p.fit_intercept { p.intercept_scaling } else { 0.0 };
    let mut pr = Problems { x, xt: x.transpose(), k, bias, y, c, z: vec![0.0; n_rows * k], d: vec![0.0; n_rows * k] };
    let n = pr.dim();
    let mut st: Vec<Tron> = (0..k)
        .map(|_| Tron {
            w: vec![0.0; n],
            g: vec![0.0; n],
            s: vec![0.0; n],
            r: vec![0.0; n],
            d: vec![0.0; n],
            hd: vec![0.0; n],
            f: 0.0,
            delta: 0.0,
            gnorm0: 0.0,
            gnorm: 0.0,
            iter: 1,
            cg_steps: 0,
            active: true,
            converged: false,
            rtr: 0.0,
            cgtol: 0.0,
            cg_done: true,
        })
        .collect();
    let mut buf_a = vec![0.0; n * k];
    let mut buf_b = vec![0.0; n * k];
    // Start: w = 0.
    let f0 = pr.fun(&buf_a);
    pr.grad(&buf_a, &vec![true; k], &mut buf_b);
    for (l, t) in st.iter_mut().enumerate() {
        t.f = f0[l];
        unpack(&buf_b, l, k, &mut t.g);
        t.gnorm0 = dot(&t.g, &t.g).sqrt();
        t.gnorm = t.gnorm0;
        t.delta = t.gnorm0;
        if t.gnorm0 == 0.0 {
            t.active = false;
            t.converged = true;
        }
    }
    const ETA0: f64 = 1e-4;
    const ETA1: f64 = 0.25;
    const ETA2: f64 = 0.75;
    const SIGMA1: f64 = 0.25;
    const SIGMA2: f64 = 0.5;
    const SIGMA3: f64 = 4.0;
    while st.iter().any(|t| t.active) {
        // Conjugate gradient for every active label, one shared Hessian product per step.
        for t in st.iter_mut().filter(|t| t.active) {
            t.s.fill(0.0);
            for i in 0..n {
                t.r[i] = -t.g[i];
                t.d[i] = t.r[i];
            }
            t.rtr = dot(&t.r, &t.r);
            t.cgtol = 0.1 * t.gnorm;
            t.cg_done = false;
        }
        loop {
            for t in st.iter_mut().filter(|t| t.active && !t.cg_done) {
                if t.rtr.sqrt() <= t.cgtol {
                    t.cg_done = true;
                }
            }
            if !st.iter().any(|t| t.active && !t.cg_done) {
                break;
            }
            let dirs: Vec<Vec<f64>> = st.iter().map(|t| if t.active && !t.cg_done { t.d.clone() } else { vec![0.0; n] }).collect();
            pack(&dirs, &mut buf_a);
            pr.hv(&buf_a, &mut buf_b);
            for (l, t) in st.iter_mut().enumerate() {
                if !t.active || t.cg_done {
                    continue;
                }
                t.cg_steps += 1;
                unpack(&buf_b, l, k, &mut t.hd);
                let alpha = t.rtr / dot(&t.d, &t.hd);
                let (s, d, hd, r) = (&mut t.s, &t.d, &t.hd, &mut t.r);
                axpy(alpha, d, s);
                if dot(s, s).sqrt() > t.delta {
                    axpy(-alpha, d, s);
                    let std = dot(s, d);
                    let sts = dot(s, s);
                    let dtd = dot(d, d);
                    let dsq = t.delta * t.delta;
                    let rad = (std * std + dtd * (dsq - sts)).sqrt();
                    let alpha = if std >= 0.0 { (dsq - sts) / (std + rad) } else { (rad - std) / dtd };
                    axpy(alpha, d, s);
                    axpy(-alpha, hd, r);
                    t.cg_done = true;
                    continue;
                }
                axpy(-alpha, hd, r);
                let rnew = dot(r, r);
                let beta = rnew / t.rtr;
                for i in 0..n {
                    t.d[i] = t.r[i] + beta * t.d[i];
                }
                t.rtr = rnew;
            }
        }
        // Trial points w + s, one shared objective pass.
        let trial: Vec<Vec<f64>> = st
            .iter()
            .map(|t| if t.active { t.w.iter().zip(&t.s).map(|(a, b)| a + b).collect() } else { t.w.clone() })
            .collect();
        pack(&trial, &mut buf_a);
        let fnew_all = pr.fun(&buf_a);
        let mut accept = vec![false; k];
        for (l, t) in st.iter_mut().enumerate() {
            if !t.active {
                continue;
            }
            let fnew = fnew_all[l];
            let gs = dot(&t.g, &t.s);
            let prered = -0.5 * (gs - dot(&t.s, &t.r));
            let actred = t.f - fnew;
            let snorm = dot(&t.s, &t.s).sqrt();
            if t.iter == 1 {
                t.delta = t.delta.min(snorm);
            }
            let alpha = if fnew - t.f - gs <= 0.0 { SIGMA3 } else { SIGMA1.max(-0.5 * (gs / (fnew - t.f - gs))) };
            t.delta = if actred < ETA0 * prered {
                (alpha.max(SIGMA1) * snorm).min(SIGMA2 * t.delta)
            } else if actred < ETA1 * prered {
                (SIGMA1 * t.delta).max((alpha * snorm).min(SIGMA2 * t.delta))
            } else if actred < ETA2 * prered {
                (SIGMA1 * t.delta).max((alpha * snorm).min(SIGMA3 * t.delta))
            } else {
                t.delta.max((alpha * snorm).min(SIGMA3 * t.delta))
            };
            if actred > ETA0 * prered {
                accept[l] = true;
                t.iter += 1;
                t.w.clone_from(&trial[l]);
                t.f = fnew;
            }
            let stop = t.f < -1.0e32
                || (actred.abs() <= 0.0 && prered <= 0.0)
                || (actred.abs() <= 1.0e-12 * t.f.abs() && prered.abs() <= 1.0e-12 * t.f.abs())
                || t.iter > p.max_iter;
            if stop && !accept[l] {
                t.active = false;
            }
            if stop && accept[l] {
                // Still refresh the gradient below (it reports rel_grad), then stop.
                t.cg_done = true;
                t.active = false;
            }
        }
        if accept.iter().any(|&a| a) {
            // z holds X * trial for every label; accepted labels' trial is their new w.
            pr.grad(&buf_a, &accept, &mut buf_b);
            for (l, t) in st.iter_mut().enumerate() {
                if !accept[l] {
                    continue;
                }
                unpack(&buf_b, l, k, &mut t.g);
                t.gnorm = dot(&t.g, &t.g).sqrt();
                if t.gnorm <= p.tol * t.gnorm0 {
                    t.converged = true;
                    t.active = false;
                }
            }
        }
    }
    Ok(st
        .into_iter()
        .map(|mut t| {
            let info = SolverInfo {
                iterations: t.iter - 1,
                cg_steps: t.cg_steps,
                rel_grad: if t.gnorm0 > 0.0 { t.gnorm / t.gnorm0 } else { 0.0 },
                converged: t.converged,
            };
            let intercept = if p.fit_intercept { bias * t.w.pop().unwrap() } else { 0.0 };
            LogRegModel { coef: t.w, intercept, solver: Some(info) }
        })
        .collect())
}
