//! Display values: what a notebook cell shows and the CLI prints.
//!
//! A display is a value ([`Html`], [`Svg`], [`Many`], a DataFrame through [`DataFrameShow`]) that knows
//! how to render itself. In an evcxr cell, a value whose type has an `evcxr_display(&self)` method (an
//! inherent method, or a trait method in scope — the prelude brings [`DataFrameShow`] in) is displayed when
//! it is the cell's last expression; the method prints evcxr's display protocol
//! (`EVCXR_BEGIN_CONTENT <mime>` ... `EVCXR_END_CONTENT`), see [`emit`].
//!
//! evcxr keeps only the last output of each MIME type per cell, so a cell that wants a table *and* a chart
//! returns one [`Many`]: its parts are folded into a single `text/html` output (SVG inline in HTML), which
//! JupyterLab and the headless runner both render.

/// SVG charts (plotters): PR curves, bar charts.
pub mod chart;

use std::fmt::Write as _;

use polars::prelude::*;

/// Prints one display in evcxr's protocol: one block per MIME type (`text/plain`, `text/html`,
/// `image/svg+xml`, `image/png` as base64, ...). evcxr turns the blocks into one display output.
pub fn emit(parts: &[(&str, String)]) {
    let mut out = String::new();
    for (mime, body) in parts {
        out.push_str("EVCXR_BEGIN_CONTENT ");
        out.push_str(mime);
        out.push('\n');
        out.push_str(body);
        if !body.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("EVCXR_END_CONTENT\n");
    }
    print!("{out}");
}

/// Escapes text for an HTML element body or a double-quoted attribute.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Anything that renders as an HTML fragment with a plain-text fallback: the unit [`Many`] combines.
pub trait Show {
    /// HTML fragment (no `<html>`/`<body>` wrapper).
    fn html(&self) -> String;
    /// Plain-text rendering for terminals and `text/plain`.
    fn text(&self) -> String;
}

/// An HTML fragment to display.
#[derive(Debug, Clone, PartialEq)]
pub struct Html(pub String);

impl Html {
    /// Shows it in an evcxr cell.
    pub fn evcxr_display(&self) {
        emit(&[("text/plain", strip_tags(&self.0)), ("text/html", self.0.clone())]);
    }
}

impl Show for Html {
    fn html(&self) -> String {
        self.0.clone()
    }
    fn text(&self) -> String {
        strip_tags(&self.0)
    }
}

impl std::fmt::Display for Html {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&strip_tags(&self.0))
    }
}

/// An SVG document (a chart) to display; `save` writes it as a `.svg` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Svg(pub String);

impl Svg {
    /// Shows it in an evcxr cell as `image/svg+xml`.
    pub fn evcxr_display(&self) {
        emit(&[("text/plain", "<svg chart>".to_string()), ("image/svg+xml", self.0.clone())]);
    }

    /// Writes the SVG to `path` atomically ([`crate::output::write_atomic`]), naming the path on failure.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> anyhow::Result<()> {
        use std::io::Write;
        crate::output::write_atomic(path.as_ref(), |f| Ok(f.write_all(self.0.as_bytes())?))
    }
}

impl Show for Svg {
    fn html(&self) -> String {
        // Inline SVG: strip an XML declaration, which is not allowed inside HTML.
        let s = self.0.trim_start();
        let s = if s.starts_with("<?xml") { s.split_once("?>").map(|x| x.1).unwrap_or(s) } else { s };
        format!("<div class=\"revmod-svg\">{}</div>", s.trim())
    }
    fn text(&self) -> String {
        "<svg chart>".into()
    }
}

/// Plain text shown in a `<pre>` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Text(pub String);

impl Show for Text {
    fn html(&self) -> String {
        format!("<pre>{}</pre>", escape_html(&self.0))
    }
    fn text(&self) -> String {
        self.0.clone()
    }
}

/// Several displays in one cell (a table and a chart, a report and a preview), folded into one
/// `text/html` output so that none is lost to evcxr's one-output-per-MIME-type rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Many {
    /// (html, text) of each part, in order.
    pub parts: Vec<(String, String)>,
}

impl Many {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a part (builder style).
    pub fn with(mut self, part: &dyn Show) -> Self {
        self.push(part);
        self
    }

    /// Appends a part.
    pub fn push(&mut self, part: &dyn Show) {
        self.parts.push((part.html(), part.text()));
    }

    /// Appends a heading.
    pub fn heading(mut self, title: &str) -> Self {
        self.parts.push((format!("<h4>{}</h4>", escape_html(title)), format!("== {title} ==")));
        self
    }

    /// Shows all parts as one HTML output (with a text fallback).
    pub fn evcxr_display(&self) {
        emit(&[("text/plain", self.text()), ("text/html", self.html())]);
    }
}

impl Show for Many {
    fn html(&self) -> String {
        let mut s = String::from("<div class=\"revmod-many\">");
        for (h, _) in &self.parts {
            s.push_str(h);
        }
        s.push_str("</div>");
        s
    }
    fn text(&self) -> String {
        self.parts.iter().map(|p| p.1.as_str()).collect::<Vec<_>>().join("\n")
    }
}

