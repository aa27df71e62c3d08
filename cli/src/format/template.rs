//! A small evaluator for the Go-template forms people pass to `--format`.
//!
//! Supported: literal text; `{{.}}`, `{{.Field}}`, `{{.A.B.C}}`; `{{json .X}}`;
//! `{{index .X "key"}}`; `{{upper .X}}`, `{{lower .X}}`, `{{title .X}}`; `{{join .X ","}}`;
//! the escapes `\t` and `\n` written literally on the command line, as the docker CLI
//! accepts them. Anything else (`range`, `if`, pipelines) is an error that says so.

use anyhow::{bail, Result};
use serde_json::Value;

/// One parsed piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Action(Call),
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Path(Vec<String>),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Call {
    func: Option<String>,
    args: Vec<Arg>,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text` (after `\t`/`\n` unescaping).
    pub fn parse(text: &str) -> Result<Template> {
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        let mut pieces = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                bail!("template parsing error: unclosed action");
            };
            let inner = after[..end]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-');
            pieces.push(Piece::Action(parse_call(inner.trim())?));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces })
    }

    /// Renders against `ctx`. `html_escape` makes `{{json .}}` escape `<>&` as Go's
    /// `json.Marshal` does for the docker CLI's list contexts.
    pub fn render(&self, ctx: &Value, html_escape: bool) -> Result<String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action(c) => out.push_str(&eval(c, ctx, html_escape)?),
            }
        }
        Ok(out)
    }

    /// Renders an inspected object: as [`Template::render`], except that `{{json .}}`
    /// prints `raw` compacted, in the server's field order.
    pub fn render_inspect(&self, raw: &str) -> Result<String> {
        let ctx: Value = serde_json::from_str(raw)?;
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Action(c)
                    if c.func.as_deref() == Some("json")
                        && matches!(c.args.as_slice(), [Arg::Path(p)] if p.is_empty()) =>
                {
                    out.push_str(&super::indent::compact_json(raw))
                }
                Piece::Text(t) => out.push_str(t),
                Piece::Action(c) => out.push_str(&eval(c, &ctx, false)?),
            }
        }
        Ok(out)
    }

    /// Renders the header row: each top-level `{{.Field}}` becomes `headers(Field)`.
    pub fn render_header(&self, headers: &dyn Fn(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action(c) => {
                    if let Some(Arg::Path(path)) = c.args.first() {
                        out.push_str(&headers(&path.join(".")));
                    }
                }
            }
        }
        out
    }
}

fn parse_call(inner: &str) -> Result<Call> {
    let words = split_words(inner)?;
    let Some(first) = words.first() else {
        bail!("template parsing error: missing value for command");
    };
    let (func, args) = if first.starts_with('.') || first.starts_with('"') {
        (None, &words[..])
    } else {
        match first.as_str() {
            "json" | "index" | "upper" | "lower" | "title" | "join" | "println" => {}
            other => {
                bail!("template: unsupported function or keyword \"{other}\" (see docs/cli.md)")
            }
        }
        (Some(first.clone()), &words[1..])
    };
    let args = args
        .iter()
        .map(|w| {
            if let Some(s) = w.strip_prefix('"') {
                Ok(Arg::Str(s.trim_end_matches('"').to_string()))
            } else if w == "." {
                Ok(Arg::Path(vec![]))
            } else if let Some(p) = w.strip_prefix('.') {
                Ok(Arg::Path(p.split('.').map(str::to_string).collect()))
            } else {
                bail!("template: unsupported argument \"{w}\" (see docs/cli.md)")
            }
        })
        .collect::<Result<Vec<_>>>()?;
    if func.is_none() && args.len() != 1 {
        bail!("template: can't give argument to non-function {inner}");
    }
    Ok(Call { func, args })
}

fn split_words(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_str = false;
    for c in s.chars() {
        match c {
            '"' => {
                cur.push(c);
                if in_str {
                    words.push(std::mem::take(&mut cur));
                }
                in_str = !in_str;
            }
            c if c.is_whitespace() && !in_str => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            '|' if !in_str => bail!("template: pipelines are not supported (see docs/cli.md)"),
            c => cur.push(c),
        }
    }
    if in_str {
        bail!("template: unterminated quoted string");
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

fn lookup<'a>(ctx: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut v = ctx;
    for p in path {
        v = v.get(p)?;
    }
    Some(v)
}

fn arg_value(a: &Arg, ctx: &Value) -> Value {
    match a {
        Arg::Str(s) => Value::String(s.clone()),
        Arg::Path(p) => lookup(ctx, p).cloned().unwrap_or(Value::Null),
    }
}

fn eval(c: &Call, ctx: &Value, html_escape: bool) -> Result<String> {
    let args: Vec<Value> = c.args.iter().map(|a| arg_value(a, ctx)).collect();
    let first = args.first().cloned().unwrap_or(Value::Null);
    Ok(match c.func.as_deref() {
        None | Some("println") => {
            let s = go_print(&first);
            if c.func.is_some() {
                format!("{s}\n")
            } else {
                s
            }
        }
        Some("json") => {
            let root = matches!(c.args.first(), Some(Arg::Path(p)) if p.is_empty());
            let s = serde_json::to_string(&first)?;
            if html_escape && root {
                escape_html(&s)
            } else {
                s
            }
        }
        Some("index") => {
            let mut v = first;
            for k in &args[1..] {
                v = match (&v, k) {
                    (Value::Object(m), Value::String(k)) => {
                        m.get(k).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Array(a), Value::String(k)) => k
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| a.get(i).cloned())
                        .unwrap_or(Value::Null),
                    _ => Value::Null,
                };
            }
            go_print(&v)
        }
        Some("upper") => go_print(&first).to_uppercase(),
        Some("lower") => go_print(&first).to_lowercase(),
        Some("title") => {
            let s = go_print(&first);
            let mut cs = s.chars();
            match cs.next() {
                Some(f) => f.to_uppercase().chain(cs).collect(),
                None => s,
            }
        }
        Some("join") => {
            let sep = args.get(1).map(go_print).unwrap_or_default();
            match &first {
                Value::Array(a) => a.iter().map(go_print).collect::<Vec<_>>().join(&sep),
                v => go_print(v),
            }
        }
        Some(f) => bail!("template: unsupported function \"{f}\""),
    })
}

/// Go's `fmt.Print` of a decoded JSON value: maps as `map[k:v]`, slices as `[a b]`.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_print(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Go's JSON HTML escaping: `<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026`.
pub fn escape_html(s: &str) -> String {
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v, true).unwrap()
    }

    #[test]
    fn fields_paths_and_text() {
        let v = json!({"ID": "abc", "Spec": {"Name": "web", "Labels": {"a": "b"}}});
        assert_eq!(render("{{.ID}}: {{.Spec.Name}}", &v), "abc: web");
        assert_eq!(render("{{ .ID }}\\t{{.ID}}", &v), "abc\tabc");
        assert_eq!(render("{{index .Spec.Labels \"a\"}}", &v), "b");
        assert_eq!(render("{{.Spec.Labels}}", &v), "map[a:b]");
        assert_eq!(render("{{.Nope}}", &v), "<no value>");
        assert_eq!(render("{{upper .Spec.Name}}", &v), "WEB");
        assert_eq!(render("{{json .Spec.Labels}}", &v), "{\"a\":\"b\"}");
    }

    #[test]
    fn json_of_root_escapes_html_like_go() {
        let v = json!({"Ports": "*:8080->80/tcp"});
        assert_eq!(
            render("{{json .}}", &v),
            "{\"Ports\":\"*:8080-\\u003e80/tcp\"}"
        );
    }

    #[test]
    fn inspect_json_keeps_order() {
        let t = Template::parse("{{json .}} {{.ID}}").unwrap();
        assert_eq!(
            t.render_inspect("{\"ID\": \"x\", \"A\": 1}").unwrap(),
            "{\"ID\":\"x\",\"A\":1} x"
        );
    }

    #[test]
    fn unsupported_forms_say_so() {
        assert!(Template::parse("{{range .X}}{{end}}").is_err());
        assert!(Template::parse("{{.X | json}}").is_err());
        assert!(Template::parse("{{.X").is_err());
    }
}
