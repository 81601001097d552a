//! Google Local 2021 records -> typed polars columns.
//!
//! Each JSON object is read field by field into column builders. Known fields get their types (nested
//! ones stay nested: `resp` is a struct, `pics` a list of URLs, `category` and `relative_results` lists of
//! strings, `hours` a list of `[day, hours]` pairs, `MISC` a struct of string lists); a field with an
//! unexpected type becomes null and is reported (file:line) rather than dropping the review; unknown
//! fields are kept, as one JSON object per row in the `extra` (`meta_extra`) column.

use std::path::Path;

use polars::prelude::*;
use polars_arrow::bitmap::Bitmap;
use serde_json::{Map, Value};

use super::jsonl::{json_kind, parse_object, BadLine};

/// Review column names after loading, in order (`name` becomes `reviewer_name`).
pub const REVIEW_COLUMNS: [&str; 9] =
    ["user_id", "reviewer_name", "time", "rating", "text", "pics", "resp", "gmap_id", "extra"];

/// Business column names joined onto each review, in order (`name` becomes `business_name`).
pub const META_COLUMNS: [&str; 14] = [
    "business_name",
    "address",
    "description",
    "latitude",
    "longitude",
    "category",
    "avg_rating",
    "num_of_reviews",
    "price",
    "hours",
    "MISC",
    "state",
    "relative_results",
    "url",
];

const REVIEW_KEYS: [&str; 8] = ["user_id", "name", "time", "rating", "text", "pics", "resp", "gmap_id"];
const META_KEYS: [&str; 15] = [
    "name",
    "address",
    "gmap_id",
    "description",
    "latitude",
    "longitude",
    "category",
    "avg_rating",
    "num_of_reviews",
    "price",
    "hours",
    "MISC",
    "state",
    "relative_results",
    "url",
];

/// Collects field problems (wrong types) without stopping the load.
pub(crate) struct FieldIssues<'a> {
    pub file: &'a Path,
    pub issues: Vec<BadLine>,
}

impl FieldIssues<'_> {
    fn bad(&mut self, line: usize, field: &str, expected: &str, v: &Value) {
        self.issues.push(BadLine {
            file: self.file.to_path_buf(),
            line,
            error: format!("field `{field}`: expected {expected}, found {} (kept the row, set the field to null)", json_kind(v)),
        });
    }

    fn str(&mut self, line: usize, field: &str, v: Option<&Value>) -> Option<String> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            // Ids sometimes arrive as numbers; keep their text.
            Some(Value::Number(n)) if field == "user_id" => Some(n.to_string()),
            Some(other) => {
                self.bad(line, field, "a string", other);
                None
            }
        }
    }

    fn int(&mut self, line: usize, field: &str, v: Option<&Value>) -> Option<i64> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Some(i),
                None => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Some(f as i64),
                    _ => {
                        self.bad(line, field, "an integer", &Value::Number(n.clone()));
                        None
                    }
                },
            },
            Some(other) => {
                self.bad(line, field, "an integer", other);
                None
            }
        }
    }

    fn float(&mut self, line: usize, field: &str, v: Option<&Value>) -> Option<f64> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(other) => {
                self.bad(line, field, "a number", other);
                None
            }
        }
    }

    fn str_list(&mut self, line: usize, field: &str, v: Option<&Value>) -> Option<Vec<String>> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => {
                let mut out = Vec::with_capacity(a.len());
                for x in a {
                    match x {
                        Value::String(s) => out.push(s.clone()),
                        Value::Null => {}
                        other => out.push(other.to_string()),
                    }
                }
                Some(out)
            }
            // A single string where a list is expected: a one-element list.
            Some(Value::String(s)) => Some(vec![s.clone()]),
            Some(other) => {
                self.bad(line, field, "a list of strings", other);
                None
            }
        }
    }
}

fn extra_json(obj: &Map<String, Value>, known: &[&str]) -> Option<String> {
    let mut extra = Map::new();
    for (k, v) in obj {
        if !known.contains(&k.as_str()) {
            extra.insert(k.clone(), v.clone());
        }
    }
    if extra.is_empty() {
        None
    } else {
        Some(Value::Object(extra).to_string())
    }
}