impl std::fmt::Display for Many {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

/// Longest cell text shown in an HTML table before it is cut with "…".
pub const MAX_CELL_CHARS: usize = 160;

/// Rows shown by default when a DataFrame is displayed.
pub const DEFAULT_ROWS: usize = 10;

fn cell_text(v: &AnyValue<'_>) -> Option<String> {
    match v {
        AnyValue::Null => None,
        AnyValue::String(s) => Some((*s).to_string()),
        AnyValue::StringOwned(s) => Some(s.to_string()),
        other => Some(other.to_string()),
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// HTML table of a DataFrame: shape, column names and types, the first `max_rows` rows, long text cut.
pub fn df_html(df: &DataFrame, max_rows: usize) -> String {
    let (h, w) = df.shape();
    let shown = h.min(max_rows);
    let mut s = String::with_capacity(256 + shown * w * 32);
    s.push_str("<div class=\"revmod-df\">");
    let _ = write!(
        s,
        "<small>shape: ({h}, {w}){}</small>",
        if shown < h { format!(", first {shown} rows") } else { String::new() }
    );
    s.push_str("<table class=\"dataframe\" border=\"1\"><thead><tr>");
    for c in df.columns() {
        let _ = write!(
            s,
            "<th>{}<br><small>{}</small></th>",
            escape_html(c.name()),
            escape_html(&c.dtype().to_string())
        );
    }
    s.push_str("</tr></thead><tbody>");
    for i in 0..shown {
        s.push_str("<tr>");
        for c in df.columns() {
            match c.get(i).ok().as_ref().and_then(cell_text) {
                Some(t) => {
                    let _ = write!(s, "<td>{}</td>", escape_html(&cut(&t, MAX_CELL_CHARS)));
                }
                None => s.push_str("<td><i>null</i></td>"),
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

/// Plain-text table of the first `max_rows` rows (polars' own formatting).
pub fn df_text(df: &DataFrame, max_rows: usize) -> String {
    format!("{}", df.head(Some(max_rows)))
}

/// Display methods for polars DataFrames: `df` as the last expression of an evcxr cell renders as an
/// HTML table (with `use revmod::prelude::*`), `df.table(n)` shows `n` rows.
pub trait DataFrameShow {
    /// The first `max_rows` rows as a display value.
    fn table(&self, max_rows: usize) -> Table;
    /// Called by evcxr when a DataFrame is a cell's last expression.
    fn evcxr_display(&self);
}

impl DataFrameShow for DataFrame {
    fn table(&self, max_rows: usize) -> Table {
        Table { html: df_html(self, max_rows), text: df_text(self, max_rows) }
    }
    fn evcxr_display(&self) {
        self.table(DEFAULT_ROWS).evcxr_display();
    }
}

/// A rendered DataFrame table (HTML + text).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// HTML fragment.
    pub html: String,
    /// Text fallback.
    pub text: String,
}

impl Table {
    /// Shows it in an evcxr cell.
    pub fn evcxr_display(&self) {
        emit(&[("text/plain", self.text.clone()), ("text/html", self.html.clone())]);
    }
}

impl Show for Table {
    fn html(&self) -> String {
        self.html.clone()
    }
    fn text(&self) -> String {
        self.text.clone()
    }
}

impl Show for DataFrame {
    fn html(&self) -> String {
        df_html(self, DEFAULT_ROWS)
    }
    fn text(&self) -> String {
        df_text(self, DEFAULT_ROWS)
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Crude tag stripper for text fallbacks of HTML fragments.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_html_escapes_cuts_and_marks_nulls() {
        let long = "x".repeat(MAX_CELL_CHARS + 50);
        let df = df![
            "text" => [Some("<b>hi</b> & bye"), None, Some(long.as_str())],
            "rating" => [Some(5i64), Some(3), None],
        ]
        .unwrap();
        let h = df_html(&df, 2);
        assert!(h.contains("shape: (3, 2), first 2 rows"));
        assert!(h.contains("&lt;b&gt;hi&lt;/b&gt; &amp; bye"));
        assert!(h.contains("<i>null</i>"));
        assert!(h.contains("<small>i64</small>"));
        assert!(!h.contains(&long), "3rd row must not be shown");
        let h3 = df_html(&df, 10);
        assert!(h3.contains(&format!("{}…", "x".repeat(MAX_CELL_CHARS))));
    }

    #[test]
    fn many_folds_parts_into_one_html() {
        let m = Many::new().heading("PR curves").with(&Html("<p>a</p>".into())).with(&Svg(
            "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>".into(),
        ));
        let h = m.html();
        assert!(h.contains("<h4>PR curves</h4><p>a</p><div class=\"revmod-svg\"><svg"));
        assert!(!h.contains("<?xml"));
        assert_eq!(m.text(), "== PR curves ==\na\n<svg chart>");
    }
}
