//! The logistic regression, both solvers (dual coordinate descent, trust region), against linfa-logistic
//! (small dense data) and against scikit-learn's liblinear (real TF-IDF matrices, tests/peers/sklearn_baseline.py).

#[path = "support/mod.rs"]
mod support;

use linfa::traits::{Fit, Predict};
use linfa::Dataset;
use ndarray::{Array1, Array2};
use revmod::linear::dual::{solve, DualSolver};
use revmod::linear::{ClassWeight, DualParams, DualRows, LogRegError, LogRegModel, LogRegParams, Solver};
use revmod::text::{CsrMatrix, TextFeaturesParams, TfidfParams};
use serde_json::json;
use support::{derived_labels, peer, reviews, SplitMix64};

/// The dual solver's settings of the epoch-by-epoch test.
const DUAL: DualParams = DualParams { bias: 1.0, eps: 1e-4, max_epochs: 1000, seed: 5 };

/// Dense data from a known logistic model; `true` is the majority class (linfa-logistic calls the
/// larger class positive).
fn dense_data(n: usize, d: usize, seed: u64) -> (Array2<f64>, Array1<bool>) {
    let mut rng = SplitMix64(seed);
    let w: Vec<f64> = (0..d).map(|_| rng.next_f64() * 2.0 - 1.0).collect();
    let x = Array2::from_shape_fn((n, d), |_| rng.next_f64() * 2.0 - 1.0);
    let y = Array1::from_iter(x.outer_iter().map(|r| {
        let z: f64 = 0.6 + r.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
        rng.next_f64() < 1.0 / (1.0 + (-z).exp())
    }));
    assert!(y.iter().filter(|&&b| b).count() * 2 > n);
    (x, y)
}

fn max_diff(a: impl IntoIterator<Item = f64>, b: impl IntoIterator<Item = f64>) -> f64 {
    a.into_iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
}

#[test]
fn solvers_match_linfa_logistic_on_small_dense_data() {
    for solver in [Solver::Dual, Solver::Tron] {
        check_against_linfa(solver);
    }
}

fn check_against_linfa(solver: Solver) {
    let (x, y) = dense_data(300, 6, 7);
    let ds = Dataset::new(x.clone(), y.clone());
    for c in [1.0, 0.1] {
        // Without intercept both minimise sum(logloss) + ||w||^2 / (2C).
        let ours: LogRegModel = LogRegParams { c, class_weight: ClassWeight::None, fit_intercept: false, tol: 1e-10, dual_tol: 1e-9, solver, ..Default::default() }
            .fit(&ds)
            .unwrap();
        let theirs = linfa_logistic::LogisticRegression::default()
            .alpha(1.0 / c)
            .with_intercept(false)
            .gradient_tolerance(1e-10)
            .max_iterations(10_000)
            .fit(&ds)
            .unwrap();
        let d = max_diff(ours.coef.iter().copied(), theirs.params().iter().copied());
        assert!(d < 1e-5, "{solver:?} C={c}: coefficients differ by {d}");
        let p_ours: Array1<f64> = ours.predict(&x);
        let p_theirs = theirs.predict_probabilities(&x);
        let d = max_diff(p_ours.iter().copied(), p_theirs.iter().copied());
        assert!(d < 1e-6, "{solver:?} C={c}: probabilities differ by {d}");
    }
    // liblinear penalises the intercept: that is linfa without intercept on x plus a column of ones.
    let ours = LogRegParams { class_weight: ClassWeight::None, tol: 1e-10, dual_tol: 1e-9, solver, ..Default::default() }.fit(&ds).unwrap();
    let mut x1 = Array2::ones((x.nrows(), x.ncols() + 1));
    x1.slice_mut(ndarray::s![.., ..x.ncols()]).assign(&x);
    let theirs = linfa_logistic::LogisticRegression::default()
        .alpha(1.0)
        .with_intercept(false)
        .gradient_tolerance(1e-10)
        .max_iterations(10_000)
        .fit(&Dataset::new(x1, y))
        .unwrap();
    let d = (ours.intercept - theirs.params()[x.ncols()]).abs();
    assert!(d < 1e-5, "{solver:?}: penalised intercept differs by {d}");
}

fn csr_json(x: &CsrMatrix) -> serde_json::Value {
    json!({"n_rows": x.n_rows, "n_cols": x.n_cols, "indptr": x.indptr, "indices": x.indices, "data": x.data})
}

