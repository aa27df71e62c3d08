//! Shell-word splitting for `--entrypoint "/bin/sh -c"` and `--args`, as the docker
//! CLI's `ShlexOpt` does it (go-shellwords style: quotes and backslashes).

use anyhow::{bail, Result};

/// Splits `s` into words.
pub fn split(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut have_word = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if have_word {
                    words.push(std::mem::take(&mut cur));
                    have_word = false;
                }
            }
            (None, '\'') | (None, '"') => {
                quote = Some(c);
                have_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                have_word = true;
            }
            (_, c) => {
                cur.push(c);
                have_word = true;
            }
        }
    }
    if quote.is_some() {
        bail!("invalid command line string");
    }
    if have_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(split("/bin/sh -c").unwrap(), vec!["/bin/sh", "-c"]);
        assert_eq!(
            split(r#"sh -c "echo hi; x" 'a b'"#).unwrap(),
            vec!["sh", "-c", "echo hi; x", "a b"]
        );
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert!(split("'x").is_err());
    }
}
