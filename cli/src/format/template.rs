//! Go's `text/template`, the part people pass to `--format`, with the docker CLI's
//! functions (docker/cli `templates/templates.go`), evaluated over JSON values.
//!
//! ```text
//!   "{{range $k, $v := .Labels}}{{$k}}={{$v | upper}} {{end}}"
//!      lex ──> tokens ──> parse ──> [Node] ──eval(dot = JSON value)──> text
//! ```
//!
//! Supported: text; `{{.}}`, `{{.A.B}}`, `{{$}}`, `{{$x.A}}`; pipelines `a | f b`;
//! parenthesized pipelines with fields after them, `(index .X 0).Addr`; `if`/`else if`/
//! `else`, `range` (with `$i, $e :=` and `else`), `with`, `end`; variable declarations
//! and assignments; `{{- -}}` trimming; comments. Functions: Go's `and or not len index
//! eq ne lt le gt ge print printf println`, docker's `json split join title lower upper
//! pad truncate`. The escapes `\t` and `\n` written literally on the command line are
//! tabs and newlines, as the docker CLI makes them.
//!
//! Our contexts are JSON objects, not Go structs: a missing key prints `<no value>`
//! (Go's behaviour for maps) and a field of a missing value is a missing value too,
//! where a Go struct field would be an execution error. JSON `null` also prints
//! `<no value>`.

use std::fmt::Write as _;

use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
struct Pipe {
    decl: Vec<String>,
    /// `=` rather than `:=`.
    assign: bool,
    cmds: Vec<Vec<Operand>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `.A.B` (empty: `.`).
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the root).
    Var(String, Vec<String>),
    Lit(Value),
    Func(String),
    /// `(pipeline).A.B`
    Paren(Box<Pipe>, Vec<String>),
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(Value),
    Ident(String),
    LParen,
    /// `)` and the fields written right after it.
    RParen(Vec<String>),
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug)]
enum Item {
    Text(String),
    Action(Vec<Tok>),
}

fn lex(src: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(start) = rest.find("{{") else {
            let t = if trim_next { rest.trim_start() } else { rest };
            items.push(Item::Text(t.to_string()));
            break;
        };
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner = &rest[start + 2..];
        if inner.starts_with("- ") || inner.starts_with("-\t") || inner.starts_with("-\n") {
            text = text.trim_end();
            inner = &inner[1..];
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let (toks, after, trim) = lex_action(inner)?;
        trim_next = trim;
        if let Some(toks) = toks {
            items.push(Item::Action(toks));
        }
        rest = after;
    }
    Ok(items)
}

