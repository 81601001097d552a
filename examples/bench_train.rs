//! Rust side of scripts/bench-train: fits the seed's baseline (word + char TF-IDF, liblinear-objective
//! logistic regression for 5 labels) on the texts and labels of a JSON file written by
//! scripts/bench_train.py, and writes the fit seconds and the probabilities of the first 1000 rows.
//!
//! usage: bench_train DATA.json OUT.json

use revmod::linear::LogRegParams;
use revmod::text::TextFeaturesParams;

/// CPU seconds (user + system, all threads) of this process so far, from /proc/self/stat (Linux,
/// 100 clock ticks per second); 0 where unavailable.
fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() == 3, "usage: bench_train DATA.json OUT.json");
    let d: serde_json::Value = serde_json::from_slice(&std::fs::read(&args[1])?)?;
    let texts: Vec<String> = serde_json::from_value(d["texts"].clone())?;
    let rows: Vec<Vec<u8>> = serde_json::from_value(d["y"].clone())?;
    let docs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let ys: Vec<Vec<bool>> = (0..5).map(|j| rows.iter().map(|r| r[j] == 1).collect()).collect();
    let c0 = cpu_seconds();
    let t0 = std::time::Instant::now();
    let (features, x) = TextFeaturesParams::default().fit_transform(&docs)?;
    let t1 = std::time::Instant::now();
    let targets: Vec<&[bool]> = ys.iter().map(|y| y.as_slice()).collect();
    let models = LogRegParams::default().fit_many(&x, Some(&features.idf()), &targets).into_iter().collect::<Result<Vec<_>, _>>()?;
    let t2 = std::time::Instant::now();
    let cpu = cpu_seconds() - c0;
    let first = x.select_rows(&(0..x.n_rows.min(1000)).collect::<Vec<_>>());
    let proba: Vec<Vec<f64>> = models.iter().map(|m| m.predict_proba(&first).to_vec()).collect();
    let out = serde_json::json!({
        "vectorize_s": (t1 - t0).as_secs_f64(), "fit_s": (t2 - t1).as_secs_f64(), "total_s": (t2 - t0).as_secs_f64(), "cpu_s": cpu,
        "n_features": features.n_features(), "proba": proba,
        "solver": models.iter().map(|m| m.solver).collect::<Vec<_>>(),
    });
    std::fs::write(&args[2], serde_json::to_vec(&out)?)?;
    Ok(())
}
