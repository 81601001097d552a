//! Notebook parameters, papermill style: the `let` bindings of the cell tagged `parameters` are the
//! parameters; each `-p NAME=VALUE` becomes a typed Rust `let` in a new cell tagged
//! `injected-parameters` placed right after it, so later cells see the override.
//!
//! Pure functions on strings: the runner checks everything here before any cell runs.

use anyhow::{bail, Result};
use regex::Regex;
use std::sync::LazyLock;

/// The value type of a parameter, read from its annotation or its literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamType {
    /// An integer (`i64`, `usize`, a literal like `50` or `7u64`).
    Int { unsigned: bool },
    /// A float (`f64`, a literal like `0.5`).
    Float,
    /// `true` / `false`.
    Bool,
    /// A `&str` literal.
    Str,
    /// A `String` (`String::from(..)`, `"..".to_string()`).
    String,
    /// A path (`PathBuf::from(..)`, `Path::new(..)`).
    Path,
}

/// One parameter declared in the `parameters` cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The binding name.
    pub name: String,
    /// Its type, or why the runner cannot tell (reported only if the user overrides it).
    pub ty: Result<ParamType, String>,
    /// The type annotation as written, if any (`usize`, `PathBuf`).
    pub annotation: Option<String>,
    /// The constructor the original used for strings and paths (`PathBuf::from`), or the literal
    /// suffix for numbers (`u64`), reused so the override has exactly the original's type.
    pub form: Option<String>,
}

static LET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?m)^\s*let\s+(?:mut\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*([^=]+?))?\s*=\s*(.+?);[ \t]*(?://.*)?$",
    )
    .unwrap()
});
static INT_LIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-?[0-9][0-9_]*((?:i|u)(?:8|16|32|64|128|size))?$").unwrap());
static FLOAT_LIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^-?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9]+)?(f32|f64)?$").unwrap()
});
static STR_LIT: &str = r#""(?:[^"\\]|\\.)*""#;
static STRING_CTOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^(?:(String::from|(?:std::path::)?PathBuf::from|(?:std::path::)?Path::new)\(\s*{STR_LIT}\s*\)|{STR_LIT}\s*\.\s*(to_string|to_owned|into)\(\s*\))$"
    ))
    .unwrap()
});

/// Reads the parameters declared in a `parameters` cell's source, in order.
pub fn parse_params(source: &str) -> Vec<Param> {
    LET.captures_iter(source)
        .map(|c| {
            let name = c[1].to_owned();
            let annotation = c.get(2).map(|m| m.as_str().trim().to_owned());
            let expr = c[3].trim();
            let (ty, form) = match &annotation {
                Some(a) => (type_from_annotation(a), ctor_form(expr)),
                None => type_from_expr(expr),
            };
            Param { name, ty, annotation, form }
        })
        .collect()
}

fn type_from_annotation(a: &str) -> Result<ParamType, String> {
    let a = a.replace(' ', "");
    Ok(match a.as_str() {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => ParamType::Int { unsigned: false },
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => ParamType::Int { unsigned: true },
        "f32" | "f64" => ParamType::Float,
        "bool" => ParamType::Bool,
        "&str" | "&'staticstr" => ParamType::Str,
        "String" | "std::string::String" => ParamType::String,
        "PathBuf" | "std::path::PathBuf" => ParamType::Path,
        other => return Err(format!("type `{other}` is not a supported parameter type")),
    })
}

fn ctor_form(expr: &str) -> Option<String> {
    STRING_CTOR.captures(expr).and_then(|c| c.get(1).map(|m| m.as_str().to_owned()))
}

fn type_from_expr(expr: &str) -> (Result<ParamType, String>, Option<String>) {
    if let Some(c) = INT_LIT.captures(expr) {
        let suffix = c.get(1).map(|m| m.as_str().to_owned());
        let unsigned = suffix.as_deref().is_some_and(|s| s.starts_with('u'));
        return (Ok(ParamType::Int { unsigned }), suffix);
    }
    if let Some(c) = FLOAT_LIT.captures(expr) {
        return (Ok(ParamType::Float), c.get(1).map(|m| m.as_str().to_owned()));
    }
    if expr == "true" || expr == "false" {
        return (Ok(ParamType::Bool), None);
    }
    if Regex::new(&format!("^{STR_LIT}$")).unwrap().is_match(expr) {
        return (Ok(ParamType::Str), None);
    }
    if let Some(c) = STRING_CTOR.captures(expr) {
        return match c.get(1).map(|m| m.as_str()) {
            Some(ctor) if ctor.ends_with("String::from") => (Ok(ParamType::String), Some(ctor.into())),
            Some(ctor) => (Ok(ParamType::Path), Some(ctor.into())),
            None if &c[2] == "into" => (Err("`.into()` hides the type".into()), None),
            None => (Ok(ParamType::String), None),
        };
    }
    (Err(format!("cannot tell the type of `{expr}`")), None)
}