/// Lexes one action up to its `}}`: the tokens (None for a comment), what follows,
/// and whether it ended with ` -}}`.
fn lex_action(s: &str) -> Result<(Option<Vec<Tok>>, &str, bool)> {
    let trimmed = s.trim_start();
    if let Some(c) = trimmed.strip_prefix("/*") {
        let end = c.find("*/").ok_or_else(|| parse_err("unclosed comment"))?;
        let after = c[end + 2..].trim_start();
        if let Some(a) = after.strip_prefix("-}}") {
            return Ok((None, a, true));
        }
        let a = after
            .strip_prefix("}}")
            .ok_or_else(|| parse_err("comment ends before closing delimiter"))?;
        return Ok((None, a, false));
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut toks = Vec::new();
    let fields = |i: &mut usize| -> Vec<String> {
        let mut out = Vec::new();
        while *i < b.len() && b[*i] == b'.' && *i + 1 < b.len() && is_ident_char(b[*i + 1]) {
            *i += 1;
            let st = *i;
            while *i < b.len() && is_ident_char(b[*i]) {
                *i += 1;
            }
            out.push(s[st..*i].to_string());
        }
        out
    };
    loop {
        if i >= b.len() {
            bail!(parse_err("unclosed action"));
        }
        let c = b[i];
        if s[i..].starts_with(" -}}") || s[i..].starts_with("\t-}}") || s[i..].starts_with("\n-}}")
        {
            return Ok((Some(toks), &s[i + 4..], true));
        }
        if s[i..].starts_with("}}") {
            return Ok((Some(toks), &s[i + 2..], false));
        }
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                i += 1;
                toks.push(Tok::RParen(fields(&mut i)));
            }
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            b'.' => {
                if i + 1 < b.len() && is_ident_char(b[i + 1]) && !b[i + 1].is_ascii_digit() {
                    toks.push(Tok::Field(fields(&mut i)));
                } else {
                    toks.push(Tok::Field(vec![]));
                    i += 1;
                }
            }
            b'$' => {
                let st = i;
                i += 1;
                while i < b.len() && is_ident_char(b[i]) {
                    i += 1;
                }
                let name = s[st..i].to_string();
                toks.push(Tok::Var(name, fields(&mut i)));
            }
            b'"' => {
                let (v, n) = lex_quoted(&s[i..])?;
                toks.push(Tok::Str(v));
                i += n;
            }
            b'`' => {
                let end = s[i + 1..]
                    .find('`')
                    .ok_or_else(|| parse_err("unterminated raw quoted string"))?;
                toks.push(Tok::Str(s[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            b'\'' => {
                let end = s[i + 1..]
                    .find('\'')
                    .ok_or_else(|| parse_err("unterminated character constant"))?;
                let ch = s[i + 1..i + 1 + end].chars().next().unwrap_or('\0');
                toks.push(Tok::Num(Value::from(ch as u32)));
                i += end + 2;
            }
            c if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let st = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                let word = &s[st..i];
                toks.push(Tok::Num(parse_number(word)?));
            }
            c if is_ident_char(c) => {
                let st = i;
                while i < b.len() && is_ident_char(b[i]) {
                    i += 1;
                }
                toks.push(Tok::Ident(s[st..i].to_string()));
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                bail!(parse_err(&format!("unexpected {ch:?} in command")));
            }
        }
    }
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn parse_number(w: &str) -> Result<Value> {
    if let Ok(i) = w.parse::<i64>() {
        return Ok(Value::from(i));
    }
    if let Some(h) = w.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(h, 16) {
            return Ok(Value::from(i));
        }
    }
    w.parse::<f64>()
        .ok()
        .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
        .ok_or_else(|| parse_err(&format!("bad number syntax: {w:?}")))
}

/// A Go interpreted string literal at the start of `s`: its value and length.
fn lex_quoted(s: &str) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut it = s.char_indices().skip(1);
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => match it.next().map(|(_, c)| c) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                }
                None => break,
            },
            '\n' => break,
            c => out.push(c),
        }
    }
    bail!(parse_err("unterminated quoted string"))
}

fn parse_err(msg: &str) -> anyhow::Error {
    anyhow!("template parsing error: template: :1: {msg}")
}

// ---------------------------------------------------------------- parsing

struct Parser {
    items: std::vec::IntoIter<Item>,
}

/// How a list ended.
enum End {
    Eof,
    Close,
    Else(Vec<Tok>),
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, End)> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let toks = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action(t) => t,
            };
            match toks.first() {
                Some(Tok::Ident(k)) if k == "end" => return Ok((nodes, End::Close)),
                Some(Tok::Ident(k)) if k == "else" => {
                    return Ok((nodes, End::Else(toks[1..].to_vec())))
                }
                Some(Tok::Ident(k)) if matches!(k.as_str(), "if" | "range" | "with") => {
                    let kw = k.clone();
                    nodes.push(self.control(&kw, &toks[1..])?);
                }
                Some(Tok::Ident(k))
                    if matches!(
                        k.as_str(),
                        "define" | "template" | "block" | "break" | "continue"
                    ) =>
                {
                    bail!(parse_err(&format!(
                        "{k:?} is not supported (see docs/cli.md)"
                    )))
                }
                None => bail!(parse_err("missing value for command")),
                _ => nodes.push(Node::Action(parse_pipe(&toks)?)),
            }
        }
        Ok((nodes, End::Eof))
    }

    fn control(&mut self, kw: &str, toks: &[Tok]) -> Result<Node> {
        let pipe = parse_pipe(toks)?;
        if pipe.cmds.is_empty() {
            bail!(parse_err(&format!("missing value for {kw}")));
        }
        let (body, end) = self.list()?;
        let alt = match end {
            End::Eof => bail!(parse_err("unexpected EOF")),
            End::Close => vec![],
            End::Else(rest) => match rest.first() {
                Some(Tok::Ident(k))
                    if (k == "if" && kw == "if") || (k == "with" && kw == "with") =>
                {
                    // `else if` ends with the outer `end`.
                    vec![self.control(kw, &rest[1..])?]
                }
                Some(_) => bail!(parse_err("unexpected tokens after else")),
                None => {
                    let (alt, end) = self.list()?;
                    if !matches!(end, End::Close) {
                        bail!(parse_err("expected end; found else or EOF"));
                    }
                    alt
                }
            },
        };
        Ok(match kw {
            "if" => Node::If(pipe, body, alt),
            "range" => Node::Range(pipe, body, alt),
            _ => Node::With(pipe, body, alt),
        })
    }
}

