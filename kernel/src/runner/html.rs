//! The standalone HTML report of an executed notebook: markdown rendered, code shown with its
//! `In [n]`, outputs inline (HTML tables, SVG charts, PNG images as data URIs, streams, errors).
//! One file, inline CSS, no scripts and no network: it opens from disk in any browser.

use super::notebook::{cell_kind, cell_source, multiline, CellKind, Notebook};
use serde_json::Value;

/// Renders the whole notebook as one HTML document titled `title`.
pub fn render(nb: &Notebook, title: &str) -> String {
    let mut body = String::new();
    for cell in nb.cells() {
        let id = cell["id"].as_str().unwrap_or("");
        match cell_kind(cell) {
            CellKind::Markdown => {
                body.push_str(&format!("<div class=\"cell markdown\" id=\"{}\">", esc(id)));
                body.push_str(&markdown(&cell_source(cell)));
                body.push_str("</div>\n");
            }
            CellKind::Raw => {
                body.push_str(&format!("<div class=\"cell raw\"><pre>{}</pre></div>\n", esc(&cell_source(cell))));
            }
            CellKind::Code => body.push_str(&code_cell(cell, id)),
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        esc(title)
    )
}

fn code_cell(cell: &Value, id: &str) -> String {
    let count = cell["execution_count"].as_u64().map(|n| n.to_string()).unwrap_or_else(|| " ".into());
    let status = cell["metadata"]["papermill"]["status"].as_str().unwrap_or("");
    let tags = super::notebook::cell_tags(cell).join(" ");
    let mut s = format!(
        "<div class=\"cell code {}\" id=\"{}\" data-tags=\"{}\">\n<div class=\"input\"><span class=\"prompt\">In [{}]:</span><pre><code>{}</code></pre></div>\n",
        esc(status),
        esc(id),
        esc(&tags),
        esc(&count),
        esc(&cell_source(cell))
    );
    if let Some(d) = cell["metadata"]["papermill"]["duration"].as_f64() {
        s.push_str(&format!("<div class=\"timing\">{d:.2} s</div>\n"));
    }
    for out in cell["outputs"].as_array().into_iter().flatten() {
        s.push_str(&output(out));
    }
    s.push_str("</div>\n");
    s
}

fn output(out: &Value) -> String {
    match out["output_type"].as_str().unwrap_or("") {
        "stream" => {
            let name = out["name"].as_str().unwrap_or("stdout");
            format!("<div class=\"output stream {}\"><pre>{}</pre></div>\n", esc(name), esc(&multiline(&out["text"])))
        }
        "display_data" | "execute_result" => {
            let data = &out["data"];
            let body = if let Some(h) = data.get("text/html") {
                multiline(h)
            } else if let Some(svg) = data.get("image/svg+xml") {
                multiline(svg)
            } else if let Some(png) = data.get("image/png") {
                let b64: String = multiline(png).chars().filter(|c| !c.is_whitespace()).collect();
                format!("<img alt=\"image output\" src=\"data:image/png;base64,{b64}\">")
            } else if let Some(md) = data.get("text/markdown") {
                markdown(&multiline(md))
            } else if let Some(t) = data.get("text/plain") {
                format!("<pre>{}</pre>", esc(&multiline(t)))
            } else if let Some(j) = data.get("application/json") {
                format!("<pre>{}</pre>", esc(&serde_json::to_string_pretty(j).unwrap_or_default()))
            } else {
                String::new()
            };
            format!("<div class=\"output rich\">{body}</div>\n")
        }
        "error" => {
            let tb: Vec<String> = out["traceback"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(strip_ansi)
                .collect();
            format!("<div class=\"output error\"><pre>{}</pre></div>\n", esc(&tb.join("\n")))
        }
        _ => String::new(),
    }
}

/// Markdown to HTML (CommonMark with tables, strikethrough, task lists); raw HTML passes through
/// as in Jupyter.
pub fn markdown(src: &str) -> String {
    use pulldown_cmark::{html, Options, Parser};
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut out = String::new();
    html::push_html(&mut out, Parser::new_ext(src, opts));
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Removes ANSI colour escapes (rustc and panics may emit them).
fn strip_ansi(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' && it.peek() == Some(&'[') {
            it.next();
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            o.push(c);
        }
    }
    o
}

const CSS: &str = "
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#fafafa;color:#222}
main{max-width:1100px;margin:0 auto;padding:1.5em}
.cell{margin:0.8em 0}
.markdown{line-height:1.5}
.input{display:flex;gap:0.5em;align-items:flex-start}
.prompt{color:#307fc1;font-family:monospace;min-width:5em;padding-top:0.6em}
pre{margin:0;padding:0.5em;overflow-x:auto;font-size:13px}
.input pre{background:#f0f3f7;border:1px solid #dde3ea;border-radius:3px;flex:1}
.output{margin-left:5.5em;overflow-x:auto}
.stream.stderr pre{background:#fff3f3}
.error pre{background:#fdd;color:#900;border-left:4px solid #c00}
.failed .input pre{border-color:#c00}
.timing{margin-left:5.5em;color:#888;font-size:11px}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#eee}
img,svg{max-width:100%;height:auto}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markdown_code_outputs_and_errors() {
        let nb = Notebook::parse(
            r##"{"nbformat":4,"nbformat_minor":5,"metadata":{},"cells":[
            {"cell_type":"markdown","id":"m","metadata":{},"source":"# Step 1\nSome *text* | a\n\n|x|y|\n|-|-|\n|1|2|"},
            {"cell_type":"code","id":"c","metadata":{"papermill":{"duration":1.5,"status":"failed"}},"execution_count":1,
             "source":"let a = \"<b>\";","outputs":[
               {"output_type":"stream","name":"stdout","text":"x < y\n"},
               {"output_type":"display_data","data":{"text/html":"<table><tr><td>1</td></tr></table>","text/plain":"t"},"metadata":{}},
               {"output_type":"display_data","data":{"image/svg+xml":"<svg xmlns='http://www.w3.org/2000/svg'></svg>"},"metadata":{}},
               {"output_type":"display_data","data":{"image/png":"iVBORw0KGgo=\n"},"metadata":{}},
               {"output_type":"error","ename":"Panic","evalue":"boom","traceback":["\u001b[31mPanic\u001b[0m: boom"]}]}]}"##,
        )
        .unwrap();
        let h = render(&nb, "t<1>");
        assert!(h.contains("<title>t&lt;1&gt;</title>"));
        assert!(h.contains("<h1>Step 1</h1>") && h.contains("<em>text</em>") && h.contains("<td>2</td>"));
        assert!(h.contains("let a = &quot;&lt;b&gt;&quot;;"));
        assert!(h.contains("x &lt; y") && h.contains("<table><tr><td>1</td></tr></table>"));
        assert!(h.contains("<svg xmlns"));
        assert!(h.contains("src=\"data:image/png;base64,iVBORw0KGgo=\""));
        assert!(h.contains("Panic: boom") && !h.contains('\u{1b}'));
        assert!(h.contains("class=\"cell code failed\""));
        assert!(!h.contains("<script") && !h.contains("http://cdn") && !h.contains("https://"));
    }
}
