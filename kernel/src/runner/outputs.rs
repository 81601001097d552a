//! What one cell did, independent of how it was executed, and its nbformat 4.5 outputs:
//! streams, rich displays (`display_data`, the final `execute_result`) and papermill-like errors.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One thing a running cell produced, in arrival order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// A line on the cell's stdout.
    Stdout(String),
    /// A line on the cell's stderr.
    Stderr(String),
    /// One display block (`EVCXR_BEGIN_CONTENT mime` ... `EVCXR_END_CONTENT`).
    Display { mime: String, data: String },
}

/// Why a cell failed; each maps to an nbformat `error` output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Failure {
    /// rustc rejected the cell: one rendered message per error.
    Compile { messages: Vec<String> },
    /// The cell panicked.
    Panic { message: String },
    /// The cell returned `Err` through `?`.
    Err { message: String },
    /// The evaluation process died (abort, signal, out of memory).
    Died { status: String },
    /// The cell ran past the timeout (seconds).
    Timeout { seconds: f64 },
    /// evcxr refused the cell for another reason (bad `:dep`, a variable it cannot persist, ...).
    Evcxr { message: String },
}

impl Failure {
    /// The papermill-style exception name.
    pub fn ename(&self) -> &'static str {
        match self {
            Failure::Compile { .. } => "CompilationError",
            Failure::Panic { .. } => "Panic",
            Failure::Err { .. } => "Err",
            Failure::Died { .. } => "ProcessDied",
            Failure::Timeout { .. } => "CellTimeoutError",
            Failure::Evcxr { .. } => "EvcxrError",
        }
    }

    /// The one-line message.
    pub fn evalue(&self) -> String {
        match self {
            Failure::Compile { messages } => {
                let first = messages.first().map(|m| first_line(m)).unwrap_or("compilation failed");
                if messages.len() > 1 {
                    format!("{first} (and {} more errors)", messages.len() - 1)
                } else {
                    first.to_owned()
                }
            }
            Failure::Panic { message } => {
                let body = message.lines().skip_while(|l| l.contains("panicked at")).find(|l| !l.trim().is_empty());
                format!("panicked: {}", body.unwrap_or(first_line(message)).trim())
            }
            Failure::Err { message } => first_line(message).to_owned(),
            Failure::Died { status } => {
                let hint = if status.contains("SIGKILL") || status.contains("signal: 9") {
                    " (killed: out of memory, or killed from outside)"
                } else if status.contains("SIGABRT") || status.contains("signal: 6") {
                    " (aborted)"
                } else {
                    ""
                };
                format!("the evaluation process died: {status}{hint}")
            }
            Failure::Timeout { seconds } => format!("cell ran past its timeout of {seconds} s"),
            Failure::Evcxr { message } => first_line(message).to_owned(),
        }
    }

    /// The full message lines (traceback body).
    pub fn detail(&self) -> Vec<String> {
        let text = match self {
            Failure::Compile { messages } => messages.join("\n"),
            Failure::Panic { message } | Failure::Err { message } | Failure::Evcxr { message } => {
                message.clone()
            }
            Failure::Died { .. } | Failure::Timeout { .. } => self.evalue(),
        };
        text.lines().map(str::to_owned).collect()
    }
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
}

/// The result of running one code cell.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CellRun {
    /// Everything the cell printed or displayed, in order.
    pub events: Vec<Event>,
    /// The cell's final result per MIME type as evcxr reports it (last display per type and the
    /// value of a final expression).
    pub result: BTreeMap<String, String>,
    /// Set when the cell failed.
    pub failure: Option<Failure>,
}

/// Converts a cell run into nbformat outputs: consecutive lines of one stream become one stream
/// output; consecutive display blocks of distinct MIME types become one bundle; the last bundle
/// is the `execute_result` when it is the cell's result; a failure ends with an `error` output.
pub fn to_outputs(run: &CellRun, execution_count: u64, cell_number: usize) -> Vec<Value> {
    let mut outs: Vec<Value> = Vec::new();
    let mut bundle_open = false;
    for ev in &run.events {
        match ev {
            Event::Stdout(l) | Event::Stderr(l) => {
                bundle_open = false;
                let name = if matches!(ev, Event::Stdout(_)) { "stdout" } else { "stderr" };
                if let Some(last) = outs.last_mut().filter(|o| o["output_type"] == "stream" && o["name"] == name) {
                    let t = last["text"].as_str().unwrap_or("").to_owned() + l + "\n";
                    last["text"] = json!(t);
                } else {
                    outs.push(json!({"output_type": "stream", "name": name, "text": format!("{l}\n")}));
                }
            }
            Event::Display { mime, data } => {
                // One display is one rich type plus its text/plain fallback (the pair evcxr_display
                // methods print together); two rich blocks in a row are two displays.
                let fits = bundle_open
                    && outs.last().is_some_and(|o| {
                        let data = o["data"].as_object().expect("display data");
                        !data.contains_key(mime.as_str())
                            && (mime == "text/plain" || data.keys().all(|k| k == "text/plain"))
                    });
                if !fits {
                    outs.push(json!({"output_type": "display_data", "data": {}, "metadata": {}}));
                    bundle_open = true;
                }
                outs.last_mut().unwrap()["data"][mime.as_str()] = mime_value(mime, data);
            }
        }
    }
    if !run.result.is_empty() && run.failure.is_none() {
        let result: Map<String, Value> =
            run.result.iter().map(|(m, d)| (m.clone(), mime_value(m, d))).collect();
        let last_display = outs.iter().rposition(|o| o["output_type"] == "display_data");
        match last_display {
            // evcxr's result keeps the last block of every MIME type the cell displayed: the
            // last display is the result when all its blocks are in it.
            Some(i) if outs[i]["data"].as_object().is_some_and(|d| d.iter().all(|(k, v)| result.get(k) == Some(v))) => {
                outs[i]["output_type"] = json!("execute_result");
                outs[i]["execution_count"] = json!(execution_count);
            }
            _ => outs.push(json!({
                "output_type": "execute_result",
                "execution_count": execution_count,
                "data": result,
                "metadata": {},
            })),
        }
    }
    if let Some(f) = &run.failure {
        let mut tb = vec![format!("{}: {}", f.ename(), f.evalue())];
        tb.extend(f.detail());
        tb.push(format!("(cell {cell_number}, In [{execution_count}])"));
        outs.push(json!({
            "output_type": "error",
            "ename": f.ename(),
            "evalue": f.evalue(),
            "traceback": tb,
        }));
    }
    outs
}