fn parse_pipe(toks: &[Tok]) -> Result<Pipe> {
    let mut pos = 0;
    let pipe = parse_pipe_at(toks, &mut pos, false)?;
    if pos != toks.len() {
        bail!(parse_err("unexpected \")\" in operand"));
    }
    Ok(pipe)
}

fn parse_pipe_at(toks: &[Tok], pos: &mut usize, in_paren: bool) -> Result<Pipe> {
    let mut decl = Vec::new();
    let mut assign = false;
    // `$x :=`, `$k, $v :=`, `$x =`
    let mut look = *pos;
    let mut vars = Vec::new();
    while let Some(Tok::Var(name, f)) = toks.get(look) {
        if !f.is_empty() {
            break;
        }
        vars.push(name.clone());
        look += 1;
        match toks.get(look) {
            Some(Tok::Comma) => look += 1,
            Some(Tok::Declare) | Some(Tok::Assign) => {
                assign = toks[look] == Tok::Assign;
                decl = std::mem::take(&mut vars);
                *pos = look + 1;
                break;
            }
            _ => break,
        }
    }
    let mut cmds = Vec::new();
    let mut cmd = Vec::new();
    while let Some(t) = toks.get(*pos) {
        *pos += 1;
        match t {
            Tok::Pipe => {
                if cmd.is_empty() {
                    bail!(parse_err("missing command"));
                }
                cmds.push(std::mem::take(&mut cmd));
            }
            Tok::RParen(fields) => {
                if !in_paren {
                    bail!(parse_err("unexpected \")\" in operand"));
                }
                *pos -= 1;
                let _ = fields;
                break;
            }
            Tok::LParen => {
                let inner = parse_pipe_at(toks, pos, true)?;
                let Some(Tok::RParen(fields)) = toks.get(*pos) else {
                    bail!(parse_err("unclosed left paren"));
                };
                *pos += 1;
                cmd.push(Operand::Paren(Box::new(inner), fields.clone()));
            }
            Tok::Field(f) => cmd.push(Operand::Field(f.clone())),
            Tok::Var(n, f) => cmd.push(Operand::Var(n.clone(), f.clone())),
            Tok::Str(s) => cmd.push(Operand::Lit(Value::String(s.clone()))),
            Tok::Num(n) => cmd.push(Operand::Lit(n.clone())),
            Tok::Ident(w) => cmd.push(match w.as_str() {
                "true" => Operand::Lit(Value::Bool(true)),
                "false" => Operand::Lit(Value::Bool(false)),
                "nil" => Operand::Lit(Value::Null),
                f if FUNCS.contains(&f) => Operand::Func(f.to_string()),
                f => bail!(parse_err(&format!("function {f:?} not defined"))),
            }),
            Tok::Comma | Tok::Declare | Tok::Assign => {
                bail!(parse_err("unexpected token in command"))
            }
        }
    }
    if !cmd.is_empty() {
        cmds.push(cmd);
    } else if !cmds.is_empty() {
        bail!(parse_err("missing command"));
    }
    if in_paren && cmds.is_empty() {
        bail!(parse_err("missing value for parenthesized pipeline"));
    }
    Ok(Pipe { decl, assign, cmds })
}

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "eq", "ne", "lt", "le", "gt", "ge", "print", "printf",
    "println", "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

// ---------------------------------------------------------------- evaluation

struct State<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
    /// `{{json .}}` escapes `<>&` as Go's `json.Marshal` of a list context does.
    html_escape: bool,
    /// `{{json .}}` of an inspected object prints the server's bytes, compacted.
    raw: Option<&'a str>,
    /// Rendering a table header: fields are column names, most functions identity.
    header: Option<&'a dyn Fn(&str) -> String>,
}