/// The exact Google Local review shape, borrowed from the line: the fast path of [`ReviewCols::push_line`].
/// Anything else (unknown fields, other types, duplicate keys) fails here and takes the general path, so
/// both paths give the same row for every line the fast path accepts.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FastReview<'a> {
    #[serde(borrow, default)]
    user_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    time: Option<i64>,
    #[serde(default)]
    rating: Option<i64>,
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pics: Option<Vec<FastPic<'a>>>,
    #[serde(borrow, default)]
    resp: Option<FastResp<'a>>,
    #[serde(borrow, default)]
    gmap_id: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FastPic<'a> {
    #[serde(borrow)]
    url: Vec<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FastResp<'a> {
    #[serde(default)]
    time: Option<i64>,
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
}

/// Column builders for review records.
#[derive(Default, Debug, PartialEq)]
pub(crate) struct ReviewCols {
    pub user_id: Vec<Option<String>>,
    pub name: Vec<Option<String>>,
    pub time: Vec<Option<i64>>,
    pub rating: Vec<Option<i64>>,
    pub text: Vec<Option<String>>,
    pub pics: Vec<Option<Vec<String>>>,
    pub resp_time: Vec<Option<i64>>,
    pub resp_text: Vec<Option<String>>,
    pub resp_valid: Vec<bool>,
    pub gmap_id: Vec<Option<String>>,
    pub extra: Vec<Option<String>>,
}

impl ReviewCols {
    /// Number of rows pushed so far.
    pub fn len(&self) -> usize {
        self.user_id.len()
    }

    /// Reads one review line: the typed fast path when the line has exactly the review shape, else the
    /// general JSON path. `Err` for a line that is not a JSON object (the caller reports it).
    pub fn push_line(&mut self, fi: &mut FieldIssues<'_>, line: usize, raw: &str) -> Result<(), BadLine> {
        if let Ok(r) = serde_json::from_str::<FastReview<'_>>(raw) {
            let own = |c: Option<std::borrow::Cow<'_, str>>| c.map(|c| c.into_owned());
            self.user_id.push(own(r.user_id));
            self.name.push(own(r.name));
            self.time.push(r.time);
            self.rating.push(r.rating);
            self.text.push(own(r.text));
            self.pics.push(r.pics.map(|ps| ps.into_iter().flat_map(|p| p.url).map(|u| u.into_owned()).collect()));
            match r.resp {
                Some(x) => {
                    self.resp_time.push(x.time);
                    self.resp_text.push(own(x.text));
                    self.resp_valid.push(true);
                }
                None => {
                    self.resp_time.push(None);
                    self.resp_text.push(None);
                    self.resp_valid.push(false);
                }
            }
            self.gmap_id.push(own(r.gmap_id));
            self.extra.push(None);
            return Ok(());
        }
        let m = parse_object(fi.file, line, raw)?;
        self.push(fi, line, &m);
        Ok(())
    }

    /// Reads one review object; returns the dedup key fields by reference through the pushed row.
    pub fn push(&mut self, fi: &mut FieldIssues<'_>, line: usize, obj: &Map<String, Value>) {
        self.user_id.push(fi.str(line, "user_id", obj.get("user_id")));
        self.name.push(fi.str(line, "name", obj.get("name")));
        self.time.push(fi.int(line, "time", obj.get("time")));
        self.rating.push(fi.int(line, "rating", obj.get("rating")));
        self.text.push(fi.str(line, "text", obj.get("text")));
        self.pics.push(match obj.get("pics") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                // [{"url": ["https://...", ...]}, ...] -> all URLs in order
                let mut urls = Vec::new();
                for it in items {
                    match it.get("url") {
                        Some(Value::Array(us)) => urls.extend(us.iter().filter_map(|u| u.as_str().map(str::to_string))),
                        Some(Value::String(u)) => urls.push(u.clone()),
                        _ => {
                            if let Value::String(u) = it {
                                urls.push(u.clone())
                            }
                        }
                    }
                }
                Some(urls)
            }
            Some(other) => {
                fi.bad(line, "pics", "a list", other);
                None
            }
        });
        match obj.get("resp") {
            None | Some(Value::Null) => {
                self.resp_time.push(None);
                self.resp_text.push(None);
                self.resp_valid.push(false);
            }
            Some(Value::Object(r)) => {
                self.resp_time.push(fi.int(line, "resp.time", r.get("time")));
                self.resp_text.push(fi.str(line, "resp.text", r.get("text")));
                self.resp_valid.push(true);
            }
            Some(other) => {
                fi.bad(line, "resp", "an object", other);
                self.resp_time.push(None);
                self.resp_text.push(None);
                self.resp_valid.push(false);
            }
        }
        self.gmap_id.push(fi.str(line, "gmap_id", obj.get("gmap_id")));
        self.extra.push(extra_json(obj, &REVIEW_KEYS));
    }

    /// Builds the review columns (see [`REVIEW_COLUMNS`]) for the rows in `keep` (all rows if `None`).
    pub fn finish(self) -> PolarsResult<Vec<Column>> {
        let n = self.len();
        let resp = StructChunked::from_series(
            "resp".into(),
            n,
            [Series::new("time".into(), self.resp_time), Series::new("text".into(), self.resp_text)].iter(),
        )?
        .with_outer_validity(Some(self.resp_valid.into_iter().collect()));
        Ok(vec![
            Column::new("user_id".into(), self.user_id),
            Column::new("reviewer_name".into(), self.name),
            Column::new("time".into(), self.time),
            Column::new("rating".into(), self.rating),
            Column::new("text".into(), self.text),
            list_str_column("pics", self.pics).into(),
            resp.into_series().into(),
            Column::new("gmap_id".into(), self.gmap_id),
            Column::new("extra".into(), self.extra),
        ])
    }
}