#[test]
fn matches_sklearn_liblinear_on_real_tfidf() {
    let revs = reviews(3000);
    let texts: Vec<&str> = revs.iter().map(|r| r.text.as_str()).collect();
    let (train, eval) = texts.split_at(2500);
    let (f, x) = TfidfParams::seed_word().fit_transform(train).unwrap();
    let xe = f.transform(eval);
    // relevant, ads, irrelevant, non_visit, and a rare one: 3 positives.
    let mut ys: Vec<Vec<bool>> = (0..4).map(|j| (0..train.len()).map(|i| derived_labels(&revs[i], i, 0)[j]).collect()).collect();
    ys.push((0..train.len()).map(|i| i % 997 == 5).collect());
    let pos: Vec<usize> = ys.iter().map(|y| y.iter().filter(|&&b| b).count()).collect();
    assert!(pos.iter().all(|&p| p > 0) && pos[4] == 3, "positives per label {pos:?}");
    let out = peer(
        "sklearn_baseline.py",
        &json!({"mode": "logreg", "X": csr_json(&x), "X_eval": csr_json(&xe),
                "ys": ys.iter().map(|y| y.iter().map(|&b| b as u8).collect::<Vec<_>>()).collect::<Vec<_>>()}),
    );
    let runs = ys.iter().enumerate().flat_map(|(j, y)| [Solver::Dual, Solver::Tron].map(|solver| (j, y, solver)));
    for (j, y, solver) in runs {
        let m = LogRegParams { solver, ..Default::default() }.fit_sparse(&x, y).unwrap();
        assert!(m.solver.unwrap().converged);
        let ours = m.predict_proba(&xe);
        let theirs: Vec<f64> = serde_json::from_value(out["proba"][j].clone()).unwrap();
        let d = max_diff(ours.iter().copied(), theirs);
        eprintln!("label {j} {solver:?} ({} positives): max |p_ours - p_sklearn| = {d:.2e} (p range {:.4}..{:.4}, {:?})", pos[j],
            ours.iter().copied().fold(1.0, f64::min), ours.iter().copied().fold(0.0, f64::max), m.solver.unwrap());
        assert!(d <= 1e-4, "label {j} {solver:?} ({} positives): predict_proba differs from sklearn by {d}", pos[j]);
        let di = (m.intercept - out["intercept"][j].as_f64().unwrap()).abs();
        assert!(di <= 1e-3, "label {j} {solver:?}: intercept differs by {di}");
    }
}

#[test]
fn one_class_is_a_clear_error() {
    let x = CsrMatrix::from_dense(&ndarray::array![[1.0, 0.0], [0.5, 2.0]].view());
    let e = LogRegParams::default().fit_sparse(&x, &[false, false]).unwrap_err();
    assert_eq!(e, LogRegError::OneClass { positives: 0, rows: 2 }, "{e}");
    let e = LogRegParams::default().fit_sparse(&x, &[true]).unwrap_err();
    assert_eq!(e, LogRegError::Shape { rows: 2, targets: 1 }, "{e}");
}

#[test]
fn bad_parameters_are_typed_errors_before_any_work() {
    let x = CsrMatrix::from_dense(&ndarray::array![[1.0, 0.0], [0.5, 2.0]].view());
    let y = [false, true];
    let fit = |p: LogRegParams| p.fit_sparse(&x, &y).unwrap_err();
    assert_eq!(fit(LogRegParams { c: 0.0, ..Default::default() }), LogRegError::InvalidC(0.0));
    assert_eq!(fit(LogRegParams { c: -1.0, solver: Solver::Tron, ..Default::default() }), LogRegError::InvalidC(-1.0));
    assert!(matches!(fit(LogRegParams { c: f64::NAN, ..Default::default() }), LogRegError::InvalidC(_)));
    assert_eq!(fit(LogRegParams { tol: 0.0, ..Default::default() }), LogRegError::InvalidTolerance { name: "tol", value: 0.0 });
    assert_eq!(
        fit(LogRegParams { dual_tol: -1e-4, ..Default::default() }),
        LogRegError::InvalidTolerance { name: "dual_tol", value: -1e-4 }
    );
    assert_eq!(fit(LogRegParams { max_iter: 0, ..Default::default() }), LogRegError::ZeroMaxIter);
    assert_eq!(fit(LogRegParams { intercept_scaling: 0.0, ..Default::default() }), LogRegError::InvalidInterceptScaling(0.0));
    assert!(LogRegParams { intercept_scaling: 0.0, fit_intercept: false, ..Default::default() }.check().is_ok());
    let many = LogRegParams { max_iter: 0, ..Default::default() }.fit_many(&x, None, &[&y, &y]);
    assert!(many.iter().all(|r| r.as_ref().unwrap_err() == &LogRegError::ZeroMaxIter));
}

