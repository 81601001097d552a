//! Binary L2-regularised logistic regression with liblinear's objective, on sparse rows.
//!
//! Minimises `0.5 * ||w||^2 + sum_i C_i * ln(1 + exp(-y_i * (x_i . w + b * s)))` with `y_i` in {-1, +1},
//! `C_i = C * class_weight[y_i]` and the intercept `b` learned as the weight of a constant feature `s`
//! (`intercept_scaling`) and penalised with the other weights: the problem scikit-learn's
//! `LogisticRegression(solver='liblinear')` solves. The optimum is unique, so any solver that converges
//! tightly gives the same model. Two of liblinear's solvers are here: dual coordinate descent
//! ([`super::dual`], the default: on the seed's TF-IDF data it reaches scikit-learn's answer in 15-50
//! passes over the rows; [`LogRegParams::fit_many`] fits several labels of one matrix in parallel on one
//! prepared copy of it, [`DualRows`]) and the trust-region Newton method
//! ([`super::tron`], liblinear's primal solver, which scikit-learn uses by default).
//! Why not linfa-logistic: it takes dense `Array2` records only (the seed's matrices have ~10^5-10^6
//! columns) and does not penalise the intercept; we still implement linfa's `Fit`/`PredictInplace`.

use ndarray::{Array1, ArrayBase, Data, Ix2};
use serde::{Deserialize, Serialize};

use rayon::prelude::*;

use super::dual::{solve, DualParams, DualResult, DualRows, DualSolver};
use super::tron::{minimize, Objective, TronParams, TronResult};
use crate::text::CsrMatrix;

/// Seed of the dual solver's visiting order.
const DUAL_SEED: u64 = 0x5eed;

/// Which optimiser minimises the objective (both reach the same optimum).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// liblinear's dual coordinate descent (`-s 7`); stops on [`LogRegParams::dual_tol`].
    #[default]
    Dual,
    /// liblinear's trust-region Newton method on the primal (`-s 0`); stops on [`LogRegParams::tol`].
    Tron,
}

/// How samples of each class are weighted in the loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    /// Every sample weighs 1.
    None,
    /// `n_samples / (2 * n_class)` per class (sklearn's `'balanced'`).
    Balanced,
}

/// Parameters of [`LogRegParams::fit_sparse`] (defaults: the seed's `C=1.0, class_weight='balanced'`,
/// liblinear's intercept handling).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRegParams {
    /// Inverse regularisation strength.
    pub c: f64,
    /// Class weighting.
    pub class_weight: ClassWeight,
    /// Learn an intercept (as a penalised constant feature).
    pub fit_intercept: bool,
    /// Value of the constant feature (liblinear's `intercept_scaling`).
    pub intercept_scaling: f64,
    /// Relative gradient-norm tolerance of the solver (tighter than liblinear's default so that the
    /// result is within ~1e-6 of the exact optimum).
    pub tol: f64,
    /// Maximum Newton iterations (trust region) or epochs (dual).
    pub max_iter: usize,
    /// The optimiser.
    #[serde(default)]
    pub solver: Solver,
    /// Dual solver's stopping rule: the largest partial derivative of the dual over the visits of an epoch
    /// (liblinear's `eps` for `-s 7`, taken at the current point; see [`super::dual`]). The default 1e-4
    /// gives probabilities closer to the exact optimum than scikit-learn's own default fit
    /// (docs/performance.md).
    #[serde(default = "default_dual_tol")]
    pub dual_tol: f64,
}

fn default_dual_tol() -> f64 {
    1e-4
}

impl Default for LogRegParams {
    fn default() -> Self {
        LogRegParams {
            c: 1.0,
            class_weight: ClassWeight::Balanced,
            fit_intercept: true,
            intercept_scaling: 1.0,
            tol: 1e-6,
            max_iter: 1000,
            solver: Solver::Dual,
            dual_tol: default_dual_tol(),
        }
    }
}

/// A fitted binary logistic regression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRegModel {
    /// Weight of each feature.
    pub coef: Vec<f64>,
    /// Intercept (already multiplied by `intercept_scaling`, as sklearn's `intercept_`).
    pub intercept: f64,
    /// Solver iterations and convergence (absent for loaded models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver: Option<SolverInfo>,
}

