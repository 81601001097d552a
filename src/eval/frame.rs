//! Reading the ML-ready frame (`text`, `split`) into plain vectors for the math, with errors that name the
//! column and row instead of silently dropping bad values (the `y_*` targets: [`crate::moderation::target_column`]).

use anyhow::{Context, Result};
use polars::prelude::DataFrame;

use crate::split::Part;

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

/// Row indices whose `split` column is `part`.
pub fn split_rows(df: &DataFrame, part: Part) -> Result<Vec<usize>> {
    let col = df.column("split").context("data frame has no `split` column (expected the output of `split`)")?;
    let ca = col.str().with_context(|| format!("column `split` must be strings, it is {}", col.dtype()))?;
    Ok(ca.iter().enumerate().filter(|(_, s)| *s == Some(part.as_str())).map(|(i, _)| i).collect())
}

/// Picks `idx` entries of `v`.
pub fn take<T: Copy>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i]).collect()
}
