//! Trust-region Newton method (Lin, Weng & Keerthi 2008), the optimiser liblinear uses for
//! L2-regularised logistic regression: Newton steps solved inexactly by conjugate gradient inside a
//! trust region, stopping when `||grad|| <= eps * ||grad at 0||`.

/// A twice-differentiable objective the trust-region method can minimise.
pub trait Objective {
    /// Number of variables.
    fn dim(&self) -> usize;
    /// Objective value at `w` (may cache what `grad` needs, but must not change what `hess_vec` uses:
    /// a rejected trial point is evaluated with `fun` only).
    fn fun(&mut self, w: &[f64]) -> f64;
    /// Gradient at `w`, which is the point of the last `fun` call (may cache the Hessian's weights).
    fn grad(&mut self, w: &[f64], g: &mut [f64]);
    /// Hessian at the point of the last `grad` call, times `v`.
    fn hess_vec(&self, v: &[f64], out: &mut [f64]);
    /// Diagonal of that Hessian (for the preconditioner); the identity's by default.
    fn hess_diag(&self, out: &mut [f64]) {
        out.fill(1.0);
    }
}

/// Stopping rules of [`minimize`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TronParams {
    /// Relative gradient-norm tolerance.
    pub eps: f64,
    /// Maximum Newton iterations.
    pub max_iter: usize,
    /// Weight of the Hessian diagonal in the CG preconditioner `(1 - a) I + a diag(H)` (liblinear 2.x
    /// uses 0.01; 0 disables it, our default: on the seed's TF-IDF data it increased the CG steps,
    /// docs/performance.md).
    pub precond: f64,
}

impl Default for TronParams {
    fn default() -> Self {
        TronParams { eps: 1e-6, max_iter: 1000, precond: 0.0 }
    }
}

/// What [`minimize`] reached.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TronResult {
    /// Newton iterations taken.
    pub iterations: usize,
    /// Conjugate-gradient steps in total (Hessian-vector products).
    pub cg_steps: usize,
    /// Final objective value.
    pub objective: f64,
    /// Final gradient norm relative to the initial one.
    pub rel_grad: f64,
    /// True when the gradient criterion was met.
    pub converged: bool,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn mdot(a: &[f64], m: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(m).zip(b).map(|((x, m), y)| x * m * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Minimises `obj` starting from `w` (updated in place).
pub fn minimize(obj: &mut dyn Objective, w: &mut [f64], p: &TronParams) -> TronResult {
    const ETA0: f64 = 1e-4;
    const ETA1: f64 = 0.25;
    const ETA2: f64 = 0.75;
    const SIGMA1: f64 = 0.25;
    const SIGMA2: f64 = 0.5;
    const SIGMA3: f64 = 4.0;
    let n = obj.dim();
    let mut g = vec![0.0; n];
    let mut s = vec![0.0; n];
    let mut r = vec![0.0; n];
    let mut w_new = vec![0.0; n];
    let mut m = vec![1.0; n];
    let precondition = |obj: &dyn Objective, m: &mut Vec<f64>| {
        if p.precond > 0.0 {
            obj.hess_diag(m);
            for v in m.iter_mut() {
                *v = (1.0 - p.precond) + p.precond * *v;
            }
        }
    };
    let mut f = obj.fun(w);
    obj.grad(w, &mut g);
    precondition(&*obj, &mut m);
    let gnorm0 = dot(&g, &g).sqrt();
    let mut gnorm = gnorm0;
    let mut delta = mdot(&g, &m, &g).sqrt();
    let mut res = TronResult { iterations: 0, cg_steps: 0, objective: f, rel_grad: 1.0, converged: gnorm0 == 0.0 };
    if res.converged {
        res.rel_grad = 0.0;
        return res;
    }
    let mut iter = 1;
    while iter <= p.max_iter {
        res.cg_steps += trcg(obj, delta, &g, &m, &mut s, &mut r);
        w_new.copy_from_slice(w);
        axpy(1.0, &s, &mut w_new);
        let gs = dot(&g, &s);
        let prered = -0.5 * (gs - dot(&s, &r));
        let fnew = obj.fun(&w_new);
        let actred = f - fnew;
        let snorm = mdot(&s, &m, &s).sqrt();
        if iter == 1 {
            delta = delta.min(snorm);
        }
        let alpha = if fnew - f - gs <= 0.0 { SIGMA3 } else { SIGMA1.max(-0.5 * (gs / (fnew - f - gs))) };
        if actred < ETA0 * prered {
            delta = (alpha.max(SIGMA1) * snorm).min(SIGMA2 * delta);
        } else if actred < ETA1 * prered {
            delta = (SIGMA1 * delta).max((alpha * snorm).min(SIGMA2 * delta));
        } else if actred < ETA2 * prered {
            delta = (SIGMA1 * delta).max((alpha * snorm).min(SIGMA3 * delta));
        } else {
            delta = delta.max((alpha * snorm).min(SIGMA3 * delta));
        }
        if actred > ETA0 * prered {
            iter += 1;
            w.copy_from_slice(&w_new);
            f = fnew;
            obj.grad(w, &mut g);
            precondition(&*obj, &mut m);
            gnorm = dot(&g, &g).sqrt();
            if gnorm <= p.eps * gnorm0 {
                res.converged = true;
                break;
            }
        }
        if f < -1.0e32 {
            break;
        }
        if actred.abs() <= 0.0 && prered <= 0.0 {
            break;
        }
        if actred.abs() <= 1.0e-12 * f.abs() && prered.abs() <= 1.0e-12 * f.abs() {
            break;
        }
    }
    res.iterations = iter - 1;
    res.objective = f;
    res.rel_grad = gnorm / gnorm0;
    res
}

/// Preconditioned conjugate gradient for `H s = -g` inside the ball `||s||_M <= delta` (`m` is the
/// diagonal preconditioner); leaves the residual in `r`, returns the number of Hessian products.
fn trcg(obj: &dyn Objective, delta: f64, g: &[f64], m: &[f64], s: &mut [f64], r: &mut [f64]) -> usize {
    let n = g.len();
    let mut d = vec![0.0; n];
    let mut z = vec![0.0; n];
    let mut hd = vec![0.0; n];
    for i in 0..n {
        s[i] = 0.0;
        r[i] = -g[i];
        z[i] = r[i] / m[i];
        d[i] = z[i];
    }
    let mut ztr = dot(&z, r);
    let cgtol = 0.1 * dot(g, g).sqrt();
    let mut steps = 0;
    loop {
        if dot(r, r).sqrt() <= cgtol {
            break;
        }
        steps += 1;
        obj.hess_vec(&d, &mut hd);
        let dhd = dot(&d, &hd);
        if dhd <= 1e-16 {
            break;
        }
        let alpha = ztr / dhd;
        axpy(alpha, &d, s);
        if mdot(s, m, s).sqrt() > delta {
            axpy(-alpha, &d, s);
            let std = mdot(s, m, &d);
            let sts = mdot(s, m, s);
            let dtd = mdot(&d, m, &d);
            let dsq = delta * delta;
            let rad = (std * std + dtd * (dsq - sts)).sqrt();
            let alpha = if std >= 0.0 { (dsq - sts) / (std + rad) } else { (rad - std) / dtd };
            axpy(alpha, &d, s);
            axpy(-alpha, &hd, r);
            break;
        }
        axpy(-alpha, &hd, r);
        for i in 0..n {
            z[i] = r[i] / m[i];
        }
        let znew = dot(&z, r);
        let beta = znew / ztr;
        for i in 0..n {
            d[i] = z[i] + beta * d[i];
        }
        ztr = znew;
    }
    steps
}
