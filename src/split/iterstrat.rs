//! Iterative multilabel stratification (Sechidis et al. 2011) exactly as iterstrat 0.1.9 runs it.
//!
//! Pure functions on a 0/1 label matrix. The float bookkeeping (desired counts `r * n` decremented by
//! one per assigned row, compared with `==` against the maximum) and every random draw follow iterstrat's
//! `IterativeStratification` and `MultilabelStratifiedShuffleSplit._iter_indices`, so with the same seed
//! the same rows land in the same fold.

use super::numpy_rng::RandomState;

/// A dense 0/1 label matrix, row-major: `n_rows x n_labels`.
#[derive(Clone, Debug)]
pub struct LabelMatrix {
    /// Row-major values, `rows * labels` long.
    pub data: Vec<bool>,
    /// Number of label columns.
    pub n_labels: usize,
}

impl LabelMatrix {
    /// Builds a matrix from rows (every row must have the same length).
    pub fn from_rows(rows: &[Vec<bool>]) -> Self {
        let n_labels = rows.first().map_or(0, |r| r.len());
        let mut data = Vec::with_capacity(rows.len() * n_labels);
        for r in rows {
            assert_eq!(r.len(), n_labels, "ragged label matrix");
            data.extend_from_slice(r);
        }
        LabelMatrix { data, n_labels }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        if self.n_labels == 0 {
            0
        } else {
            self.data.len() / self.n_labels
        }
    }

    /// One row.
    pub fn row(&self, i: usize) -> &[bool] {
        &self.data[i * self.n_labels..(i + 1) * self.n_labels]
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> LabelMatrix {
        let mut data = Vec::with_capacity(idx.len() * self.n_labels);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        LabelMatrix { data, n_labels: self.n_labels }
    }
}

/// Indices of the maxima of `v` (exact float equality, like `np.where(v == v.max())`).
fn argmax_all(v: impl Iterator<Item = f64> + Clone) -> Vec<usize> {
    let m = v.clone().fold(f64::NEG_INFINITY, f64::max);
    v.enumerate().filter(|(_, x)| *x == m).map(|(i, _)| i).collect()
}

/// Assigns every row to a fold so that fold `k` gets about `r[k]` of the rows and of each label's
/// positives; returns the fold of each row. Ties are broken with `rng` exactly like iterstrat.
pub fn iterative_stratification(y: &LabelMatrix, r: &[f64], rng: &mut RandomState) -> Vec<usize> {
    let n = y.n_rows();
    let nl = y.n_labels;
    let mut folds = vec![0usize; n];
    let mut c_folds: Vec<f64> = r.iter().map(|&ri| ri * n as f64).collect();
    let mut sums = vec![0u64; nl];
    for i in 0..n {
        for (j, &b) in y.row(i).iter().enumerate() {
            sums[j] += b as u64;
        }
    }
    // c_folds_labels[k * nl + j] = r[k] * sums[j]
    let mut c_labels: Vec<f64> = Vec::with_capacity(r.len() * nl);
    for &ri in r {
        for &s in &sums {
            c_labels.push(ri * s as f64);
        }
    }
    let mut open = vec![true; n];
    let mut n_open = n;
    while n_open > 0 {
        let mut num = vec![0u64; nl];
        for i in (0..n).filter(|&i| open[i]) {
            for (j, &b) in y.row(i).iter().enumerate() {
                num[j] += b as u64;
            }
        }
        if num.iter().all(|&c| c == 0) {
            for i in 0..n {
                if !open[i] {
                    continue;
                }
                let cand = argmax_all(c_folds.iter().copied());
                let f = if cand.len() > 1 { cand[rng.choice(cand.len())] } else { cand[0] };
                folds[i] = f;
                c_folds[f] -= 1.0;
            }
            break;
        }
        let min = num.iter().copied().filter(|&c| c > 0).min().expect("a nonzero label");
        let cand: Vec<usize> = (0..nl).filter(|&j| num[j] == min).collect();
        let label = if cand.len() > 1 { cand[rng.choice(cand.len())] } else { cand[0] };
        let rows: Vec<usize> = (0..n).filter(|&i| open[i] && y.row(i)[label]).collect();
        for i in rows {
            let cand = argmax_all((0..r.len()).map(|k| c_labels[k * nl + label]));
            let f = if cand.len() > 1 {
                let tmp = argmax_all(cand.iter().map(|&k| c_folds[k]));
                if tmp.len() > 1 {
                    cand[tmp[rng.choice(tmp.len())]]
                } else {
                    cand[tmp[0]]
                }
            } else {
                cand[0]
            };
            folds[i] = f;
            open[i] = false;
            n_open -= 1;
            for (j, &b) in y.row(i).iter().enumerate() {
                if b {
                    c_labels[f * nl + j] -= 1.0;
                }
            }
            c_folds[f] -= 1.0;
        }
    }
    folds
}

/// Test-set size like scikit-learn's `_validate_shuffle_split` for a float `test_size`:
/// `n_test = ceil(test_size * n)`, `n_train = n - n_test`; errors when either side would be empty.
pub fn shuffle_split_sizes(n: usize, test_size: f64) -> anyhow::Result<(usize, usize)> {
    anyhow::ensure!(
        test_size > 0.0 && test_size < 1.0,
        "test_size={test_size} should be a float in the (0, 1) range"
    );
    let n_test = (test_size * n as f64).ceil() as usize;
    anyhow::ensure!(n_test < n || n == 0, "test_size={test_size} leaves no training rows out of {n}");
    let n_train = n - n_test;
    anyhow::ensure!(
        n_train > 0,
        "with n_samples={n} and test_size={test_size} the train set would be empty"
    );
    Ok((n_train, n_test))
}

/// One split of `MultilabelStratifiedShuffleSplit(n_splits=1, test_size, random_state=seed)`:
/// returns `(train, test)` row indices, each ascending.
pub fn multilabel_stratified_shuffle_split(
    y: &LabelMatrix,
    test_size: f64,
    seed: u32,
) -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    let n = y.n_rows();
    let (n_train, n_test) = shuffle_split_sizes(n, test_size)?;
    let total = (n_train + n_test) as f64;
    let r = [n_train as f64 / total, n_test as f64 / total];
    let mut rng = RandomState::new(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut perm);
    let shuffled = y.select(&perm);
    let folds = iterative_stratification(&shuffled, &r, &mut rng);
    let mut is_test = vec![false; n];
    for (p, &orig) in perm.iter().enumerate() {
        is_test[orig] = folds[p] == 1;
    }
    let test = (0..n).filter(|&i| is_test[i]).collect();
    let train = (0..n).filter(|&i| !is_test[i]).collect();
    Ok((train, test))
}
