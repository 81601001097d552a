//! Saving and loading a [`Baseline`]: versioned JSON plus one safetensors file for the weights, all
//! readable from Python with the standard library and numpy (format: docs/model-format.md).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use super::{Baseline, LabelModel, Metrics};
use crate::linear::LogRegModel;
use crate::text::{FittedTextFeatures, FittedTfidf, TfidfParams};

/// Value of `format` in manifest.json.
pub const FORMAT: &str = "revmod/baseline_tfidf_lr";
/// Current format version (bump on incompatible changes; `load` rejects newer versions).
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    labels: Vec<String>,
    n_features: usize,
    blocks: Vec<Block>,
    models: String,
    weights: String,
    thresholds: String,
}

#[derive(Serialize, Deserialize)]
struct Block {
    name: String,
    file: String,
    offset: usize,
    n_features: usize,
}

#[derive(Serialize, Deserialize)]
struct VectorizerFile {
    format: String,
    version: u32,
    params: TfidfParams,
    vocabulary: Vec<String>,
    idf: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
struct ModelsFile {
    version: u32,
    models: Vec<ModelEntry>,
}

#[derive(Serialize, Deserialize)]
struct ModelEntry {
    label: String,
    /// "logreg" (weights in row `row` of the `coef` tensor) or "constant".
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    intercept: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    row: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proba: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    solver: Option<crate::linear::SolverInfo>,
}

#[derive(Serialize, Deserialize)]
struct ThresholdsFile {
    version: u32,
    thresholds: BTreeMap<String, f64>,
    reasons: BTreeMap<String, String>,
}

/// Writes `v` as JSON, atomically ([`crate::output::write_atomic`]: a crash never leaves half a file).
fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    crate::output::write_atomic(path, |f| {
        let mut w = std::io::BufWriter::new(f);
        serde_json::to_writer(&mut w, v)?;
        Ok(w.flush()?)
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    serde_json::from_reader(std::io::BufReader::new(f)).with_context(|| format!("parsing {}", path.display()))
}

/// Writes one F64 tensor `name` of `shape` as a safetensors file (atomically).
pub fn write_safetensors_f64(path: &Path, name: &str, shape: [usize; 2], data: &[f64]) -> Result<()> {
    ensure!(shape[0] * shape[1] == data.len(), "tensor shape {shape:?} does not hold {} values", data.len());
    let header = serde_json::json!({
        name: {"dtype": "F64", "shape": shape, "data_offsets": [0, data.len() * 8]},
        "__metadata__": {"format": FORMAT},
    });
    let mut h = serde_json::to_vec(&header)?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    crate::output::write_atomic(path, |f| {
        let mut w = std::io::BufWriter::new(f);
        w.write_all(&(h.len() as u64).to_le_bytes())?;
        w.write_all(&h)?;
        for v in data {
            w.write_all(&v.to_le_bytes())?;
        }
        Ok(w.flush()?)
    })
}

/// Reads the F64 tensor `name` of a safetensors file: `(shape, values)`.
pub fn read_safetensors_f64(path: &Path, name: &str) -> Result<([usize; 2], Vec<f64>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(bytes.len() >= 8, "{}: too short for safetensors", path.display());
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    ensure!(bytes.len() >= 8 + n, "{}: header length {n} exceeds the file", path.display());
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + n]).with_context(|| format!("{}: bad header", path.display()))?;
    let t = header.get(name).with_context(|| format!("{}: no tensor {name:?}", path.display()))?;
    ensure!(t["dtype"] == "F64", "{}: tensor {name:?} is {} not F64", path.display(), t["dtype"]);
    let shape: Vec<usize> = serde_json::from_value(t["shape"].clone())?;
    let off: Vec<usize> = serde_json::from_value(t["data_offsets"].clone())?;
    ensure!(shape.len() == 2 && off.len() == 2, "{}: tensor {name:?} is not 2-d", path.display());
    let (a, b) = (8 + n + off[0], 8 + n + off[1]);
    ensure!(b <= bytes.len() && (b - a) == shape[0] * shape[1] * 8, "{}: tensor {name:?} data size mismatch", path.display());
    let data = bytes[a..b].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
    Ok(([shape[0], shape[1]], data))
}

/// Writes `dir/manifest.json`, `vectorizer_word.json`, `vectorizer_char.json`, `models.json`,
/// `weights.safetensors`, `thresholds.json`.
pub fn save(b: &Baseline, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let nf = b.features.n_features();
    let mut blocks = Vec::new();
    let mut offset = 0;
    for (name, v) in [("word", &b.features.word), ("char", &b.features.char)] {
        let file = format!("vectorizer_{name}.json");
        write_json(
            &dir.join(&file),
            &VectorizerFile {
                format: "revmod/tfidf".into(),
                version: VERSION,
                params: v.params.clone(),
                vocabulary: v.vocabulary().to_vec(),
                idf: v.idf().to_vec(),
            },
        )?;
        blocks.push(Block { name: name.into(), file, offset, n_features: v.n_features() });
        offset += v.n_features();
    }
    let mut coef = vec![0.0; b.labels.len() * nf];
    let mut entries = Vec::new();
    for (k, (label, m)) in b.labels.iter().zip(&b.models).enumerate() {
        entries.push(match m {
            LabelModel::Logreg(m) => {
                coef[k * nf..(k + 1) * nf].copy_from_slice(&m.coef);
                ModelEntry {
                    label: label.clone(),
                    kind: "logreg".into(),
                    intercept: Some(m.intercept),
                    row: Some(k),
                    proba: None,
                    reason: None,
                    solver: m.solver,
                }
            }
            LabelModel::Constant { proba, reason } => ModelEntry {
                label: label.clone(),
                kind: "constant".into(),
                intercept: None,
                row: None,
                proba: Some(*proba),
                reason: Some(reason.clone()),
                solver: None,
            },
        });
    }
    write_safetensors_f64(&dir.join("weights.safetensors"), "coef", [b.labels.len(), nf], &coef)?;
    write_json(&dir.join("models.json"), &ModelsFile { version: VERSION, models: entries })?;
    let th = ThresholdsFile {
        version: VERSION,
        thresholds: b.labels.iter().cloned().zip(b.thresholds.iter().copied()).collect(),
        reasons: b.labels.iter().cloned().zip(b.threshold_reasons.iter().cloned()).collect(),
    };
    write_json(&dir.join("thresholds.json"), &th)?;
    write_json(
        &dir.join("manifest.json"),
        &Manifest {
            format: FORMAT.into(),
            version: VERSION,
            labels: b.labels.clone(),
            n_features: nf,
            blocks,
            models: "models.json".into(),
            weights: "weights.safetensors".into(),
            thresholds: "thresholds.json".into(),
        },
    )?;
    Ok(())
}

