//! A hidden-state probe: small logistic layers that read the model's own representation of a review, for the
//! labels the few-shot answers tell poorly (off-topic text, rants without a visit).
//!
//! While the few-shot scorer ([`super::fewshot::score_review`]) feeds a review's block after the page, the model
//! averages the residual stream of one layer over the fed positions ([`crate::llm::gemma3::Gemma3Model::set_capture`]):
//! a vector of `hidden_size` numbers that costs no extra forward. For each probed label, the probe's logit is
//! `bias + weights . ((h - mean) * inv_std)`, a logistic regression on standardized features.
//!
//! The probe is fitted ([`fit_probe`], `revmod label-probe`) on reviews this project wrote for the purpose
//! (`data/probe-train.csv`: genuine reviews of many kinds of places, off-topic posts, rants without a visit,
//! ads; none copied from a data set), never on the human-labeled sets it is measured on. The embedded
//! model's probe ships as text ([`Probe::embedded`]); another model gets none (its hidden states differ), and
//! the labeler then uses the few-shot answers alone.
//!
//! Math only: no I/O besides parsing and writing the text form.

use std::fmt::Write as _;

use anyhow::{bail, ensure, Context, Result};

use crate::moderation::{Label, PerLabel};

/// Version of the probe's text format.
pub const PROBE_FORMAT: &str = "revmod-probe-v1";

/// The probe fitted for the embedded Gemma-3 270M (see [`Probe::embedded`]).
const EMBEDDED_PROBE: &str = include_str!("probe-gemma3-270m.txt");

/// One probed label's logistic layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeHead {
    /// The label it scores.
    pub label: Label,
    /// Intercept.
    pub bias: f32,
    /// Weights of the standardized features.
    pub weights: Vec<f32>,
}

/// Standardization and per-label logistic layers over one layer's mean hidden state.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// Which layer's residual stream is read (0-based).
    pub layer: usize,
    /// Per-feature mean of the fitting rows.
    pub mean: Vec<f32>,
    /// Per-feature 1 / standard deviation of the fitting rows.
    pub inv_std: Vec<f32>,
    /// The probed labels.
    pub heads: Vec<ProbeHead>,
}