impl Template {
    /// Parses `text` (after `\t`/`\n` unescaping).
    pub fn parse(text: &str) -> Result<Template> {
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        let mut p = Parser {
            items: lex(&text)?.into_iter(),
        };
        let (nodes, end) = p.list()?;
        match end {
            End::Eof => Ok(Template { nodes }),
            End::Close => bail!(parse_err("unexpected {{end}}")),
            End::Else(_) => bail!(parse_err("unexpected {{else}}")),
        }
    }

    /// Renders against `ctx`. `html_escape` makes `{{json .}}` escape `<>&` as Go's
    /// `json.Marshal` does for the docker CLI's list contexts.
    pub fn render(&self, ctx: &Value, html_escape: bool) -> Result<String> {
        let mut st = State {
            root: ctx,
            vars: vec![("$".into(), ctx.clone())],
            html_escape,
            raw: None,
            header: None,
        };
        let mut out = String::new();
        st.walk(&self.nodes, ctx, &mut out)?;
        Ok(out)
    }

    /// Renders an inspected object: as [`Template::render`], except that `{{json .}}`
    /// prints `raw` compacted, in the server's field order.
    pub fn render_inspect(&self, raw: &str) -> Result<String> {
        let ctx: Value = serde_json::from_str(raw)?;
        let mut st = State {
            root: &ctx,
            vars: vec![("$".into(), ctx.clone())],
            html_escape: false,
            raw: Some(raw),
            header: None,
        };
        let mut out = String::new();
        st.walk(&self.nodes, &ctx, &mut out)?;
        Ok(out)
    }

    /// Renders the header row of a `table` format as the docker CLI does: the template
    /// over the column names (`headers(Field)`), with `json split join title lower
    /// upper truncate` leaving them as they are and `pad` padding them.
    pub fn render_header(&self, headers: &dyn Fn(&str) -> String) -> String {
        let ctx = Value::Object(Map::new());
        let mut st = State {
            root: &ctx,
            vars: vec![("$".into(), ctx.clone())],
            html_escape: false,
            raw: None,
            header: Some(headers),
        };
        let mut out = String::new();
        match st.walk(&self.nodes, &ctx, &mut out) {
            Ok(()) => out,
            Err(_) => String::new(),
        }
    }
}

