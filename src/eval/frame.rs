//! Reading the ML-ready frame (`text`, `y_*` targets, `split`) into plain vectors for the math, with
//! errors that name the column and row instead of silently dropping bad values.

use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::{DataFrame, DataType};

use crate::labels::{LABELS, TARGETS};

/// Texts of a string column; nulls become "" (the seed's `fillna("")`), counted in the second value.
pub fn texts<'a>(df: &'a DataFrame, column: &str) -> Result<(Vec<&'a str>, usize)> {
    let col = df.column(column).with_context(|| format!("data frame has no `{column}` column"))?;
    let ca = col.str().with_context(|| format!("column `{column}` must be a string column, it is {}", col.dtype()))?;
    let mut nulls = 0;
    let v = ca
        .iter()
        .map(|s| {
            s.unwrap_or_else(|| {
                nulls += 1;
                ""
            })
        })
        .collect();
    Ok((v, nulls))
}

/// 0/1 target column as booleans; any other value or a null is an error naming the row.
pub fn targets(df: &DataFrame, column: &str) -> Result<Vec<bool>> {
    let col = df.column(column).with_context(|| format!("data frame has no target column `{column}`"))?;
    let col = col
        .cast(&DataType::Int64)
        .with_context(|| format!("target column `{column}` ({}) is not numeric", col.dtype()))?;
    let ca = col.i64()?;
    ca.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(x) => bail!("target column `{column}` row {i}: value {x} is not 0 or 1"),
            None => bail!("target column `{column}` row {i}: null target"),
        })
        .collect()
}

/// Row indices whose `split` column equals `split`.
pub fn split_rows(df: &DataFrame, split: &str) -> Result<Vec<usize>> {
    let col = df.column("split").context("data frame has no `split` column (expected the output of `split`)")?;
    let ca = col.str().with_context(|| format!("column `split` must be strings, it is {}", col.dtype()))?;
    Ok(ca.iter().enumerate().filter(|(_, s)| *s == Some(split)).map(|(i, _)| i).collect())
}

/// Target column of a model label (`ads` -> `y_ads`), from the shared label tables.
pub fn target_of(label: &str) -> Result<&'static str> {
    LABELS
        .iter()
        .position(|l| *l == label)
        .map(|i| TARGETS[i])
        .ok_or_else(|| anyhow!("model label `{label}` is not one of {LABELS:?}"))
}

/// Picks `idx` entries of `v`.
pub fn take<T: Copy>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i]).collect()
}
