//! The notebook model: an nbformat 4 document held as JSON, with typed access to what the runner
//! needs (cells, sources, tags, outputs) and everything else preserved as it was read.
//!
//! Why JSON and not a full struct: notebooks carry metadata from many tools; the runner must write
//! back what it did not understand, untouched.

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use std::path::Path;

/// The kind of a cell, as nbformat names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// A code cell: executed by the runner.
    Code,
    /// A markdown cell: rendered in the HTML report; its first heading labels progress lines.
    Markdown,
    /// A raw cell: carried through untouched.
    Raw,
}

/// One nbformat 4 notebook, read from disk and normalised to nbformat 4.5 (cell ids present).
#[derive(Debug, Clone)]
pub struct Notebook {
    /// The whole document; `cells` is always an array of objects.
    pub doc: Value,
}

impl Notebook {
    /// Reads and checks a notebook file; errors name the file and what is wrong.
    pub fn read(path: &Path) -> Result<Notebook> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading notebook {}", path.display()))?;
        Notebook::parse(&text).with_context(|| format!("notebook {}", path.display()))
    }

    /// Parses notebook JSON text; upgrades nbformat 4.0-4.4 to 4.5 by adding cell ids.
    pub fn parse(text: &str) -> Result<Notebook> {
        let doc: Value = serde_json::from_str(text).context("not valid JSON")?;
        let Some(obj) = doc.as_object() else { bail!("top level is not a JSON object") };
        match obj.get("nbformat").and_then(Value::as_u64) {
            Some(4) => {}
            Some(v) => bail!("nbformat {v} is not supported (only nbformat 4)"),
            None => bail!("missing `nbformat` field: not a Jupyter notebook"),
        }
        let Some(cells) = obj.get("cells").and_then(Value::as_array) else {
            bail!("missing `cells` array")
        };
        for (i, cell) in cells.iter().enumerate() {
            let kind = cell.get("cell_type").and_then(Value::as_str);
            if !matches!(kind, Some("code" | "markdown" | "raw")) {
                bail!("cell {} has no valid `cell_type` (got {:?})", i + 1, kind);
            }
            if cell.get("source").is_none() {
                bail!("cell {} has no `source`", i + 1);
            }
        }
        let mut nb = Notebook { doc };
        nb.upgrade_to_4_5();
        Ok(nb)
    }

    /// Makes the document nbformat 4.5: minor version 5, a unique `id` on every cell, a metadata
    /// object on every cell and on the notebook.
    fn upgrade_to_4_5(&mut self) {
        let doc = self.doc.as_object_mut().expect("checked object");
        doc.insert("nbformat_minor".into(), json!(5));
        doc.entry("metadata").or_insert_with(|| json!({}));
        let cells = doc.get_mut("cells").and_then(Value::as_array_mut).expect("checked cells");
        let mut seen = std::collections::HashSet::new();
        for (i, cell) in cells.iter_mut().enumerate() {
            let cell = cell.as_object_mut().expect("checked cell");
            cell.entry("metadata").or_insert_with(|| json!({}));
            let id = cell.get("id").and_then(Value::as_str).map(str::to_owned);
            let ok = id.as_deref().is_some_and(valid_cell_id) && seen.insert(id.clone().unwrap());
            if !ok {
                let mut n = i;
                let mut fresh = format!("cell-{n}");
                while !seen.insert(fresh.clone()) {
                    n += 1000;
                    fresh = format!("cell-{n}");
                }
                cell.insert("id".into(), json!(fresh));
            }
        }
    }

    /// Writes the notebook as indented JSON (one space, like nbformat), creating parent folders.
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating folder {}", dir.display()))?;
        }
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        serde::Serialize::serialize(&self.doc, &mut ser)?;
        out.push(b'\n');
        std::fs::write(path, out).with_context(|| format!("writing notebook {}", path.display()))
    }

    /// The cells array.
    pub fn cells(&self) -> &Vec<Value> {
        self.doc["cells"].as_array().expect("checked cells")
    }

    /// The cells array, mutable.
    pub fn cells_mut(&mut self) -> &mut Vec<Value> {
        self.doc["cells"].as_array_mut().expect("checked cells")
    }

    /// The notebook-level metadata object.
    pub fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        self.doc["metadata"].as_object_mut().expect("metadata is an object after upgrade")
    }
}