/// A List(String) column from optional string lists.
pub(crate) fn list_str_column(name: &str, rows: Vec<Option<Vec<String>>>) -> Series {
    let values: usize = rows.iter().map(|r| r.as_ref().map_or(0, |v| v.len())).sum();
    let mut b = ListStringChunkedBuilder::new(name.into(), rows.len(), values);
    for r in &rows {
        match r {
            Some(v) => b.append_values_iter(v.iter().map(String::as_str)),
            None => b.append_null(),
        }
    }
    b.finish().into_series()
}

/// Column builders for business metadata records.
#[derive(Default)]
pub(crate) struct MetaCols {
    pub gmap_id: Vec<Option<String>>,
    name: Vec<Option<String>>,
    address: Vec<Option<String>>,
    description: Vec<Option<String>>,
    latitude: Vec<Option<f64>>,
    longitude: Vec<Option<f64>>,
    category: Vec<Option<Vec<String>>>,
    avg_rating: Vec<Option<f64>>,
    num_of_reviews: Vec<Option<i64>>,
    price: Vec<Option<String>>,
    hours: Vec<Option<Vec<Vec<String>>>>,
    misc: Vec<Option<Vec<(String, Vec<String>)>>>,
    state: Vec<Option<String>>,
    relative_results: Vec<Option<Vec<String>>>,
    url: Vec<Option<String>>,
    extra: Vec<Option<String>>,
}