impl Probe {
    /// Number of features (the model's hidden size).
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// First 8 hex digits of the sha256 of the text form: names the probe in the labeler's settings, so
    /// checkpoints notice a refitted probe.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.to_text().as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect()
    }

    /// The probe fitted for the embedded Gemma-3 270M on `data/probe-train.csv` (a unit test checks that it
    /// parses).
    pub fn embedded() -> Result<Self> {
        Self::parse(EMBEDDED_PROBE).context("the embedded probe (src/label/probe-gemma3-270m.txt)")
    }

    /// Each label's logit for a captured hidden state (None for labels without a head).
    /// Errors if `h` does not have [`Probe::dim`] numbers.
    pub fn logits(&self, h: &[f32]) -> Result<PerLabel<Option<f32>>> {
        ensure!(h.len() == self.dim(), "the probe reads {} features but the model captured {}", self.dim(), h.len());
        let z: Vec<f32> = h.iter().zip(&self.mean).zip(&self.inv_std).map(|((x, m), s)| (x - m) * s).collect();
        let mut out = PerLabel([None; 5]);
        for head in &self.heads {
            out[head.label] = Some(head.bias + head.weights.iter().zip(&z).map(|(w, x)| w * x).sum::<f32>());
        }
        Ok(out)
    }

    /// The text form (what [`Probe::parse`] reads): a format line, `layer`, `mean`, `inv_std`, then one
    /// `head LABEL BIAS WEIGHTS...` line per label.
    pub fn to_text(&self) -> String {
        let nums = |v: &[f32]| v.iter().map(|x| format!("{x:.6e}")).collect::<Vec<_>>().join(" ");
        let mut s = format!("{PROBE_FORMAT}\nlayer {}\nmean {}\ninv_std {}\n", self.layer, nums(&self.mean), nums(&self.inv_std));
        for h in &self.heads {
            let _ = writeln!(s, "head {} {:.6e} {}", h.label.name(), h.bias, nums(&h.weights));
        }
        s
    }

    /// Parses [`Probe::to_text`]'s form; errors name the line.
    pub fn parse(text: &str) -> Result<Self> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
        let Some((_, first)) = lines.next() else { bail!("empty probe file") };
        ensure!(first.trim() == PROBE_FORMAT, "line 1: expected {PROBE_FORMAT:?}, found {first:?}");
        let nums = |i: usize, v: &[&str]| -> Result<Vec<f32>> {
            v.iter().map(|x| x.parse::<f32>().with_context(|| format!("line {}: {x:?} is not a number", i + 1))).collect()
        };
        let (mut layer, mut mean, mut inv_std, mut heads) = (None, None, None, Vec::new());
        for (i, l) in lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f[0] {
                "layer" => layer = Some(f.get(1).context("layer: no value")?.parse::<usize>().with_context(|| format!("line {}: bad layer", i + 1))?),
                "mean" => mean = Some(nums(i, &f[1..])?),
                "inv_std" => inv_std = Some(nums(i, &f[1..])?),
                "head" => {
                    ensure!(f.len() >= 3, "line {}: a head needs a label and a bias", i + 1);
                    let label = Label::parse(f[1]).with_context(|| format!("line {}: unknown label {:?}", i + 1, f[1]))?;
                    let bias = nums(i, &f[2..3])?[0];
                    heads.push(ProbeHead { label, bias, weights: nums(i, &f[3..])? });
                }
                other => bail!("line {}: unknown key {other:?}", i + 1),
            }
        }
        let (Some(layer), Some(mean), Some(inv_std)) = (layer, mean, inv_std) else { bail!("the probe file lacks layer, mean or inv_std") };
        ensure!(mean.len() == inv_std.len() && !mean.is_empty(), "mean has {} numbers, inv_std {}", mean.len(), inv_std.len());
        for h in &heads {
            ensure!(h.weights.len() == mean.len(), "head {}: {} weights for {} features", h.label, h.weights.len(), mean.len());
        }
        Ok(Self { layer, mean, inv_std, heads })
    }
}

/// Fits a probe: standardizes the features over all rows, then for each label in `labels` an L2-regularized
/// logistic regression (`l2` per feature weight, batch gradient descent) over the rows whose truth is known.
/// A label without positives or without negatives gets no head.
pub fn fit_probe(layer: usize, feats: &[Vec<f32>], truth: &[PerLabel<Option<bool>>], labels: &[Label], l2: f64) -> Result<Probe> {
    ensure!(!feats.is_empty() && feats.len() == truth.len(), "{} feature rows for {} truth rows", feats.len(), truth.len());
    let d = feats[0].len();
    ensure!(feats.iter().all(|f| f.len() == d), "feature rows of different lengths");
    let n = feats.len() as f64;
    let mut mean = vec![0f64; d];
    for f in feats {
        for (m, x) in mean.iter_mut().zip(f) {
            *m += f64::from(*x) / n;
        }
    }
    let mut var = vec![0f64; d];
    for f in feats {
        for ((v, x), m) in var.iter_mut().zip(f).zip(&mean) {
            *v += (f64::from(*x) - m).powi(2) / n;
        }
    }
    let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / v.sqrt().max(1e-6)).collect();
    let z: Vec<Vec<f64>> = feats.iter().map(|f| f.iter().zip(&mean).zip(&inv_std).map(|((x, m), s)| (f64::from(*x) - m) * s).collect()).collect();
    let mut heads = Vec::new();
    for &k in labels {
        let rows: Vec<(&[f64], f64)> = z.iter().zip(truth).filter_map(|(x, t)| t[k].map(|t| (x.as_slice(), f64::from(u8::from(t))))).collect();
        let pos = rows.iter().filter(|r| r.1 > 0.5).count();
        if pos == 0 || pos == rows.len() {
            continue;
        }
        let (w, b) = logistic(&rows, d, l2);
        heads.push(ProbeHead { label: k, bias: b as f32, weights: w.iter().map(|x| *x as f32).collect() });
    }
    Ok(Probe { layer, mean: mean.iter().map(|x| *x as f32).collect(), inv_std: inv_std.iter().map(|x| *x as f32).collect(), heads })
}