/// Real TF-IDF rows, each repeated 1-4 times as a resampled data set would, some copies with the other
/// label (a labeller's noise), and the labels of `relevant` and of a rare label (8 positives).
fn duplicated_rows() -> (CsrMatrix, Vec<Vec<bool>>, usize) {
    let revs = reviews(900);
    let texts: Vec<&str> = revs.iter().map(|r| r.text.as_str()).collect();
    let (_, x) = TfidfParams::seed_word().fit_transform(&texts).unwrap();
    let mut rng = SplitMix64(7);
    let (mut idx, mut ys) = (Vec::new(), vec![Vec::new(), Vec::new()]);
    for i in 0..x.n_rows {
        let rel = derived_labels(&revs[i], i, 0)[0];
        let rare = i % 113 == 3;
        for copy in 0..1 + rng.below(4) {
            idx.push(i);
            // every 50th row's second copy has the other relevant label
            ys[0].push(if copy == 1 && i % 50 == 0 { !rel } else { rel });
            ys[1].push(rare);
        }
    }
    let distinct = (0..x.n_rows).filter(|&i| (0..i).all(|k| x.row(k) != x.row(i))).count();
    (x.select_rows(&idx), ys, distinct)
}

#[test]
fn merging_duplicate_rows_keeps_the_optimum() {
    // The dual solver merges identical rows; the trust-region solver sees every copy. Both minimise the
    // same objective, so at tight tolerances they must agree.
    let (x, ys, distinct) = duplicated_rows();
    let rows = DualRows::new(&x, None);
    assert_eq!(rows.n_rows(), x.n_rows);
    assert_eq!(rows.n_distinct(), distinct, "{} rows, {distinct} distinct", x.n_rows);
    assert!(x.n_rows > 2 * distinct, "the data must repeat rows: {} rows, {distinct} distinct", x.n_rows);
    for (j, y) in ys.iter().enumerate() {
        let dual = LogRegParams { dual_tol: 1e-9, ..Default::default() }.fit_prepared(&rows, y).unwrap();
        let tron = LogRegParams { solver: Solver::Tron, tol: 1e-7, ..Default::default() }.fit_sparse(&x, y).unwrap();
        assert!(dual.solver.unwrap().converged && tron.solver.unwrap().converged, "{:?} {:?}", dual.solver, tron.solver);
        let d = max_diff(dual.predict_proba(&x).iter().copied(), tron.predict_proba(&x).iter().copied());
        let dc = max_diff(dual.coef.iter().copied(), tron.coef.iter().copied());
        eprintln!("label {j}: max |p_dual - p_tron| = {d:.2e}, max |coef diff| = {dc:.2e}, {:?}", dual.solver.unwrap());
        assert!(d <= 1e-6 && dc <= 1e-5, "label {j}: merged dual and unmerged trust region differ: p {d}, coef {dc}");
    }
}

#[test]
fn fit_many_equals_fitting_each_label_alone() {
    let (x, ys, _) = duplicated_rows();
    let targets: Vec<&[bool]> = ys.iter().map(|y| y.as_slice()).collect();
    for solver in [Solver::Dual, Solver::Tron] {
        let params = LogRegParams { solver, ..Default::default() };
        for (j, m) in params.fit_many(&x, None, &targets).into_iter().enumerate() {
            let m = m.unwrap();
            let alone = params.fit_sparse(&x, &ys[j]).unwrap();
            assert_eq!(m.coef, alone.coef, "label {j} {solver:?}");
            assert_eq!(m.intercept, alone.intercept, "label {j} {solver:?}");
        }
    }
    // more labels than threads, handed between threads epoch by epoch; a one-class target is that
    // target's error, not the others'
    let one_class = vec![false; x.n_rows];
    let flipped: Vec<bool> = ys[0].iter().map(|b| !b).collect();
    let labels = [&ys[0][..], &one_class, &ys[1], &flipped, &ys[0]];
    let out = LogRegParams::default().fit_many(&x, None, &labels);
    assert!(format!("{}", out[1].as_ref().unwrap_err()).contains("both classes"));
    for j in [0, 2, 3, 4] {
        let alone = LogRegParams::default().fit_sparse(&x, labels[j]).unwrap();
        assert_eq!(out[j].as_ref().unwrap().coef, alone.coef, "label {j}");
    }
}