impl State<'_> {
    fn walk(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        out.push_str(&go_print(&v));
                    }
                }
                Node::If(p, body, alt) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let r = if truth(&v) {
                        self.walk(body, dot, out)
                    } else {
                        self.walk(alt, dot, out)
                    };
                    self.vars.truncate(mark);
                    r?;
                }
                Node::With(p, body, alt) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let r = if truth(&v) {
                        self.walk(body, &v, out)
                    } else {
                        self.walk(alt, dot, out)
                    };
                    self.vars.truncate(mark);
                    r?;
                }
                Node::Range(p, body, alt) => {
                    let mark = self.vars.len();
                    let mut inner = p.clone();
                    let decl = std::mem::take(&mut inner.decl);
                    let v = self.pipe(&inner, dot)?;
                    let items: Vec<(Value, Value)> = match &v {
                        Value::Array(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, e)| (Value::from(i), e.clone()))
                            .collect(),
                        Value::Object(m) => sorted(m)
                            .into_iter()
                            .map(|(k, e)| (Value::String(k.clone()), e.clone()))
                            .collect(),
                        Value::Null => vec![],
                        Value::Number(n) if n.as_u64().is_some() => (0..n.as_u64().unwrap_or(0))
                            .map(|i| (Value::from(i), Value::from(i)))
                            .collect(),
                        other => bail!(exec_err(&format!(
                            "range can't iterate over {}",
                            go_print(other)
                        ))),
                    };
                    if items.is_empty() {
                        self.walk(alt, dot, out)?;
                    }
                    for (k, e) in items {
                        self.vars.truncate(mark);
                        match decl.as_slice() {
                            [] => {}
                            [one] => self.vars.push((one.clone(), e.clone())),
                            [a, b, ..] => {
                                self.vars.push((a.clone(), k));
                                self.vars.push((b.clone(), e.clone()));
                            }
                        }
                        self.walk(body, &e, out)?;
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value> {
        let mut prev: Option<Value> = None;
        for cmd in &p.cmds {
            prev = Some(self.command(cmd, dot, prev)?);
        }
        let v = prev.unwrap_or(Value::Null);
        if p.assign {
            for name in &p.decl {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => bail!(exec_err(&format!("undefined variable: {name}"))),
                }
            }
        } else if let Some(name) = p.decl.first() {
            self.vars.push((name.clone(), v.clone()));
        }
        Ok(v)
    }

    fn command(&mut self, cmd: &[Operand], dot: &Value, prev: Option<Value>) -> Result<Value> {
        let Some(first) = cmd.first() else {
            bail!(exec_err("empty command"));
        };
        if let Operand::Func(name) = first {
            // `{{json .}}` on the root: the server's bytes, or Go's HTML escaping.
            if name == "json" && prev.is_none() && self.header.is_none() {
                if let [_, Operand::Field(f)] = cmd {
                    if f.is_empty() && std::ptr::eq(dot, self.root) {
                        if let Some(raw) = self.raw {
                            return Ok(Value::String(super::indent::compact_json(raw)));
                        }
                        let s = serde_json::to_string(dot)?;
                        return Ok(Value::String(if self.html_escape {
                            escape_html(&s)
                        } else {
                            s
                        }));
                    }
                }
            }
            let mut args = cmd[1..]
                .iter()
                .map(|o| self.operand(o, dot))
                .collect::<Result<Vec<_>>>()?;
            args.extend(prev);
            return self.call(name, args);
        }
        if cmd.len() > 1 || prev.is_some() {
            bail!(exec_err("can't give argument to non-function"));
        }
        self.operand(first, dot)
    }

    fn operand(&mut self, o: &Operand, dot: &Value) -> Result<Value> {
        match o {
            Operand::Field(path) => {
                if let Some(h) = self.header {
                    if std::ptr::eq(dot, self.root) && !path.is_empty() {
                        return Ok(Value::String(h(&path.join("."))));
                    }
                }
                fields(dot, path)
            }
            Operand::Var(name, path) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| parse_err(&format!("undefined variable \"{name}\"")))?;
                fields(&v, path)
            }
            Operand::Lit(v) => Ok(v.clone()),
            Operand::Func(name) => self.call(name, vec![]),
            Operand::Paren(p, path) => {
                let v = self.pipe(p, dot)?;
                fields(&v, path)
            }
        }
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value> {
        let want = |n: usize| -> Result<()> {
            if args.len() == n {
                Ok(())
            } else {
                bail!(exec_err(&format!(
                    "wrong number of args for {name}: want {n} got {}",
                    args.len()
                )))
            }
        };
        if self.header.is_some()
            && matches!(
                name,
                "json" | "split" | "join" | "title" | "lower" | "upper" | "truncate"
            )
        {
            return Ok(args.into_iter().next().unwrap_or(Value::Null));
        }
        Ok(match name {
            "not" => {
                want(1)?;
                Value::Bool(!truth(&args[0]))
            }
            "and" => args
                .iter()
                .find(|a| !truth(a))
                .or(args.last())
                .cloned()
                .unwrap_or(Value::Null),
            "or" => args
                .iter()
                .find(|a| truth(a))
                .or(args.last())
                .cloned()
                .unwrap_or(Value::Null),
            "len" => {
                want(1)?;
                Value::from(match &args[0] {
                    Value::String(s) => s.len(),
                    Value::Array(a) => a.len(),
                    Value::Object(m) => m.len(),
                    v => bail!(exec_err(&format!(
                        "error calling len: len of type {}",
                        type_name(v)
                    ))),
                })
            }
            "index" => {
                let mut it = args.into_iter();
                let mut v = it.next().unwrap_or(Value::Null);
                for k in it {
                    v = index(&v, &k)?;
                }
                v
            }
            "eq" => {
                if args.len() < 2 {
                    bail!(exec_err(
                        "error calling eq: missing argument for comparison"
                    ));
                }
                Value::Bool(
                    args[1..]
                        .iter()
                        .any(|b| compare(&args[0], b) == Some(std::cmp::Ordering::Equal)),
                )
            }
            "ne" | "lt" | "le" | "gt" | "ge" => {
                want(2)?;
                let ord = compare(&args[0], &args[1]);
                if ord.is_none() && name != "ne" {
                    bail!(exec_err(&format!(
                        "error calling {name}: incompatible types for comparison"
                    )));
                }
                use std::cmp::Ordering::*;
                Value::Bool(match name {
                    "ne" => ord != Some(Equal),
                    "lt" => ord == Some(Less),
                    "le" => ord != Some(Greater),
                    "gt" => ord == Some(Greater),
                    _ => ord != Some(Less),
                })
            }
            "print" => Value::String(go_sprint(&args)),
            "println" => {
                Value::String(args.iter().map(go_print).collect::<Vec<_>>().join(" ") + "\n")
            }
            "printf" => {
                let Some((f, rest)) = args.split_first() else {
                    bail!(exec_err(
                        "wrong number of args for printf: want at least 1 got 0"
                    ));
                };
                Value::String(sprintf(&go_print(f), rest))
            }
            "json" => {
                want(1)?;
                Value::String(serde_json::to_string(&args[0])?)
            }
            "split" => {
                want(2)?;
                let (s, sep) = (go_print(&args[0]), go_print(&args[1]));
                let parts: Vec<Value> = if sep.is_empty() {
                    s.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    s.split(sep.as_str())
                        .map(|p| Value::String(p.into()))
                        .collect()
                };
                Value::Array(parts)
            }
            "join" => {
                want(2)?;
                let sep = go_print(&args[1]);
                Value::String(match &args[0] {
                    Value::Null => String::new(),
                    Value::Array(a) => a.iter().map(go_print).collect::<Vec<_>>().join(&sep),
                    v => go_print(v),
                })
            }
            "title" => {
                want(1)?;
                Value::String(title(&go_print(&args[0])))
            }
            "lower" => {
                want(1)?;
                Value::String(go_print(&args[0]).to_lowercase())
            }
            "upper" => {
                want(1)?;
                Value::String(go_print(&args[0]).to_uppercase())
            }
            "pad" => {
                want(3)?;
                let s = go_print(&args[0]);
                let (Some(p), Some(q)) = (args[1].as_u64(), args[2].as_u64()) else {
                    bail!(exec_err("wrong type for value; expected int"));
                };
                Value::String(if s.is_empty() {
                    s
                } else {
                    format!("{}{s}{}", " ".repeat(p as usize), " ".repeat(q as usize))
                })
            }
            "truncate" => {
                want(2)?;
                let s = go_print(&args[0]);
                let Some(n) = args[1].as_u64() else {
                    bail!(exec_err("wrong type for value; expected int"));
                };
                let mut n = (n as usize).min(s.len());
                while !s.is_char_boundary(n) {
                    n -= 1;
                }
                Value::String(s[..n].to_string())
            }
            other => bail!(exec_err(&format!("function {other:?} not defined"))),
        })
    }
}