/// Solver diagnostics of a fit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SolverInfo {
    /// Newton iterations (trust region) or epochs (dual).
    pub iterations: usize,
    /// Hessian-vector products (trust region; 0 for the dual solver).
    pub cg_steps: usize,
    /// Final gradient norm relative to the initial one (trust region), or the last epoch's largest
    /// partial derivative of the dual (dual).
    pub rel_grad: f64,
    /// True when the tolerance was met.
    pub converged: bool,
}

impl From<TronResult> for SolverInfo {
    fn from(r: TronResult) -> Self {
        SolverInfo { iterations: r.iterations, cg_steps: r.cg_steps, rel_grad: r.rel_grad, converged: r.converged }
    }
}

/// liblinear's `l2r_lr_fun` on CSR rows plus an optional constant column.
struct LrObjective<'a> {
    x: &'a CsrMatrix,
    /// +1 / -1 per row.
    y: Vec<f64>,
    /// C_i per row.
    c: Vec<f64>,
    /// Constant-feature value (0 when no intercept).
    bias: f64,
    z: Vec<f64>,
    /// C_i * sigma_i * (1 - sigma_i) at the last gradient point.
    d: Vec<f64>,
}

impl LrObjective<'_> {
    fn dim(&self) -> usize {
        self.x.n_cols + usize::from(self.bias != 0.0)
    }

    #[inline]
    fn row_dot(&self, i: usize, w: &[f64]) -> f64 {
        let mut t = self.x.row_dot(i, w);
        if self.bias != 0.0 {
            t += self.bias * w[self.x.n_cols];
        }
        t
    }

    #[inline]
    fn add_row(&self, i: usize, a: f64, out: &mut [f64]) {
        let (c, v) = self.x.row(i);
        for (&c, &v) in c.iter().zip(v) {
            out[c as usize] += a * v;
        }
        if self.bias != 0.0 {
            out[self.x.n_cols] += a * self.bias;
        }
    }
}

impl Objective for LrObjective<'_> {
    fn dim(&self) -> usize {
        LrObjective::dim(self)
    }

    fn fun(&mut self, w: &[f64]) -> f64 {
        let mut f = 0.5 * w.iter().map(|v| v * v).sum::<f64>();
        for i in 0..self.x.n_rows {
            let z = self.row_dot(i, w);
            self.z[i] = z;
            let yz = self.y[i] * z;
            let loss = if yz >= 0.0 { (-yz).exp().ln_1p() } else { -yz + yz.exp().ln_1p() };
            f += self.c[i] * loss;
        }
        f
    }

    fn grad(&mut self, w: &[f64], g: &mut [f64]) {
        g.copy_from_slice(w);
        for i in 0..self.x.n_rows {
            let s = 1.0 / (1.0 + (-self.y[i] * self.z[i]).exp());
            self.d[i] = self.c[i] * s * (1.0 - s);
            let a = self.c[i] * (s - 1.0) * self.y[i];
            self.add_row(i, a, g);
        }
    }

    fn hess_diag(&self, out: &mut [f64]) {
        out.fill(1.0);
        for i in 0..self.x.n_rows {
            let di = self.d[i];
            let (c, v) = self.x.row(i);
            for (&c, &v) in c.iter().zip(v) {
                out[c as usize] += di * v * v;
            }
            if self.bias != 0.0 {
                out[self.x.n_cols] += di * self.bias * self.bias;
            }
        }
    }

    fn hess_vec(&self, v: &[f64], out: &mut [f64]) {
        out.copy_from_slice(v);
        for i in 0..self.x.n_rows {
            let t = self.d[i] * self.row_dot(i, v);
            if t != 0.0 {
                self.add_row(i, t, out);
            }
        }
    }
}