/// nbformat 4.5 cell ids: 1-64 characters of letters, digits, `-` and `_`.
fn valid_cell_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The kind of a cell (cells were checked on parse).
pub fn cell_kind(cell: &Value) -> CellKind {
    match cell["cell_type"].as_str() {
        Some("code") => CellKind::Code,
        Some("markdown") => CellKind::Markdown,
        _ => CellKind::Raw,
    }
}

/// A cell's source as one string (nbformat allows a string or a list of lines).
pub fn cell_source(cell: &Value) -> String {
    multiline(&cell["source"])
}

/// Joins an nbformat multiline string (string or list of strings).
pub fn multiline(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// The cell's `metadata.tags`.
pub fn cell_tags(cell: &Value) -> Vec<String> {
    cell["metadata"]["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A new code cell with the given id, source and tags, not executed yet.
pub fn new_code_cell(id: &str, source: &str, tags: &[&str]) -> Value {
    json!({
        "cell_type": "code",
        "id": id,
        "metadata": { "tags": tags },
        "execution_count": null,
        "outputs": [],
        "source": source,
    })
}

/// A new markdown cell with the given id, source and tags.
pub fn new_markdown_cell(id: &str, source: &str, tags: &[&str]) -> Value {
    json!({
        "cell_type": "markdown",
        "id": id,
        "metadata": { "tags": tags },
        "source": source,
    })
}

/// The first markdown heading of a markdown source (`# Title` -> `Title`), if any.
pub fn first_heading(markdown: &str) -> Option<String> {
    markdown.lines().find_map(|l| {
        let t = l.trim_start();
        let hashes = t.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && t[hashes..].starts_with(' ') {
            Some(t[hashes..].trim().trim_end_matches('#').trim().to_owned())
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrades_4_4_and_fills_ids_and_metadata() {
        let text = r##"{"nbformat":4,"nbformat_minor":4,"metadata":{},"cells":[
            {"cell_type":"markdown","metadata":{},"source":["# Title\n","text"]},
            {"cell_type":"code","metadata":{},"source":"let x = 1;","outputs":[],"execution_count":null},
            {"cell_type":"code","id":"cell-1","source":"x"}]}"##;
        let nb = Notebook::parse(text).unwrap();
        assert_eq!(nb.doc["nbformat_minor"], 5);
        let ids: Vec<_> = nb.cells().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ids.len(), 3);
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), 3, "ids must be unique: {ids:?}");
        assert!(nb.cells()[2]["metadata"].is_object());
        assert_eq!(cell_source(&nb.cells()[0]), "# Title\ntext");
        assert_eq!(first_heading(&cell_source(&nb.cells()[0])).as_deref(), Some("Title"));
    }

    #[test]
    fn rejects_non_notebooks_with_the_reason() {
        let e = Notebook::parse(r#"{"nbformat":3,"cells":[]}"#).unwrap_err();
        assert!(format!("{e:#}").contains("nbformat 3"), "{e:#}");
        let e = Notebook::parse(r#"{"nbformat":4,"cells":[{"source":"x"}]}"#).unwrap_err();
        assert!(format!("{e:#}").contains("cell 1"), "{e:#}");
        assert!(Notebook::parse("not json").is_err());
    }

    #[test]
    fn headings() {
        assert_eq!(first_heading("intro\n## Step 3: load ##\n").as_deref(), Some("Step 3: load"));
        assert_eq!(first_heading("#hashtag\nplain"), None);
    }
}