#[test]
fn the_dual_solver_runs_epoch_by_epoch() {
    let (x, ys, _) = duplicated_rows();
    let rows = DualRows::new(&x, None);
    let y: Vec<f64> = ys[0].iter().map(|&b| if b { 1.0 } else { -1.0 }).collect();
    let entries = rows.entries(&y, &vec![1.0; y.len()]);
    let mut s = DualSolver::new(&rows, &entries, &DUAL);
    let mut guesses = Vec::new();
    while !s.done() {
        guesses.push(s.epochs_left());
        s.epoch();
    }
    assert_eq!(s.epochs_left(), 0.0);
    assert!(guesses[..2].iter().all(|g| g.is_infinite()), "no guess before two epochs: {guesses:?}");
    assert!(guesses[2..].iter().all(|g| g.is_finite() && *g >= 1.0), "{guesses:?}");
    let r = s.result();
    assert!(r.converged && r.epochs == guesses.len(), "{r:?}");
    let (w, whole) = solve(&rows, &entries, &DUAL);
    assert_eq!(s.finish().0, w);
    assert_eq!(whole.epochs, r.epochs);
}

#[test]
fn column_factors_change_speed_not_the_model() {
    // The seed's stacked word + char tf-idf: with the idf as column factors a row is a few runs (one per
    // vectorizer and count), without them one run per distinct value. Same model either way, to the
    // rounding of the factors.
    let revs = reviews(1500);
    let texts: Vec<&str> = revs.iter().map(|r| r.text.as_str()).collect();
    let (f, x) = TextFeaturesParams::default().fit_transform(&texts).unwrap();
    let idf = f.idf();
    let fast = DualRows::new(&x, Some(&idf));
    let plain = DualRows::new(&x, None);
    let per_row = |r: &DualRows| r.n_runs() as f64 / r.n_distinct() as f64;
    eprintln!("runs per row: {:.2} with idf, {:.2} without; {:.1} entries per row", per_row(&fast), per_row(&plain),
        fast.nnz() as f64 / fast.n_distinct() as f64);
    assert_eq!((fast.nnz(), fast.n_distinct()), (plain.nnz(), plain.n_distinct()));
    assert!(per_row(&fast) < 12.0, "{} runs per row with the idf", per_row(&fast));
    assert!(per_row(&plain) > 5.0 * per_row(&fast), "{} runs per row without factors", per_row(&plain));
    let y: Vec<bool> = (0..x.n_rows).map(|i| derived_labels(&revs[i], i, 0)[0]).collect();
    let params = LogRegParams { dual_tol: 1e-9, ..Default::default() };
    let (a, b) = (params.fit_prepared(&fast, &y).unwrap(), params.fit_prepared(&plain, &y).unwrap());
    assert!(a.solver.unwrap().converged && b.solver.unwrap().converged);
    let dc = max_diff(a.coef.iter().copied(), b.coef.iter().copied());
    let dp = max_diff(a.predict_proba(&x).iter().copied(), b.predict_proba(&x).iter().copied());
    // the factors' squares are kept in f32: each column of the problem is scaled by a fixed 1 + e_j,
    // |e_j| < 6e-8, which moves the optimum by about that much
    assert!(dc <= 1e-6 && dp <= 1e-7, "with and without column factors: coef differ by {dc}, proba by {dp}");
}

#[test]
fn rows_of_many_distinct_values() {
    // dense rows of 60 different values: more than the runs a row's entries are compared with
    let (x, y) = dense_data(200, 60, 11);
    let xs = CsrMatrix::from_dense(&x.view());
    let y = y.to_vec();
    let rows = DualRows::new(&xs, None);
    assert_eq!(rows.n_runs(), rows.nnz(), "every entry is a run of its own");
    let dual = LogRegParams { dual_tol: 1e-10, ..Default::default() }.fit_prepared(&rows, &y).unwrap();
    let tron = LogRegParams { solver: Solver::Tron, tol: 1e-9, ..Default::default() }.fit_sparse(&xs, &y).unwrap();
    let d = max_diff(dual.coef.iter().copied(), tron.coef.iter().copied());
    assert!(d <= 1e-6, "dual and trust region differ by {d}");
}

#[test]
#[should_panic(expected = "col_scale has 3 factors for 2 columns")]
fn column_factors_must_match_the_columns() {
    let x = CsrMatrix::from_dense(&ndarray::array![[1.0, 0.0], [0.5, 2.0]].view());
    DualRows::new(&x, Some(&[1.0, 2.0, 3.0]));
}