impl LogRegParams {
    /// Checks the parameters (linfa's `ParamGuard::check_ref`): C, the tolerances and `intercept_scaling`
    /// (when an intercept is fitted) must be positive and finite, `max_iter` at least 1. Every fit calls
    /// it before any work.
    pub fn check(&self) -> Result<&Self, LogRegError> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.c) {
            return Err(LogRegError::InvalidC(self.c));
        }
        for (name, value) in [("tol", self.tol), ("dual_tol", self.dual_tol)] {
            if !positive(value) {
                return Err(LogRegError::InvalidTolerance { name, value });
            }
        }
        if self.max_iter == 0 {
            return Err(LogRegError::ZeroMaxIter);
        }
        if self.fit_intercept && !positive(self.intercept_scaling) {
            return Err(LogRegError::InvalidInterceptScaling(self.intercept_scaling));
        }
        Ok(self)
    }

    /// The dual solver's parameters for a problem with constant column `bias`.
    fn dual_params(&self, bias: f64) -> DualParams {
        DualParams { bias, eps: self.dual_tol, max_epochs: self.max_iter, seed: DUAL_SEED }
    }

    /// Per-class loss weights `(negative, positive)` for targets `y`.
    pub fn class_weights(&self, y: &[bool]) -> (f64, f64) {
        match self.class_weight {
            ClassWeight::None => (1.0, 1.0),
            ClassWeight::Balanced => {
                let n = y.len() as f64;
                let pos = y.iter().filter(|&&b| b).count() as f64;
                (n / (2.0 * (n - pos)), n / (2.0 * pos))
            }
        }
    }

    /// Fits on sparse rows `x` with boolean targets `y` (both classes must be present).
    pub fn fit_sparse(&self, x: &CsrMatrix, y: &[bool]) -> Result<LogRegModel, LogRegError> {
        self.check()?;
        match self.solver {
            Solver::Dual => self.fit_prepared(&DualRows::new(x, None), y),
            Solver::Tron => {
                let (signs, c, bias) = self.problem(x.n_rows, y)?;
                let mut obj = LrObjective { x, y: signs, c, bias, z: vec![0.0; x.n_rows], d: vec![0.0; x.n_rows] };
                let mut w = vec![0.0; obj.dim()];
                let r = minimize(&mut obj, &mut w, &TronParams { eps: self.tol, max_iter: self.max_iter, precond: 0.0 });
                Ok(self.model(w, bias, r.into()))
            }
        }
    }

    /// Fits with the dual solver on rows prepared once ([`DualRows::new`]) for all the labels of one
    /// matrix; `y` is per row of that matrix. Same model as [`LogRegParams::fit_sparse`] with
    /// [`Solver::Dual`], whatever `self.solver` says.
    pub fn fit_prepared(&self, rows: &DualRows, y: &[bool]) -> Result<LogRegModel, LogRegError> {
        self.check()?;
        let (signs, c, bias) = self.problem(rows.n_rows(), y)?;
        let entries = rows.entries(&signs, &c);
        Ok(self.dual_model(solve(rows, &entries, &self.dual_params(bias)), bias))
    }

    /// Fits one model per target vector in `ys` (each per row of `x`), labels in parallel; each label
    /// gets the model it would get alone. With the dual solver the labels share one prepared copy of `x`
    /// ([`DualRows`]) and are handed between threads epoch by epoch (see `fit_dual_many`).
    ///
    /// `col_scale` (one factor per column, as [`DualRows::new`] takes them: for a tf-idf matrix, its
    /// idf, [`crate::text::FittedTextFeatures::idf`]) speeds up the dual solver; the models are the
    /// same without it, to rounding.
    pub fn fit_many(&self, x: &CsrMatrix, col_scale: Option<&[f64]>, ys: &[&[bool]]) -> Vec<Result<LogRegModel, LogRegError>> {
        if let Err(e) = self.check() {
            return ys.iter().map(|_| Err(e.clone())).collect();
        }
        match self.solver {
            Solver::Dual if !ys.is_empty() => self.fit_dual_many(&DualRows::new(x, col_scale), ys),
            _ => ys.par_iter().map(|y| self.fit_sparse(x, y)).collect(),
        }
    }

    /// The dual solver on several labels of `rows`, one epoch at a time. Labels take very different
    /// numbers of epochs, and with each label on one thread to its end a thread sat idle while the longest
    /// ran (docs/performance.md). So a thread that ends an epoch puts its label back and takes the one with
    /// the most epochs left ([`DualSolver::epochs_left`]; labels not started count as most, the most
    /// balanced first): the longest labels run side by side to the end, and a thread is idle only while the
    /// last label runs its last epochs. The epochs of a label do not depend on which thread runs them.
    fn fit_dual_many(&self, rows: &DualRows, ys: &[&[bool]]) -> Vec<Result<LogRegModel, LogRegError>> {
        struct Label<'a> {
            solver: Option<DualSolver<'a>>,
            running: bool,
            left: f64,
            minority: usize,
            out: Option<Result<LogRegModel, LogRegError>>,
        }
        // each label's variables and constant feature, or why it cannot be fitted
        let (problems, labels): (Vec<_>, Vec<_>) = ys
            .iter()
            .map(|y| {
                let pos = y.iter().filter(|&&b| b).count();
                let (problem, out) = match self.problem(rows.n_rows(), y) {
                    Ok((signs, c, bias)) => (Some((rows.entries(&signs, &c), bias)), None),
                    Err(e) => (None, Some(Err(e))),
                };
                (problem, Label { solver: None, running: false, left: f64::INFINITY, minority: pos.min(y.len() - pos), out })
            })
            .unzip();
        let labels = std::sync::Mutex::new(labels);
        let lock = || labels.lock().expect("no thread panicked holding the lock");
        let threads = rayon::current_num_threads().min(ys.len());
        rayon::scope(|s| {
            for _ in 0..threads {
                s.spawn(|_| loop {
                    let (j, solver) = {
                        let mut ls = lock();
                        let next = (0..ls.len())
                            .filter(|&j| !ls[j].running && ls[j].out.is_none())
                            .max_by(|&a, &b| ls[a].left.total_cmp(&ls[b].left).then(ls[a].minority.cmp(&ls[b].minority)).then(b.cmp(&a)));
                        let Some(j) = next else { break };
                        ls[j].running = true;
                        (j, ls[j].solver.take())
                    };
                    let (entries, bias) = problems[j].as_ref().expect("a label without a problem is done");
                    let mut solver = solver.unwrap_or_else(|| DualSolver::new(rows, entries, &self.dual_params(*bias)));
                    solver.epoch();
                    let left = solver.epochs_left();
                    let (out, solver) = match solver.done() {
                        true => (Some(Ok(self.dual_model(solver.finish(), *bias))), None),
                        false => (None, Some(solver)),
                    };
                    let mut ls = lock();
                    ls[j] = Label { solver, running: false, left, out, ..ls[j] };
                });
            }
        });
        labels.into_inner().expect("no thread panicked").into_iter().map(|l| l.out.expect("every label was fitted")).collect()
    }

    /// The model of the dual solver's weights.
    fn dual_model(&self, (w, r): (Vec<f64>, DualResult), bias: f64) -> LogRegModel {
        self.model(w, bias, SolverInfo { iterations: r.epochs, cg_steps: 0, rel_grad: r.gmax, converged: r.converged })
    }

    /// Checks the targets and gives the +1/-1 label and `C_i` of each row, and the constant feature's value.
    fn problem(&self, n_rows: usize, y: &[bool]) -> Result<(Vec<f64>, Vec<f64>, f64), LogRegError> {
        if n_rows != y.len() {
            return Err(LogRegError::Shape { rows: n_rows, targets: y.len() });
        }
        let pos = y.iter().filter(|&&b| b).count();
        if pos == 0 || pos == y.len() {
            return Err(LogRegError::OneClass { positives: pos, rows: y.len() });
        }
        let (wn, wp) = self.class_weights(y);
        let bias = if self.fit_intercept { self.intercept_scaling } else { 0.0 };
        let signs = y.iter().map(|&b| if b { 1.0 } else { -1.0 }).collect();
        let c = y.iter().map(|&b| self.c * if b { wp } else { wn }).collect();
        Ok((signs, c, bias))
    }

    /// The model of solver weights `w` (the constant feature's weight last when there is an intercept).
    fn model(&self, mut w: Vec<f64>, bias: f64, info: SolverInfo) -> LogRegModel {
        let intercept = if self.fit_intercept { bias * w.pop().unwrap() } else { 0.0 };
        LogRegModel { coef: w, intercept, solver: Some(info) }
    }
}

