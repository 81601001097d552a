//! Seed cells 15-19 on a scored frame (the output of `score_all` or `revmod score`): how many reviews
//! each label flags (table + bar chart) and example reviews per predicted label.

use anyhow::{Context, Result};
use polars::prelude::{df, DataFrame, DataType, IdxCa, IdxSize};

use crate::moderation::{Label, LABELS};
use crate::show::{chart, DataFrameShow, Many, Svg, Text};

/// Predicted label distribution: rows flagged per label and their share, with a bar chart.
#[derive(Debug, Clone)]
pub struct LabelDistribution {
    /// Columns `label`, `flagged`, `share` (fraction of all rows).
    pub table: DataFrame,
    /// Bar chart of the flagged share per label.
    pub chart: Svg,
    /// Rows in the scored frame.
    pub rows: usize,
}

impl LabelDistribution {
    /// Table and chart as one cell output.
    pub fn show(&self) -> Many {
        Many::new()
            .heading(&format!("Predicted labels over {} reviews", self.rows))
            .with(&self.table.table(20))
            .with(&self.chart)
    }

    /// Shows [`LabelDistribution::show`] in an evcxr cell.
    pub fn evcxr_display(&self) {
        self.show().evcxr_display();
    }
}

fn flags(scored: &DataFrame, label: &str) -> Result<Vec<bool>> {
    let col = scored
        .column(label)
        .with_context(|| format!("scored frame has no `{label}` column (run score_all first)"))?;
    let col = col.cast(&DataType::Int32).with_context(|| format!("column `{label}` is not 0/1"))?;
    Ok(col.i32()?.iter().map(|v| v == Some(1)).collect())
}

/// Seed cell 15: rows flagged per label (every [`LABELS`] column present in `scored`), as a table and a
/// bar chart of the shares.
pub fn label_distribution(scored: &DataFrame) -> Result<LabelDistribution> {
    let n = scored.height();
    let labels: Vec<&str> = LABELS.iter().copied().filter(|l| scored.column(l).is_ok()).collect();
    anyhow::ensure!(!labels.is_empty(), "scored frame has none of the label columns {LABELS:?}");
    let mut counts = Vec::new();
    for l in &labels {
        counts.push(flags(scored, l)?.iter().filter(|&&b| b).count() as u64);
    }
    let shares: Vec<f64> = counts.iter().map(|&c| c as f64 / n.max(1) as f64).collect();
    let table = df![
        "label" => labels.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "flagged" => counts.clone(),
        "share" => shares.clone(),
    ]?;
    let data: Vec<(String, f64)> = labels.iter().map(|s| s.to_string()).zip(shares.iter().map(|s| 100.0 * s)).collect();
    let chart = chart::bars(&format!("Share of {n} reviews flagged per label"), "% of reviews", &data, &|v| format!("{v:.1}%"))?;
    Ok(LabelDistribution { table, chart, rows: n })
}

/// Seed cells 16-19: up to `n` reviews flagged with `label`, most confident first (`p_<label>`
/// descending), with the given extra columns (those present) next to the text and the probability.
pub fn label_examples(scored: &DataFrame, label: &str, n: usize, text_column: &str, extra: &[&str]) -> Result<DataFrame> {
    let f = flags(scored, label)?;
    let pcol = format!("p_{label}");
    let p: Vec<f64> = scored
        .column(&pcol)
        .with_context(|| format!("scored frame has no `{pcol}` column"))?
        .f64()
        .with_context(|| format!("`{pcol}` is not f64"))?
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect();
    let mut idx: Vec<usize> = (0..f.len()).filter(|&i| f[i]).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    idx.truncate(n);
    let take = IdxCa::from_vec("idx".into(), idx.iter().map(|&i| i as IdxSize).collect());
    let mut names: Vec<String> = vec![text_column.to_string(), pcol];
    names.extend(extra.iter().filter(|c| scored.column(c).is_ok()).map(|s| s.to_string()));
    let sel = scored.select(names.iter().map(|s| s.as_str()))?;
    Ok(sel.take(&take)?)
}

/// Seed cells 16-19 in one display: `n` example reviews for each of ads, irrelevant, non_visit, spam.
pub fn examples_per_label(scored: &DataFrame, n: usize, text_column: &str, extra: &[&str]) -> Result<Many> {
    let mut m = Many::new();
    for label in Label::ALL.into_iter().filter(|&l| l != Label::Relevant).map(Label::name) {
        if scored.column(label).is_err() {
            continue;
        }
        let ex = label_examples(scored, label, n, text_column, extra)?;
        m = m.heading(&format!("Predicted {label}: {} example(s), most confident first", ex.height()));
        m = if ex.height() == 0 { m.with(&Text("none flagged".into())) } else { m.with(&ex.table(n)) };
    }
    Ok(m)
}
