//! `${VAR}` substitution in one string, as the docker CLI's `compose/template`:
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`,
//! `$$` for a literal `$`.
//!
//! Docker matches `\$(?i:(\$)|(name(?::?[-?][^}]*)?)|{(name(?::?[-?][^}]*)?)}|())`
//! left to right; this scanner follows the same alternatives in the same order,
//! including its quirks (an unbraced `$A-b c` takes `b c` as the default).

/// Why a template could not be substituted. Docker reports both kinds through its
/// `InvalidTemplateError`, whose text is the whole template or the required message.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidTemplate(pub String);

/// `name(?::?[-?][^}]*)?` at the start of `s`: the length matched, or 0.
fn subst_len(s: &[u8]) -> usize {
    let name_start = |c: u8| c == b'_' || c.is_ascii_alphabetic();
    let name_char = |c: u8| c == b'_' || c.is_ascii_alphanumeric();
    if s.is_empty() || !name_start(s[0]) {
        return 0;
    }
    let mut i = 1;
    while i < s.len() && name_char(s[i]) {
        i += 1;
    }
    let mut j = i;
    if s.get(j) == Some(&b':') {
        j += 1;
    }
    if matches!(s.get(j), Some(b'-' | b'?')) {
        j += 1;
        while j < s.len() && s[j] != b'}' {
            j += 1;
        }
        return j;
    }
    i
}

fn partition<'a>(s: &'a str, sep: &str) -> (&'a str, &'a str) {
    s.split_once(sep).unwrap_or((s, ""))
}

/// One of Docker's `DefaultSubstituteFuncs`, in order: `(value, applied, error)`.
fn apply(
    substitution: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> (String, bool, Option<InvalidTemplate>) {
    if substitution.contains(":-") {
        let (name, def) = partition(substitution, ":-");
        return match lookup(name) {
            Some(v) if !v.is_empty() => (v, true, None),
            _ => (def.to_string(), true, None),
        };
    }
    if substitution.contains('-') {
        let (name, def) = partition(substitution, "-");
        return match lookup(name) {
            Some(v) => (v, true, None),
            None => (def.to_string(), true, None),
        };
    }
    for (sep, non_empty) in [(":?", true), ("?", false)] {
        if substitution.contains(sep) {
            let (name, msg) = partition(substitution, sep);
            return match lookup(name) {
                Some(v) if !non_empty || !v.is_empty() => (v, true, None),
                _ => (
                    String::new(),
                    true,
                    Some(InvalidTemplate(format!(
                        "required variable {name} is missing a value: {msg}"
                    ))),
                ),
            };
        }
    }
    (lookup(substitution).unwrap_or_default(), false, None)
}

/// Docker's `template.Substitute`.
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InvalidTemplate> {
    let b = template.as_bytes();
    let mut out = String::with_capacity(template.len());
    // Docker keeps one error variable that every later substitution overwrites.
    let mut err: Option<InvalidTemplate> = None;
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&template[last..i]);
        let rest = &b[i + 1..];
        let (replacement, consumed) = if rest.first() == Some(&b'$') {
            ("$".to_string(), 2)
        } else {
            let named = subst_len(rest);
            let (substitution, consumed) = if named > 0 {
                (&template[i + 1..i + 1 + named], 1 + named)
            } else if rest.first() == Some(&b'{') {
                let n = subst_len(&rest[1..]);
                if n > 0 && rest.get(1 + n) == Some(&b'}') {
                    (&template[i + 2..i + 2 + n], 3 + n)
                } else {
                    ("", 1)
                }
            } else {
                ("", 1)
            };
            if substitution.is_empty() {
                err = Some(InvalidTemplate(template.to_string()));
                (String::new(), consumed)
            } else {
                let (value, applied, e) = apply(substitution, lookup);
                err = e;
                let _ = applied;
                if err.is_some() {
                    (String::new(), consumed)
                } else {
                    (value, consumed)
                }
            }
        };
        out.push_str(&replacement);
        i += consumed;
        last = i;
    }
    out.push_str(&template[last..]);
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn sub(t: &str) -> Result<String, InvalidTemplate> {
        let env: BTreeMap<&str, &str> = [("FOO", "first"), ("EMPTY", "")].into();
        substitute(t, &|k| env.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn forms_like_docker() {
        assert_eq!(sub("$FOO and ${FOO}").unwrap(), "first and first");
        assert_eq!(sub("${NOPE}x$NOPE").unwrap(), "x");
        assert_eq!(
            sub("${NOPE:-def} ${EMPTY:-def} ${EMPTY-def} ${NOPE-d2}").unwrap(),
            "def def  d2"
        );
        assert_eq!(sub("$$FOO $${FOO}").unwrap(), "$FOO ${FOO}");
        assert_eq!(sub("${FOO:?boom}").unwrap(), "first");
        assert_eq!(sub("${EMPTY?boom}").unwrap(), "");
        // unbraced with a default takes everything up to a `}` or the end
        assert_eq!(sub("$NOPE-a b").unwrap(), "a b");
        assert_eq!(sub("$FOO:bar").unwrap(), "first:bar");
        assert_eq!(sub("no vars").unwrap(), "no vars");
    }

    #[test]
    fn errors_like_docker() {
        assert_eq!(
            sub("${EMPTY:?must be set}"),
            Err(InvalidTemplate(
                "required variable EMPTY is missing a value: must be set".into()
            ))
        );
        assert_eq!(
            sub("${NOPE?}"),
            Err(InvalidTemplate(
                "required variable NOPE is missing a value: ".into()
            ))
        );
        assert_eq!(sub("a $ b"), Err(InvalidTemplate("a $ b".into())));
        assert_eq!(sub("${FOO:x}"), Err(InvalidTemplate("${FOO:x}".into())));
        assert_eq!(sub("$1"), Err(InvalidTemplate("$1".into())));
        // a later good substitution clears the error, as Docker's shared variable does
        assert_eq!(sub("$ ${FOO}").unwrap(), " first");
    }
}