fn exec_err(msg: &str) -> anyhow::Error {
    anyhow!("template: :1: {msg}")
}

fn fields(v: &Value, path: &[String]) -> Result<Value> {
    let mut v = v.clone();
    for p in path {
        v = match v {
            Value::Object(mut m) => m.remove(p).unwrap_or(Value::Null),
            Value::Null => Value::Null,
            other => bail!(exec_err(&format!(
                "can't evaluate field {p} in type {}",
                type_name(&other)
            ))),
        };
    }
    Ok(v)
}

fn index(v: &Value, k: &Value) -> Result<Value> {
    Ok(match (v, k) {
        (Value::Object(m), Value::String(k)) => m.get(k).cloned().unwrap_or(Value::Null),
        (Value::Array(a), k) => {
            let i = k
                .as_u64()
                .or_else(|| k.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| {
                    exec_err("error calling index: cannot index slice/array with type string")
                })?;
            a.get(i as usize)
                .cloned()
                .ok_or_else(|| exec_err(&format!("error calling index: index out of range: {i}")))?
        }
        (Value::Null, _) => Value::Null,
        (v, _) => bail!(exec_err(&format!(
            "error calling index: can't index item of type {}",
            type_name(v)
        ))),
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

/// Go template truth: false, 0, nil and empty strings/lists/maps are false.
fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn sorted(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// Go's `strings.Title`: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::new();
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        };
    }
    out
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&go_print(a));
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %q %t %f %x %%`, with
/// the flags `-` and `0`, a width and a precision.
fn sprintf(f: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut cs = f.chars().peekable();
    while let Some(c) = cs.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero) = (false, false);
        while let Some(&fl) = cs.peek() {
            match fl {
                '-' => left = true,
                '0' => zero = true,
                '+' | ' ' | '#' => {}
                _ => break,
            }
            cs.next();
        }
        let mut width = String::new();
        while let Some(&d) = cs.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            cs.next();
        }
        let mut prec: Option<usize> = None;
        if cs.peek() == Some(&'.') {
            cs.next();
            let mut p = String::new();
            while let Some(&d) = cs.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                cs.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = cs.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let s = match verb {
            's' | 'v' => {
                let s = go_print(a);
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            'q' => serde_json::to_string(&go_print(a)).unwrap_or_default(),
            't' => match a {
                Value::Bool(b) => b.to_string(),
                v => format!("%!t({}={})", type_name(v), go_print(v)),
            },
            'd' => match a
                .as_i64()
                .or_else(|| a.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            {
                Some(i) => i.to_string(),
                None => format!("%!d({}={})", type_name(a), go_print(a)),
            },
            'f' => match a.as_f64() {
                Some(x) => format!("{x:.*}", prec.unwrap_or(6)),
                None => format!("%!f({}={})", type_name(a), go_print(a)),
            },
            'x' => match (a.as_i64(), a) {
                (Some(i), _) => format!("{i:x}"),
                (None, Value::String(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
                _ => format!("%!x({}={})", type_name(a), go_print(a)),
            },
            other => format!("%!{other}({}={})", type_name(a), go_print(a)),
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = s.chars().count();
        if len >= w {
            out.push_str(&s);
        } else if left {
            out.push_str(&s);
            out.push_str(&" ".repeat(w - len));
        } else {
            let fill = if zero { "0" } else { " " };
            out.push_str(&fill.repeat(w - len));
            out.push_str(&s);
        }
    }
    for extra in args {
        let _ = write!(out, "%!(EXTRA {}={})", type_name(extra), go_print(extra));
    }
    out
}

/// Go's `fmt.Print` of a decoded JSON value: maps as `map[k:v]` (keys sorted), slices
/// as `[a b]`.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            sorted(m)
                .into_iter()
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
        assert_eq!(render("{{.Nope.Deeper}}", &v), "<no value>");
        assert_eq!(render("{{upper .Spec.Name}}", &v), "WEB");
        assert_eq!(render("{{json .Spec.Labels}}", &v), "{\"a\":\"b\"}");
        assert_eq!(render("{{$.ID}} {{$}}", &json!({"ID": 1})), "1 map[ID:1]");
    }

    #[test]
    fn tutorial_remote_managers_addr() {
        let info: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/api_info.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let want = info["Swarm"]["RemoteManagers"][0]["Addr"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            render("{{ (index .Swarm.RemoteManagers 0).Addr }}", &info),
            want
        );
        let v = json!({"Swarm": {"RemoteManagers": [{"NodeID": "n1", "Addr": "10.0.0.1:2377"}]}});
        assert_eq!(
            render("{{ (index .Swarm.RemoteManagers 0).Addr }}", &v),
            "10.0.0.1:2377"
        );
        assert_eq!(
            render(
                "{{(index .Swarm.RemoteManagers 0).Addr | printf \"%s!\"}}",
                &v
            ),
            "10.0.0.1:2377!"
        );
        assert!(
            Template::parse("{{ (index .Swarm.RemoteManagers 3).Addr }}")
                .unwrap()
                .render(&v, false)
                .is_err()
        );
    }

    #[test]
    fn docker_functions() {
        let v = json!({"S": "<a&b>", "L": ["x", "y"], "N": 3, "E": "", "U": "héllo wörld-foo"});
        // json: strings quoted; docker's encoder does not escape HTML.
        assert_eq!(render("{{json .S}}", &v), "\"<a&b>\"");
        assert_eq!(render("{{json .L}}", &v), "[\"x\",\"y\"]");
        assert_eq!(render("{{join .L \", \"}}", &v), "x, y");
        assert_eq!(render("{{split \"a,b,c\" \",\"}}", &v), "[a b c]");
        assert_eq!(render("{{join (split \"a,b\" \",\") \"+\"}}", &v), "a+b");
        assert_eq!(render("{{lower \"ABC\"}} {{upper \"abc\"}}", &v), "abc ABC");
        assert_eq!(render("{{title .U}}", &v), "Héllo Wörld-Foo");
        // truncate counts bytes as Go slices strings, without splitting a character.
        assert_eq!(
            render("{{truncate \"abcdef\" 3}}|{{truncate \"ab\" 3}}", &v),
            "abc|ab"
        );
        assert_eq!(render("{{truncate \"héllo\" 2}}", &v), "h");
        // pad: spaces on both sides, nothing for an empty string.
        assert_eq!(
            render("[{{pad \"x\" 1 2}}][{{pad .E 1 2}}]", &v),
            "[ x  ][]"
        );
        assert_eq!(render("{{println .N}}", &v), "3\n");
        assert_eq!(
            render(
                "{{printf \"%s-%d-%5s|%-3s|%q\" \"a\" 7 \"b\" \"c\" \"d\"}}",
                &v
            ),
            "a-7-    b|c  |\"d\""
        );
        assert_eq!(render("{{print \"a\" 1 2 \"b\"}}", &v), "a1 2b");
        assert_eq!(render("{{len .L}} {{len .S}}", &v), "2 5");
    }

    #[test]
    fn pipelines_control_and_variables() {
        let v = json!({"Name": "web", "Labels": {"b": "2", "a": "1"}, "Ports": [80, 443], "On": true, "Off": false, "Empty": []});
        assert_eq!(render("{{.Name | upper}}", &v), "WEB");
        assert_eq!(render("{{.Name | printf \"%s:%s\" \"x\"}}", &v), "x:web");
        assert_eq!(render("{{range .Ports}}[{{.}}]{{end}}", &v), "[80][443]");
        assert_eq!(
            render("{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", &v),
            "a=1;b=2;"
        );
        assert_eq!(
            render("{{range $i, $p := .Ports}}{{$i}}:{{$p}} {{end}}", &v),
            "0:80 1:443 "
        );
        assert_eq!(render("{{range .Empty}}x{{else}}none{{end}}", &v), "none");
        assert_eq!(
            render(
                "{{if .On}}yes{{else}}no{{end}}{{if .Off}}yes{{else}}no{{end}}",
                &v
            ),
            "yesno"
        );
        assert_eq!(
            render("{{if .Off}}a{{else if .On}}b{{else}}c{{end}}", &v),
            "b"
        );
        assert_eq!(
            render(
                "{{if eq .Name \"web\" \"db\"}}1{{end}}{{if ne .Name \"web\"}}2{{end}}",
                &v
            ),
            "1"
        );
        assert_eq!(
            render("{{if and .On (not .Off)}}ok{{end}}{{or .Off \"dflt\"}}", &v),
            "okdflt"
        );
        assert_eq!(render("{{if gt (len .Ports) 1}}many{{end}}", &v), "many");
        assert_eq!(render("{{with .Labels}}{{.a}}{{end}}", &v), "1");
        assert_eq!(
            render("{{$n := .Name}}{{range .Ports}}{{$n}}{{end}}", &v),
            "webweb"
        );
        assert_eq!(render("{{range .Ports}}{{$.Name}}{{end}}", &v), "webweb");
        assert_eq!(render("a  {{- .Name -}}  b {{/* note */}}c", &v), "awebb c");
    }

    #[test]
    fn table_headers() {
        let t = Template::parse("{{.Name | upper}}\t{{pad .ID 1 1}}\t{{json .Labels}}").unwrap();
        assert_eq!(
            t.render_header(&|f: &str| f.to_uppercase()),
            "NAME\t ID \tLABELS"
        );
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
    fn errors() {
        assert!(Template::parse("{{range .X}}").is_err());
        assert!(Template::parse("{{.X").is_err());
        assert!(Template::parse("{{nosuch .X}}").is_err());
        assert!(Template::parse("{{end}}").is_err());
        assert!(Template::parse("{{.X \"a\"}}")
            .unwrap()
            .render(&json!({}), false)
            .is_err());
        assert!(Template::parse("{{.A.B}}")
            .unwrap()
            .render(&json!({"A": "s"}), false)
            .is_err());
    }
}
