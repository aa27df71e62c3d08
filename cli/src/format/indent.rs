//! Re-indents raw JSON the way Go's `json.MarshalIndent(v, "", "    ")` prints it
//! (`docker service inspect`), keeping the server's field order, and escaping
//! `<`, `>`, `&` as Go does.

/// Indents one JSON document with four spaces per level.
pub fn indent_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let mut chars = raw.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        out.push(c);
                        escaped = false;
                        continue;
                    }
                    match c {
                        '\\' => {
                            out.push('\\');
                            escaped = true;
                        }
                        '"' => {
                            out.push('"');
                            break;
                        }
                        '<' => out.push_str("\\u003c"),
                        '>' => out.push_str("\\u003e"),
                        '&' => out.push_str("\\u0026"),
                        '\u{2028}' => out.push_str("\\u2028"),
                        '\u{2029}' => out.push_str("\\u2029"),
                        c => out.push(c),
                    }
                }
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(c);
                    out.push(close);
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Removes insignificant whitespace, keeping the field order (`{{json .}}` of an
/// inspected object prints the server's order, as Go prints its struct's).
pub fn compact_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_str = false;
    let mut esc = false;
    for c in raw.chars() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_go_marshal_indent() {
        let raw = r#"{"ID":"x","Spec":{"Name":"w","Args":["a","b"],"L":{},"E":[]},"N":1}"#;
        assert_eq!(
            indent_json(raw),
            "{\n    \"ID\": \"x\",\n    \"Spec\": {\n        \"Name\": \"w\",\n        \"Args\": [\n            \"a\",\n            \"b\"\n        ],\n        \"L\": {},\n        \"E\": []\n    },\n    \"N\": 1\n}"
        );
    }

    #[test]
    fn compact_keeps_order_and_strings() {
        assert_eq!(
            compact_json("{ \"b\": \"x y\",\n \"a\": [1, 2] }"),
            "{\"b\":\"x y\",\"a\":[1,2]}"
        );
    }

    #[test]
    fn strings_untouched_but_html_escaped() {
        assert_eq!(
            indent_json(r#"["a, {b}: \"c\"","x>y"]"#),
            "[\n    \"a, {b}: \\\"c\\\"\",\n    \"x\\u003ey\"\n]"
        );
    }
}