/// Renders one override as a Rust `let` typed like the binding it replaces; errors say which
/// parameter and why the value does not fit.
pub fn render_override(param: &Param, value: &str) -> Result<String> {
    let name = &param.name;
    let ty = match &param.ty {
        Ok(t) => t,
        Err(why) => bail!(
            "parameter `{name}`: {why}; give it a type annotation in the parameters cell \
             (integers, floats, bool, &str, String, PathBuf are supported)"
        ),
    };
    let rhs = match ty {
        ParamType::Int { unsigned } => {
            let digits = value.trim().replace('_', "");
            let ok = if *unsigned { digits.parse::<u128>().is_ok() } else { digits.parse::<i128>().is_ok() };
            if !ok {
                let what = if *unsigned { "a non-negative integer" } else { "an integer" };
                bail!("parameter `{name}` expects {what}, got {value:?}");
            }
            format!("{digits}{}", param.form.as_deref().unwrap_or(""))
        }
        ParamType::Float => {
            let v: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| anyhow::anyhow!("parameter `{name}` expects a number, got {value:?}"))?;
            format!("{v:?}{}", param.form.as_deref().unwrap_or(""))
        }
        ParamType::Bool => match value.trim() {
            "true" | "false" => value.trim().to_owned(),
            _ => bail!("parameter `{name}` expects true or false, got {value:?}"),
        },
        ParamType::Str => format!("{value:?}"),
        ParamType::String => format!("String::from({value:?})"),
        ParamType::Path => {
            let ctor = param.form.as_deref().unwrap_or("std::path::PathBuf::from");
            format!("{ctor}({value:?})")
        }
    };
    Ok(match &param.annotation {
        Some(a) => format!("let {name}: {a} = {rhs};"),
        None => format!("let {name} = {rhs};"),
    })
}

/// Builds the source of the `injected-parameters` cell from `NAME=VALUE` overrides; unknown
/// names and ill-typed values are errors listing what the notebook declares.
pub fn injected_source(declared: &[Param], overrides: &[(String, String)]) -> Result<String> {
    let mut lines = vec!["// Parameters injected by `revmod run -p`".to_owned()];
    for (name, value) in overrides {
        let Some(param) = declared.iter().rev().find(|p| &p.name == name) else {
            let known: Vec<_> = declared.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "unknown parameter `{name}`: the notebook's `parameters` cell declares {}",
                if known.is_empty() { "nothing".to_owned() } else { known.join(", ") }
            );
        };
        lines.push(render_override(param, value)?);
    }
    Ok(lines.join("\n"))
}

/// Splits a `-p NAME=VALUE` argument.
pub fn split_assignment(arg: &str) -> Result<(String, String)> {
    match arg.split_once('=') {
        Some((n, v)) if !n.trim().is_empty() => Ok((n.trim().to_owned(), v.to_owned())),
        _ => bail!("-p expects NAME=VALUE, got {arg:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CELL: &str = r#"
let out_dir: PathBuf = PathBuf::from("out");   // where artifacts go
let data = std::path::PathBuf::from("../data/review.json");
let n_label: usize = 50;
let n_preview = 5;
let seed = 42u64;
let lr = 0.5;
let use_llm = false;
let model = "gemma-3-270m";
let backend = String::from("local");
let name: String = "x".to_string();
let mut weird = compute();
"#;

    fn over(name: &str, v: &str) -> Result<String> {
        injected_source(&parse_params(CELL), &[(name.into(), v.into())])
            .map(|s| s.lines().nth(1).unwrap().to_owned())
    }

    #[test]
    fn reads_all_bindings_with_types() {
        let ps = parse_params(CELL);
        let names: Vec<_> = ps.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["out_dir", "data", "n_label", "n_preview", "seed", "lr", "use_llm", "model", "backend", "name", "weird"]
        );
        assert_eq!(ps[0].ty, Ok(ParamType::Path));
        assert_eq!(ps[1].ty, Ok(ParamType::Path));
        assert_eq!(ps[2].ty, Ok(ParamType::Int { unsigned: true }));
        assert_eq!(ps[4].ty, Ok(ParamType::Int { unsigned: true }));
        assert_eq!(ps[5].ty, Ok(ParamType::Float));
        assert_eq!(ps[7].ty, Ok(ParamType::Str));
        assert_eq!(ps[8].ty, Ok(ParamType::String));
        assert!(ps[10].ty.is_err());
    }

    #[test]
    fn overrides_keep_the_original_type() {
        assert_eq!(over("out_dir", "/tmp/a b").unwrap(), r#"let out_dir: PathBuf = PathBuf::from("/tmp/a b");"#);
        assert_eq!(over("data", "x.json").unwrap(), r#"let data = std::path::PathBuf::from("x.json");"#);
        assert_eq!(over("n_label", "200").unwrap(), "let n_label: usize = 200;");
        assert_eq!(over("n_preview", "-3").unwrap(), "let n_preview = -3;");
        assert_eq!(over("seed", "7").unwrap(), "let seed = 7u64;");
        assert_eq!(over("lr", "2").unwrap(), "let lr = 2.0;");
        assert_eq!(over("use_llm", "true").unwrap(), "let use_llm = true;");
        assert_eq!(over("model", "say \"hi\"\n").unwrap(), r#"let model = "say \"hi\"\n";"#);
        assert_eq!(over("backend", "openai").unwrap(), r#"let backend = String::from("openai");"#);
        assert_eq!(over("name", "y").unwrap(), r#"let name: String = String::from("y");"#);
    }

    #[test]
    fn bad_overrides_are_clear_errors() {
        let e = over("nope", "1").unwrap_err().to_string();
        assert!(e.contains("unknown parameter `nope`") && e.contains("n_label"), "{e}");
        let e = over("n_label", "-1").unwrap_err().to_string();
        assert!(e.contains("non-negative integer"), "{e}");
        assert!(over("n_preview", "ten").is_err());
        assert!(over("lr", "NaN").is_err());
        assert!(over("use_llm", "yes").is_err());
        let e = over("weird", "1").unwrap_err().to_string();
        assert!(e.contains("type annotation"), "{e}");
        assert!(split_assignment("novalue").is_err());
        assert_eq!(split_assignment("a=b=c").unwrap(), ("a".into(), "b=c".into()));
    }
}