/// The logistic function, `1 / (1 + exp(-z))` (scipy's `expit`).
#[inline]
pub fn expit(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl LogRegModel {
    /// `x_i . coef + intercept` of one sparse row.
    #[inline]
    pub fn decision_row(&self, cols: &[u32], vals: &[f64]) -> f64 {
        self.intercept + cols.iter().zip(vals).map(|(&c, &v)| v * self.coef[c as usize]).sum::<f64>()
    }

    /// Probability of the positive class for every row of `x`.
    pub fn predict_proba(&self, x: &CsrMatrix) -> Array1<f64> {
        (0..x.n_rows)
            .map(|i| {
                let (c, v) = x.row(i);
                expit(self.decision_row(c, v))
            })
            .collect()
    }
}

/// Why a logistic regression was not fitted (from [`LogRegParams::check`] or the fit itself).
#[derive(Clone, Debug, PartialEq)]
pub enum LogRegError {
    /// C is not a positive finite number.
    InvalidC(f64),
    /// A solver tolerance (`tol` or `dual_tol`) is not a positive finite number.
    InvalidTolerance {
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// `max_iter` is 0.
    ZeroMaxIter,
    /// `intercept_scaling` is not a positive finite number while an intercept is fitted.
    InvalidInterceptScaling(f64),
    /// The number of targets differs from the number of rows.
    Shape {
        /// Rows of the matrix.
        rows: usize,
        /// Targets given.
        targets: usize,
    },
    /// The targets hold one class only (`positives` is 0 or `rows`).
    OneClass {
        /// Positive targets.
        positives: usize,
        /// All targets.
        rows: usize,
    },
    /// An error raised by linfa (its message).
    Linfa(String),
}

impl std::fmt::Display for LogRegError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogRegError::InvalidC(c) => write!(f, "C must be a positive number, got {c}"),
            LogRegError::InvalidTolerance { name, value } => write!(f, "{name} must be a positive number, got {value}"),
            LogRegError::ZeroMaxIter => f.write_str("max_iter must be at least 1"),
            LogRegError::InvalidInterceptScaling(v) => write!(f, "intercept_scaling must be a positive number, got {v}"),
            LogRegError::Shape { rows, targets } => write!(f, "{rows} rows but {targets} targets"),
            LogRegError::OneClass { positives, rows } => {
                write!(f, "logistic regression needs both classes; got {positives} positive of {rows} rows")
            }
            LogRegError::Linfa(e) => write!(f, "linfa: {e}"),
        }
    }
}