/// L2-regularized logistic regression by batch gradient descent with a fixed step (the features are
/// standardized, so one step size fits every problem here). Classes are weighted to equal total weight, so
/// a rare label is not drowned; the caller moves the intercept to the label's real rate.
fn logistic(rows: &[(&[f64], f64)], d: usize, l2: f64) -> (Vec<f64>, f64) {
    let pos = rows.iter().filter(|r| r.1 > 0.5).count() as f64;
    let neg = rows.len() as f64 - pos;
    let (wp, wn) = (0.5 / pos, 0.5 / neg);
    let (mut w, mut b) = (vec![0f64; d], 0f64);
    let lr = 0.5;
    for _ in 0..600 {
        let mut gw = vec![0f64; d];
        let mut gb = 0f64;
        for &(x, t) in rows {
            let zz = b + w.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
            let err = (1.0 / (1.0 + (-zz).exp()) - t) * if t > 0.5 { wp } else { wn };
            gb += err;
            for (g, xi) in gw.iter_mut().zip(x) {
                *g += err * xi;
            }
        }
        b -= lr * gb;
        for (wi, g) in w.iter_mut().zip(&gw) {
            *wi -= lr * (g + l2 * *wi);
        }
    }
    (w, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_finds_the_direction_and_round_trips() {
        // irrelevant is carried by feature 3 only; the others are noise
        let feats: Vec<Vec<f32>> = (0..60).map(|i| (0..8).map(|j| if j == 3 { if i % 3 == 0 { 2.0 } else { -1.0 } } else { ((i * 7 + j * 13) % 11) as f32 / 5.0 }).collect()).collect();
        let truth: Vec<PerLabel<Option<bool>>> = (0..60).map(|i| PerLabel([None, None, Some(i % 3 == 0), Some(false), None])).collect();
        let p = fit_probe(4, &feats, &truth, &[Label::Irrelevant, Label::NonVisit], 1e-3).unwrap();
        assert_eq!(p.heads.len(), 1, "non_visit has no positives: no head");
        let w = &p.heads[0].weights;
        assert!(w[3] > 0.0 && w.iter().enumerate().all(|(j, x)| j == 3 || x.abs() < w[3].abs()), "{w:?}");
        for (f, t) in feats.iter().zip(&truth) {
            assert_eq!(p.logits(f).unwrap()[Label::Irrelevant].unwrap() > 0.0, t[Label::Irrelevant].unwrap());
        }
        let q = Probe::parse(&p.to_text()).unwrap();
        assert_eq!(q.layer, 4);
        let (a, b) = (p.logits(&feats[0]).unwrap()[Label::Irrelevant].unwrap(), q.logits(&feats[0]).unwrap()[Label::Irrelevant].unwrap());
        assert!((a - b).abs() < 1e-3, "{a} {b}");
        assert!(p.logits(&[0.0; 3]).is_err());
    }

    #[test]
    fn bad_text_is_refused_with_the_line() {
        assert!(Probe::parse("").is_err());
        let e = Probe::parse(&format!("{PROBE_FORMAT}\nlayer 2\nmean 1 2\ninv_std 1 x\n")).unwrap_err();
        assert!(format!("{e:#}").contains("line 4"), "{e:#}");
        let e = Probe::parse(&format!("{PROBE_FORMAT}\nlayer 2\nmean 1 2\ninv_std 1 1\nhead ads 0 1\n")).unwrap_err();
        assert!(format!("{e:#}").contains("1 weights for 2"), "{e:#}");
    }

    #[test]
    fn embedded_probe_parses() {
        let p = Probe::embedded().unwrap();
        assert_eq!(p.dim(), 640);
        assert!(!p.heads.is_empty());
    }
}