/// Saves the model and `metrics.csv` next to it.
pub fn save_with_metrics(b: &Baseline, metrics: &Metrics, dir: &Path) -> Result<()> {
    save(b, dir)?;
    metrics.save_csv(dir.join("metrics.csv"))
}

/// Reads a model written by [`save`]: `dir` is the model folder, or the output folder of `revmod train` /
/// `train_baseline` that holds it under `models/baseline_tfidf_lr/` (what a user passes to `--out` is what
/// they pass back to `--model`).
pub fn load(dir: &Path) -> Result<Baseline> {
    let nested = super::model_dir(dir);
    let dir = if !dir.join("manifest.json").exists() && nested.join("manifest.json").is_file() { nested.as_path() } else { dir };
    ensure!(
        dir.join("manifest.json").is_file(),
        "{}: no model here (no manifest.json, nor models/{}/manifest.json): give the folder `revmod train --out` wrote, or its models/{} folder",
        dir.display(),
        super::MODEL_DIR,
        super::MODEL_DIR
    );
    let m: Manifest = read_json(&dir.join("manifest.json"))?;
    ensure!(m.format == FORMAT, "{}: format {:?} is not {FORMAT:?}", dir.display(), m.format);
    ensure!(
        m.version <= VERSION,
        "{}: format version {} is newer than this revmod reads ({VERSION})",
        dir.display(),
        m.version
    );
    let mut vecs = Vec::new();
    for (k, blk) in m.blocks.iter().enumerate() {
        let path = dir.join(&blk.file);
        let v: VectorizerFile = read_json(&path)?;
        ensure!(v.vocabulary.len() == blk.n_features, "{}: {} terms, manifest says {}", path.display(), v.vocabulary.len(), blk.n_features);
        let f = FittedTfidf::from_parts(v.params, v.vocabulary, v.idf).with_context(|| format!("in {}", path.display()))?;
        ensure!(blk.name == ["word", "char"].get(k).copied().unwrap_or(""), "{}: unexpected block {:?}", dir.display(), blk.name);
        vecs.push(f);
    }
    ensure!(vecs.len() == 2, "{}: expected word and char vectorizers, found {}", dir.display(), vecs.len());
    let char = vecs.pop().unwrap();
    let word = vecs.pop().unwrap();
    let features = FittedTextFeatures { word, char };
    ensure!(features.n_features() == m.n_features, "{}: feature count mismatch", dir.display());
    let wpath = dir.join(&m.weights);
    let (shape, coef) = read_safetensors_f64(&wpath, "coef")?;
    ensure!(shape == [m.labels.len(), m.n_features], "{}: coef shape {shape:?} does not match the manifest", wpath.display());
    let mf: ModelsFile = read_json(&dir.join(&m.models))?;
    let mut models = Vec::new();
    for (label, e) in m.labels.iter().zip(&mf.models) {
        ensure!(&e.label == label, "models.json lists {:?} where the manifest has {label:?}", e.label);
        models.push(match e.kind.as_str() {
            "logreg" => {
                let row = e.row.context("logreg entry without `row`")?;
                ensure!(row < shape[0], "models.json: row {row} out of range");
                LabelModel::Logreg(LogRegModel {
                    coef: coef[row * shape[1]..(row + 1) * shape[1]].to_vec(),
                    intercept: e.intercept.context("logreg entry without `intercept`")?,
                    solver: e.solver,
                })
            }
            "constant" => LabelModel::Constant {
                proba: e.proba.context("constant entry without `proba`")?,
                reason: e.reason.clone().unwrap_or_default(),
            },
            other => bail!("models.json: unknown model kind {other:?} for {label:?}"),
        });
    }
    ensure!(models.len() == m.labels.len(), "models.json has {} models for {} labels", models.len(), m.labels.len());
    let th: ThresholdsFile = read_json(&dir.join(&m.thresholds))?;
    let mut thresholds = Vec::new();
    let mut reasons = Vec::new();
    for l in &m.labels {
        thresholds.push(*th.thresholds.get(l).with_context(|| format!("thresholds.json has no threshold for {l:?}"))?);
        reasons.push(th.reasons.get(l).cloned().unwrap_or_default());
    }
    Baseline::from_parts(m.labels, features, models, thresholds, reasons)
}