impl std::error::Error for LogRegError {}

impl From<linfa::error::Error> for LogRegError {
    fn from(e: linfa::error::Error) -> Self {
        LogRegError::Linfa(e.to_string())
    }
}

impl linfa::traits::Fit<CsrMatrix, Array1<bool>, LogRegError> for LogRegParams {
    type Object = LogRegModel;

    fn fit(&self, ds: &linfa::DatasetBase<CsrMatrix, Array1<bool>>) -> Result<LogRegModel, LogRegError> {
        let y: Vec<bool> = ds.targets.iter().copied().collect();
        self.fit_sparse(&ds.records, &y)
    }
}

impl<D: Data<Elem = f64>> linfa::traits::Fit<ArrayBase<D, Ix2>, Array1<bool>, LogRegError> for LogRegParams {
    type Object = LogRegModel;

    fn fit(&self, ds: &linfa::DatasetBase<ArrayBase<D, Ix2>, Array1<bool>>) -> Result<LogRegModel, LogRegError> {
        let x = CsrMatrix::from_dense(&ds.records.view());
        let y: Vec<bool> = ds.targets.iter().copied().collect();
        self.fit_sparse(&x, &y)
    }
}

/// Positive-class probabilities of sparse rows (use [`linfa::traits::Predict`] to get them).
impl linfa::traits::PredictInplace<CsrMatrix, Array1<f64>> for LogRegModel {
    fn predict_inplace(&self, x: &CsrMatrix, y: &mut Array1<f64>) {
        assert_eq!(y.len(), x.n_rows, "target length must match the number of rows");
        y.assign(&LogRegModel::predict_proba(self, x));
    }

    fn default_target(&self, x: &CsrMatrix) -> Array1<f64> {
        Array1::zeros(x.n_rows)
    }
}

/// Positive-class probabilities of dense rows.
impl<D: Data<Elem = f64>> linfa::traits::PredictInplace<ArrayBase<D, Ix2>, Array1<f64>> for LogRegModel {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<f64>) {
        assert_eq!(y.len(), x.nrows(), "target length must match the number of rows");
        for (i, row) in x.outer_iter().enumerate() {
            let z = self.intercept + row.iter().zip(&self.coef).map(|(a, b)| a * b).sum::<f64>();
            y[i] = expit(z);
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<f64> {
        Array1::zeros(x.nrows())
    }
}