/// JSON value of one MIME payload: JSON types are parsed, everything else is a string.
fn mime_value(mime: &str, data: &str) -> Value {
    if mime == "application/json" || mime.ends_with("+json") {
        if let Ok(v) = serde_json::from_str(data) {
            return v;
        }
    }
    json!(data)
}

/// Extracts the panic message from the stderr lines of a panicking cell
/// (`thread '..' panicked at file:line:col:` followed by the message).
pub fn panic_message(stderr: &[&str]) -> String {
    let Some(start) = stderr.iter().rposition(|l| l.contains("panicked at")) else {
        return stderr.join("\n");
    };
    let mut msg = vec![stderr[start].to_owned()];
    for l in &stderr[start + 1..] {
        if l.starts_with("note: ") || l.starts_with("stack backtrace:") {
            break;
        }
        msg.push((*l).to_owned());
    }
    msg.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: &str, x: &str) -> Event {
        Event::Display { mime: m.into(), data: x.into() }
    }

    #[test]
    fn streams_coalesce_and_displays_bundle() {
        let run = CellRun {
            events: vec![
                Event::Stdout("a".into()),
                Event::Stdout("b".into()),
                d("text/plain", "t"),
                d("text/html", "<table></table>"),
                d("image/svg+xml", "<svg/>"),
                Event::Stderr("warn".into()),
                d("text/html", "<b>2</b>"),
            ],
            result: BTreeMap::from([("text/html".into(), "<b>2</b>".into())]),
            failure: None,
        };
        let o = to_outputs(&run, 3, 4);
        assert_eq!(o.len(), 5, "{o:#?}");
        assert_eq!(o[0]["text"], "a\nb\n");
        assert_eq!(o[1]["output_type"], "display_data");
        assert_eq!(o[1]["data"]["text/plain"], "t");
        assert_eq!(o[1]["data"]["text/html"], "<table></table>");
        assert_eq!(o[2]["data"]["image/svg+xml"], "<svg/>");
        assert!(o[2]["data"].get("text/html").is_none(), "two rich blocks are two displays");
        assert_eq!(o[3]["name"], "stderr");
        assert_eq!(o[4]["output_type"], "execute_result");
        assert_eq!(o[4]["execution_count"], 3);
    }

    #[test]
    fn result_not_displayed_is_appended_and_failures_end_with_error() {
        let run = CellRun {
            events: vec![],
            result: BTreeMap::from([("text/plain".into(), "42".into())]),
            failure: None,
        };
        let o = to_outputs(&run, 1, 1);
        assert_eq!(o[0]["output_type"], "execute_result");
        assert_eq!(o[0]["data"]["text/plain"], "42");

        let run = CellRun {
            failure: Some(Failure::Panic { message: "thread 'x' panicked at src/lib.rs:1:2:\nboom".into() }),
            ..Default::default()
        };
        let o = to_outputs(&run, 2, 5);
        let e = &o[0];
        assert_eq!(e["ename"], "Panic");
        assert!(e["evalue"].as_str().unwrap().contains("panicked"));
        let tb: Vec<_> = e["traceback"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(tb.contains(&"boom") && tb.last().unwrap().contains("cell 5"), "{tb:?}");
    }

    #[test]
    fn panic_message_is_cut_from_stderr() {
        let lines = ["noise", "thread '<unnamed>' panicked at src/lib.rs:3:5:", "bad value 7", "note: run with"];
        assert_eq!(panic_message(&lines), "thread '<unnamed>' panicked at src/lib.rs:3:5:\nbad value 7");
        assert!(Failure::Died { status: "signal: 9 (SIGKILL)".into() }.evalue().contains("out of memory"));
    }
}