impl MetaCols {
    /// Reads one business object.
    pub fn push(&mut self, fi: &mut FieldIssues<'_>, line: usize, obj: &Map<String, Value>) {
        self.gmap_id.push(fi.str(line, "gmap_id", obj.get("gmap_id")));
        self.name.push(fi.str(line, "name", obj.get("name")));
        self.address.push(fi.str(line, "address", obj.get("address")));
        self.description.push(fi.str(line, "description", obj.get("description")));
        self.latitude.push(fi.float(line, "latitude", obj.get("latitude")));
        self.longitude.push(fi.float(line, "longitude", obj.get("longitude")));
        self.category.push(fi.str_list(line, "category", obj.get("category")));
        self.avg_rating.push(fi.float(line, "avg_rating", obj.get("avg_rating")));
        self.num_of_reviews.push(fi.int(line, "num_of_reviews", obj.get("num_of_reviews")));
        self.price.push(fi.str(line, "price", obj.get("price")));
        self.hours.push(match obj.get("hours") {
            None | Some(Value::Null) => None,
            Some(Value::Array(days)) => Some(
                days.iter()
                    .map(|d| match d {
                        Value::Array(p) => p.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect(),
                        other => vec![other.as_str().map(str::to_string).unwrap_or_else(|| other.to_string())],
                    })
                    .collect(),
            ),
            Some(other) => {
                fi.bad(line, "hours", "a list of [day, hours] pairs", other);
                None
            }
        });
        self.misc.push(match obj.get("MISC") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                let mut groups = Vec::with_capacity(m.len());
                for (k, v) in m {
                    let items = fi.str_list(line, &format!("MISC.{k}"), Some(v)).unwrap_or_default();
                    groups.push((k.clone(), items));
                }
                Some(groups)
            }
            Some(other) => {
                fi.bad(line, "MISC", "an object", other);
                None
            }
        });
        self.state.push(fi.str(line, "state", obj.get("state")));
        self.relative_results.push(fi.str_list(line, "relative_results", obj.get("relative_results")));
        self.url.push(fi.str(line, "url", obj.get("url")));
        self.extra.push(extra_json(obj, &META_KEYS));
    }

    /// Builds the business columns ([`META_COLUMNS`] then `meta_extra`), without gmap_id.
    pub fn finish(self) -> PolarsResult<Vec<Column>> {
        let n = self.gmap_id.len();
        // hours: List(List(String))
        let mut hb = polars::chunked_array::builder::AnonymousOwnedListBuilder::new(
            "hours".into(),
            n,
            Some(DataType::List(Box::new(DataType::String))),
        );
        for h in &self.hours {
            match h {
                Some(days) => {
                    let inner = list_str_column("", days.iter().cloned().map(Some).collect());
                    hb.append_series(&inner)?;
                }
                None => hb.append_null(),
            }
        }
        let hours = hb.finish().into_series();
        // MISC: Struct of List(String), fields = keys in first-seen order.
        let mut keys: Vec<String> = Vec::new();
        for m in self.misc.iter().flatten() {
            for (k, _) in m {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        let misc_fields: Vec<Series> = keys
            .iter()
            .map(|k| {
                let rows: Vec<Option<Vec<String>>> = self
                    .misc
                    .iter()
                    .map(|m| m.as_ref().and_then(|g| g.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone())))
                    .collect();
                list_str_column(k, rows)
            })
            .collect();
        let misc_valid: Bitmap = self.misc.iter().map(|m| m.is_some()).collect();
        let misc = if misc_fields.is_empty() {
            Series::full_null("MISC".into(), n, &DataType::Null)
        } else {
            StructChunked::from_series("MISC".into(), n, misc_fields.iter())?
                .with_outer_validity(Some(misc_valid))
                .into_series()
        };
        Ok(vec![
            Column::new("business_name".into(), self.name),
            Column::new("address".into(), self.address),
            Column::new("description".into(), self.description),
            Column::new("latitude".into(), self.latitude),
            Column::new("longitude".into(), self.longitude),
            list_str_column("category", self.category).into(),
            Column::new("avg_rating".into(), self.avg_rating),
            Column::new("num_of_reviews".into(), self.num_of_reviews),
            Column::new("price".into(), self.price),
            hours.into(),
            misc.into(),
            Column::new("state".into(), self.state),
            list_str_column("relative_results", self.relative_results).into(),
            Column::new("url".into(), self.url),
            Column::new("meta_extra".into(), self.extra),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed fast path and the general JSON path give identical columns for every line, including
    /// lines only one of them accepts (escapes, nulls, nested shapes, wrong types, extra fields).
    #[test]
    fn fast_path_equals_general_path() {
        let dir = std::env::temp_dir().join(format!("revmod-fastpath-{}", std::process::id()));
        let s = crate::data::write_sample(&dir, &crate::data::SampleParams { reviews: 3000, malformed: 0, ..Default::default() }).unwrap();
        let mut lines: Vec<String> = std::fs::read_to_string(&s.review_path).unwrap().lines().map(str::to_string).collect();
        lines.extend([
            r#"{"user_id":"1","name":"A \"q\" \u00e9","time":1,"rating":5,"text":"tab\there\nnew","pics":[{"url":["u1","u2"]},{"url":[]}],"resp":{"time":2,"text":null},"gmap_id":"g"}"#.to_string(),
            r#"{"user_id":7,"rating":4.0,"text":"x","gmap_id":"g","relevant":"Yes"}"#.to_string(),
            r#"{"user_id":"1","resp":{"time":3,"text":"t","extra":1},"pics":[{"url":"single"}]}"#.to_string(),
            r#"{"user_id":"1","user_id":"2","time":null,"rating":null}"#.to_string(),
            r#"{}"#.to_string(),
        ]);
        let path = std::path::Path::new("x.json");
        let (mut fast, mut slow) = (ReviewCols::default(), ReviewCols::default());
        let (mut fi1, mut fi2) = (FieldIssues { file: path, issues: vec![] }, FieldIssues { file: path, issues: vec![] });
        for (i, l) in lines.iter().enumerate() {
            fast.push_line(&mut fi1, i + 1, l).unwrap();
            let Value::Object(m) = serde_json::from_str::<Value>(l).unwrap() else { panic!() };
            slow.push(&mut fi2, i + 1, &m);
        }
        assert_eq!(fi1.issues, fi2.issues);
        assert_eq!(fast, slow); // every column
        assert!(slow.extra.iter().any(|e| e.as_deref() == Some(r#"{"relevant":"Yes"}"#)));
        std::fs::remove_dir_all(&dir).ok();
    }
}
